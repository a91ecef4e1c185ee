"""The DownloadService: runs a job's phases, emits progress, supports pause/cancel.

It knows nothing about Telegram. Sources are blocking and run in worker threads;
everything else (archive checks, fetching, recording) happens on the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from db import queries
from db.models import Account, Job
from downloader.errors import Checkpoint, DownloadError, LoginRequired, RateLimited
from downloader.events import (
    Event,
    JobFinished,
    JobResult,
    JobStarted,
    PhaseFinished,
    PhaseResult,
    Waiting,
)
from downloader.fetch import Fetcher
from downloader.phase import PhaseRunner
from downloader.sources.base import Source

log = logging.getLogger(__name__)
current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_job", default=None)
# Errors after which the remaining phases would only repeat the same failure.
FATAL = (Checkpoint, RateLimited)


class JobControl:
    """Pause / cancel flags of one job, checked between items."""

    def __init__(self) -> None:
        self.request: str | None = None  # None | "paused" | "cancelled" | "interrupted"

    def ask(self, state: str) -> None:
        """Ask the job to stop at the next item boundary, ending in ``state``."""
        if self.request != "cancelled":
            self.request = state


class DownloadService:
    """Runs download jobs; one instance per process, shared by chat, scheduler and CLI."""

    def __init__(
        self,
        *,
        data_dir: Path,
        sources: dict[str, Source],
        fetcher: Fetcher,
        concurrency: int = 4,
        write_metadata: bool = True,
        stop_after_archived: int = 4,
        platform_slots: dict[str, int] | None = None,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.sources = sources
        self.fetcher = fetcher
        self.item_slots = asyncio.Semaphore(concurrency)
        self.write_metadata = write_metadata
        self.stop_after_archived = stop_after_archived
        slots = {"instagram": 1, "tiktok": 2} | (platform_slots or {})
        self._platform_slots = {name: asyncio.Semaphore(n) for name, n in slots.items()}
        self._subscribers: list[Callable[[Event], None]] = []
        self._controls: dict[int, JobControl] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- subscribers -------------------------------------------------------
    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns an unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def emit(self, event: Event) -> None:
        """Deliver an event to every subscriber; a broken subscriber is only logged."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("progress subscriber failed")

    def emit_threadsafe(self, event: Event) -> None:
        """Deliver an event from a worker thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.emit, event)

    def report_wait(self, until: datetime, reason: str) -> None:
        """Called by sources (in a thread) before a long politeness or rate-limit wait."""
        job_id = current_job.get()
        if job_id is not None:
            self.emit_threadsafe(Waiting(job_id, until, reason))

    # --- control -----------------------------------------------------------
    def control(self, job_id: int) -> JobControl:
        """The control flags of a job (created on first use)."""
        return self._controls.setdefault(job_id, JobControl())

    def is_active(self, job_id: int) -> bool:
        """True while the job is queued or running in this process."""
        return job_id in self._controls

    def pause(self, job_id: int) -> bool:
        """Ask a job to pause; False when it is not active here."""
        return self._ask(job_id, "paused")

    def cancel(self, job_id: int) -> bool:
        """Ask a job to stop for good; finished files stay archived."""
        return self._ask(job_id, "cancelled")

    def interrupt_all(self) -> list[int]:
        """Ask every active job to stop and save itself (process shutdown)."""
        ids = list(self._controls)
        for job_id in ids:
            self._ask(job_id, "interrupted")
        return ids

    def _ask(self, job_id: int, state: str) -> bool:
        if job_id not in self._controls:
            return False
        self._controls[job_id].ask(state)
        return True

    async def lookup(self, platform: str, username: str):
        """Resolve an account with one light request (for /add); raises DownloadError."""
        return await asyncio.to_thread(self.sources[platform].resolve, username)

    # --- jobs ----------------------------------------------------------------
    async def create_job(
        self,
        account: Account,
        *,
        chat_id: int | None = None,
        phases: list[str] | None = None,
        parent: Job | None = None,
    ) -> Job:
        """A queued download job for one account (all of its platform's phases by default)."""
        source = self.sources[account.platform]
        chosen = [p for p in source.phases if phases is None or p in phases]
        job = await Job.create(
            kind="download", account=account, phases=chosen, chat_id=chat_id, parent=parent
        )
        self.control(job.id)  # active from now: pause/cancel work while queued
        log.info("job %s queued: %s @%s %s", job.id, account.platform, account.username, chosen)
        return job

    async def run(self, job: Job) -> JobResult:
        """Run (or resume) a job to its end, pause or cancellation; never raises DownloadError."""
        self._loop = asyncio.get_running_loop()
        control = self.control(job.id)
        await job.fetch_related("account")
        account: Account = job.account
        results = [PhaseResult.from_dict(job.counts.get(p, {"phase": p})) for p in job.phases]
        token = current_job.set(job.id)
        slot = self._platform_slots.setdefault(account.platform, asyncio.Semaphore(1))
        try:
            if not await _acquire(slot, control):  # paused or cancelled while waiting its turn
                state, error = control.request, None
            else:
                try:
                    state, error = await self._run_phases(job, account, control, results)
                finally:
                    slot.release()
        except asyncio.CancelledError:
            state, error = "interrupted", None
            await self._finish(job, account, results, state, error)
            raise
        except Exception as exc:  # a bug or the machine (disk, database): fail, never hang
            log.exception("job %s crashed", job.id)
            state, error = "failed", f"Unexpected error ({type(exc).__name__}); details are in the log."
        finally:
            current_job.reset(token)
            self._controls.pop(job.id, None)
        return await self._finish(job, account, results, state, error)

    async def _run_phases(self, job, account, control, results) -> tuple[str, str | None]:
        """Resolve the account, then run each unfinished phase in order."""
        if control.request:
            return control.request, None
        await self._set_state(job, "running")
        self.emit(JobStarted(job.id, account.platform, account.username, tuple(job.phases)))
        source = self.sources[account.platform]
        try:
            info = await asyncio.to_thread(source.resolve, account.username)
        except DownloadError as exc:
            return "failed", exc.sentence
        await self._remember_account(account, info)
        await self._forget_missing_files(account)
        runner = PhaseRunner(self, job, account, source, info, control)
        for index, result in enumerate(results):
            if result.status in ("done", "skipped", "failed"):
                continue  # finished before a pause or restart
            try:
                await runner.run(result)
            except DownloadError as exc:
                self._phase_failed(job, result, exc)
                if isinstance(exc, FATAL) or index == 0:
                    return "failed", exc.sentence
            await self._save_counts(job, results)
            if control.request:
                return control.request, None
        return "completed", None

    def _phase_failed(self, job: Job, result: PhaseResult, exc: DownloadError) -> None:
        """Record a phase's failure; login-required later phases are "skipped", not failed."""
        skipped = isinstance(exc, LoginRequired) and result.phase in ("stories", "highlights")
        result.status = "skipped" if skipped else "failed"
        result.message = exc.sentence
        self.emit(PhaseFinished(job.id, result))
        log.info("job %s phase %s %s: %s", job.id, result.phase, result.status, exc.sentence)

    async def _finish(self, job, account, results, state, error) -> JobResult:
        """Store the final state and tell subscribers."""
        job.state = state
        job.error = error
        job.counts = {r.phase: r.to_dict() for r in results}
        if state in ("completed", "failed", "cancelled"):
            job.finished_at = queries.now()
            job.cursor = None
        await job.save()
        if state in ("completed", "failed"):
            account.last_sync_at = queries.now()
            account.last_error = error or _phase_problems(results)
            await account.save(update_fields=["last_sync_at", "last_error", "updated_at"])
        result = JobResult(job.id, account.platform, account.username, state, results, error)
        log.info("job %s %s: @%s %s", job.id, state, account.username, error or "")
        self.emit(JobFinished(job.id, result))
        return result

    async def _set_state(self, job: Job, state: str) -> None:
        job.state = state
        await job.save(update_fields=["state", "updated_at"])
        log.info("job %s %s", job.id, state)

    async def _save_counts(self, job: Job, results: list[PhaseResult]) -> None:
        job.counts = {r.phase: r.to_dict() for r in results}
        await job.save(update_fields=["counts", "updated_at"])

    async def _remember_account(self, account: Account, info) -> None:
        """Keep the platform's stable id and display name."""
        account.platform_user_id = info.user_id or account.platform_user_id
        account.display_name = info.display_name or account.display_name
        await account.save(update_fields=["platform_user_id", "display_name", "updated_at"])

    async def _forget_missing_files(self, account: Account) -> None:
        """Rows whose file was deleted from disk are dropped so the file comes back."""
        rows = await queries.account_media_paths(account)
        missing = await asyncio.to_thread(
            lambda: [mid for mid, path in rows if not (self.data_dir / path).is_file()]
        )
        if missing and len(missing) == len(rows) and not (self.data_dir / "downloads").is_dir():
            # An unmounted disk must not erase the archive and trigger a full re-download.
            log.warning("%s is missing; not touching the archive", self.data_dir / "downloads")
            return
        if missing:
            await queries.forget_media(account.platform, missing)
            account.complete_phases = []  # list everything again to find them
            await account.save(update_fields=["complete_phases", "updated_at"])
            log.info("@%s: %d archived files missing on disk", account.username, len(missing))


async def _acquire(slot: asyncio.Semaphore, control: JobControl) -> bool:
    """Wait for the platform's turn; False if the job is paused or cancelled meanwhile."""
    while not control.request:
        try:
            await asyncio.wait_for(slot.acquire(), timeout=0.5)
            return True
        except TimeoutError:
            continue
    return False


def _phase_problems(results: list[PhaseResult]) -> str | None:
    """One line naming the phases that failed, for the account's "last problem"."""
    problems = [f"{r.phase}: {r.message}" for r in results if r.status == "failed"]
    return "; ".join(problems) or None
