"""One way to start, pause, resume and cancel jobs, whichever front end asks (chat or web).

The desk calls the JobManager and tells the front ends through two hooks that wiring.py
sets: ``show`` puts a job's self-updating status message in a chat, ``show_final``
updates it when a job changed without running (cancelled while paused).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from db import queries
from db.models import Account, Job
from downloader.errors import DownloadError
from downloader.jobs import JobManager
from downloader.targets import Target
from downloader.words import started_text

Say = Callable[[str], Awaitable[None]]


@dataclass
class Answer:
    """What a start request did: ``outcome`` is started | resumed | running | refused."""

    outcome: str
    sentence: str
    job: Job | None = None


async def _quiet(_text: str) -> None:
    return None


class JobDesk:
    """Starts and steers jobs; chat and web call the same methods."""

    def __init__(self, jobs: JobManager):
        self.jobs = jobs
        self.service = jobs.service
        self.show: Callable[[Job, int], Awaitable[object]] | None = None
        self.show_final: Callable[[Job], Awaitable[None]] | None = None

    async def download(
        self,
        account: Account,
        *,
        phases: tuple[str, ...] | None,
        chat_id: int | None,
        say: Say = _quiet,
        note: str = "",
    ) -> Answer:
        """Start a download of ``account`` (or continue its paused one); ``say`` gets the intro."""
        label = Target(account.platform, account.username).label
        paused = await queries.resumable_job_for(account)
        if paused is not None and not self.service.is_active(paused.id) and _covers(paused, phases):
            await say(f"{label} has a paused download: continuing it.")
            return Answer("resumed", await self.resume(paused, chat_id), paused)
        try:
            job, created = await self.jobs.prepare_download(
                account, chat_id=chat_id, phases=list(phases) if phases else None
            )
        except DownloadError as exc:  # the archive folder is missing, or another process has the account
            return Answer("refused", exc.sentence)
        if not created:
            return Answer("running", f"{label} is already downloading — see its status message.", job)
        intro = started_text(account.platform, phases) + note
        try:
            await say(intro)
            await self._show(job, chat_id)
        finally:  # a reply lost to the network must not leave the job queued for ever
            self.jobs.start(job)
        return Answer("started", intro, job)

    async def syncall(self, *, chat_id: int | None, phases: list[str] | None = None) -> Answer:
        """Start a sync of every tracked account (``show`` gets its status message)."""
        try:
            job, created = await self.jobs.prepare_syncall(chat_id=chat_id, phases=phases)
        except DownloadError as exc:  # the archive folder is missing
            return Answer("refused", exc.sentence)
        if not created:
            return Answer("running", "A sync of all accounts is already running.", job)
        if not await Job.filter(parent=job).exists():
            job.state, job.finished_at = "completed", queries.now()  # pruned with the history
            await job.save(update_fields=["state", "finished_at", "updated_at"])
            skipped = (job.counts or {}).get("skipped", [])
            text = "Nothing to sync: " + "; ".join(skipped) if skipped else "No tracked accounts yet."
            return Answer("refused", text, job)
        try:
            await self._show(job, chat_id)
        finally:
            self.jobs.start(job)
        return Answer("started", "Sync of all accounts started.", job)

    async def pause(self, job: Job) -> str:
        """Pause now (transfers in flight stop); the sentence says whether it was running."""
        done = await self.jobs.pause(job)
        return "Pausing…" if done else "That download is not running."

    async def cancel(self, job: Job) -> str:
        """Cancel for good; files already downloaded stay archived."""
        live = self.service.is_active(job.id) or self.jobs.is_running(job.id)
        done = await self.jobs.cancel(job)
        if done and not live and self.show_final is not None:  # nothing runs to report it
            await self.show_final(job)
        return "Cancelling; files already downloaded stay archived." if done else "Nothing to cancel."

    async def resume(self, job: Job, chat_id: int | None) -> str:
        """Continue a paused or interrupted job, its status message in ``chat_id``."""
        await job.refresh_from_db()
        if job.state not in queries.RESUMABLE_STATES:
            return "That download is not paused."
        refusal = await self.jobs.why_not_resume(job)
        if refusal is not None:
            return refusal
        await self._show(job, chat_id)
        return "Resuming." if await self.jobs.resume(job) else "That download is not paused."

    async def retry(self, job: Job, chat_id: int | None) -> str:
        """Start a new job for the same account (or a new sync-all) after a failure."""
        if job.kind == "syncall":
            answer = await self.syncall(chat_id=chat_id)
        else:
            await job.fetch_related("account")
            answer = await self.download(job.account, phases=None, chat_id=chat_id)
        if answer.outcome == "running":
            return "It is already running."
        return "Retrying." if answer.outcome == "started" else answer.sentence

    async def _show(self, job: Job, chat_id: int | None) -> None:
        if self.show is not None and chat_id is not None:
            await self.show(job, chat_id)


def _covers(job: Job, phases: tuple[str, ...] | None) -> bool:
    """Whether a paused job would download what was asked for (a full job covers a phase)."""
    return phases is None or set(phases) <= set(job.phases)
