"""JobManager: starts jobs as tasks, runs sync-all, pauses, resumes and shuts down.

Telegram-agnostic: chat, scheduler and command line all drive jobs through it.
"""

from __future__ import annotations

import asyncio
import logging

from db import queries
from db.models import Account, Job
from db.patience import FOREVER, patience
from downloader.endings import busy_sentence
from downloader.errors import DownloadError
from downloader.events import JobResult, SyncAccountDone, SyncFinished, SyncStarted
from downloader.gone import backoff_reason
from downloader.service import DownloadService

log = logging.getLogger(__name__)
FINISHED = ("completed", "failed", "cancelled")
BUSY_STATES = ("queued", "running", "paused", "interrupted")


class JobManager:
    """Owns the asyncio tasks of running jobs."""

    def __init__(self, service: DownloadService):
        self.service = service
        # What runs one download job: the service here, or (with QUEUE_URL) a worker.
        self.runner = service.run
        self.remote = False
        self._tasks: dict[int, asyncio.Task] = {}
        # A sync-all counts as running from its creation, before its task starts, so a
        # manual /syncall and a scheduled one can never both be created.
        self._syncall_lock = asyncio.Lock()
        self._reserved: int | None = None

    def is_running(self, job_id: int) -> bool:
        """True while the job's task is alive in this process."""
        task = self._tasks.get(job_id)
        return task is not None and not task.done()

    async def prepare_download(
        self, account: Account, *, chat_id: int | None, phases: list[str] | None = None
    ) -> tuple[Job, bool]:
        """A new queued download (start it with `start`), or the running one and False."""
        existing = await queries.active_job_for(account)
        # Active: created here and not finished (also sync-all children and jobs not yet started).
        if existing is not None and self.service.is_active(existing.id):
            return existing, False
        await self.service.guard.check()
        holder = await self.service.busy_with(account)
        if holder is not None:
            raise DownloadError(busy_sentence(account, holder))
        return await self.service.create_job(account, chat_id=chat_id, phases=phases), True

    def start(self, job: Job) -> asyncio.Task:
        """Run (or resume) a job in the background."""
        self.service.control(job.id)
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._tasks[job.id] = task
        if job.id == self._reserved:
            self._reserved = None  # its task now says it is running
        return task

    async def _run(self, job: Job):
        try:
            if job.kind == "syncall":
                # Its own writes wait out a short database outage, as its children's do.
                with patience(FOREVER):
                    return await self._run_syncall(job)
            return await self.runner(job)
        finally:
            self._tasks.pop(job.id, None)

    async def running_syncall(self) -> Job | None:
        """The sync-all running (or created and about to start) in this process, if any."""
        ids = [job_id for job_id in list(self._tasks) if self.is_running(job_id)]
        if self._reserved is not None:
            ids.append(self._reserved)
        job = await Job.filter(id__in=ids, kind="syncall").first() if ids else None
        if job is not None and job.id == self._reserved and job.state not in ("queued", "running"):
            self._reserved = None  # created, then finished without running (no accounts)
            return None
        return job

    async def prepare_syncall(
        self, *, chat_id: int | None, phases: list[str] | None = None
    ) -> tuple[Job, bool]:
        """A queued sync-all of every tracked account, or the running one and False."""
        async with self._syncall_lock:
            running = await self.running_syncall()
            if running is not None:
                return running, False
            await self.service.guard.check()
            owner = self.service.registry.token if self.service.registry is not None else None
            parent = await Job.create(kind="syncall", chat_id=chat_id, phases=phases or [], owner=owner)
            self._reserved = parent.id
        skipped = []
        for account in await queries.tracked_accounts():
            own = self.service.sources[account.platform].phases
            # The run's phases (a stories-only sync skips TikTok) and the account's own choice.
            chosen = [p for p in own if (phases is None or p in phases) and p in (account.phases or own)]
            if not chosen:
                continue
            reason = backoff_reason(account, queries.now()) or await self._busy_reason(account, parent)
            if reason is not None:
                skipped.append(f"@{account.username}: {reason}")
                continue
            await self.service.create_job(account, phases=chosen, parent=parent)
        if skipped:
            parent.counts = {"skipped": skipped}
            await parent.save(update_fields=["counts", "updated_at"])
        return parent, True

    async def _busy_reason(self, account: Account, parent: Job) -> str | None:
        """Why a sync-all leaves this account alone (one writer per account), or None.

        An interrupted download (a restart) is superseded: the new sync lists the account
        from the top and the clean boundary makes sure nothing between is missed."""
        for job in await Job.filter(account=account, kind="download", state__in=BUSY_STATES):
            if self.service.is_active(job.id):
                return "already downloading"
            if job.state == "paused":
                return "has a paused download (/resume or /cancel it)"
            if job.state == "interrupted":
                await _supersede(job, parent)
        holder = await self.service.busy_with(account)
        return f"being downloaded by {holder.describe()}" if holder is not None else None

    async def why_not_resume(self, job: Job) -> str | None:
        """A sentence when a paused job must not continue now (no archive folder, or someone
        else has its account)."""
        try:
            await self.service.guard.check()
        except DownloadError as exc:
            return exc.sentence
        if job.kind != "download" or job.account_id is None:
            return None
        account = await Account.get(id=job.account_id)
        other = await queries.active_job_for(account)
        if other is not None and other.id != job.id and self.service.is_active(other.id):
            where = "the running sync of all accounts" if other.parent_id else "another download"
            return f"@{account.username} is being downloaded by {where} right now; it covers this one."
        holder = await self.service.busy_with(account)
        return busy_sentence(account, holder) if holder is not None else None

    async def _run_syncall(self, parent: Job) -> list[JobResult]:
        """Run the unfinished children; the service bounds concurrency per platform."""
        parent.state = "running"
        await parent.save(update_fields=["state", "updated_at"])
        children = await Job.filter(parent=parent).order_by("id").prefetch_related("account")
        # A child resumed on its own (/resume alice) runs there; never twice at once.
        todo = [child for child in children if child.state not in FINISHED and not self.is_running(child.id)]
        total = len(children)
        done = total - len(todo)
        skipped = tuple((parent.counts or {}).get("skipped", []))
        self.service.emit(SyncStarted(parent.id, total, tuple(parent.phases) or None, skipped))
        # Stories and highlights of many accounts in a few batched requests, chunk by chunk.
        if not self.remote:  # workers make their own requests, with their own sessions
            self.service.plan_prefetch(parent.id, todo)
        results: list[JobResult] = []
        try:
            for coro in asyncio.as_completed([self._child(c) for c in todo]):
                result = await coro
                results.append(result)
                done += 1
                self.service.emit(SyncAccountDone(parent.id, done, total, result))
        finally:
            self.service.end_prefetch(parent.id)
        state = _syncall_state(results)
        parent.state = state
        if state in FINISHED:
            parent.finished_at = queries.now()
        await parent.save()
        self.service.emit(SyncFinished(parent.id, state, results))
        log.info("sync-all %s %s (%d accounts)", parent.id, state, total)
        return results

    async def _child(self, job: Job) -> JobResult:
        self.service.control(job.id)
        return await self.runner(job)  # never raises but CancelledError

    async def pause(self, job: Job) -> bool:
        """Pause a job (for a sync-all: every child); False if it is not active."""
        return await self._ask(job, self.service.pause)

    async def cancel(self, job: Job) -> bool:
        """Cancel a job (for a sync-all: every child); a paused one is marked cancelled."""
        if await self._ask(job, self.service.cancel):
            return True
        await job.refresh_from_db()
        if job.state not in queries.RESUMABLE_STATES:
            return False
        children = await Job.filter(parent=job, state__in=queries.RESUMABLE_STATES)
        await Job.filter(id__in=[child.id for child in children]).update(state="cancelled")
        job.state, job.finished_at = "cancelled", queries.now()
        await job.save(update_fields=["state", "finished_at", "updated_at"])
        # A paused file is kept for Resume; cancelled, nothing will continue it.
        for each in [job, *children]:
            if each.kind == "download" and each.account_id is not None:
                await each.fetch_related("account")
                await self.service.drop_partials(each.account)
        return True

    async def _ask(self, job: Job, action) -> bool:
        if job.kind != "syncall":
            return action(job.id)
        child_ids = await Job.filter(parent=job).values_list("id", flat=True)
        return any([action(job_id) for job_id in [job.id, *child_ids]])  # the sync-all and each account

    async def resume(self, job: Job) -> bool:
        """Continue a paused or interrupted job; False if it is not resumable (now)."""
        await job.refresh_from_db()
        if job.state not in queries.RESUMABLE_STATES or self.is_running(job.id):
            return False
        if await self.why_not_resume(job) is not None:
            return False
        job.state = "queued"
        await job.save(update_fields=["state", "updated_at"])
        if job.kind == "syncall":
            await Job.filter(parent=job, state__in=queries.RESUMABLE_STATES).update(state="queued")
        self.start(job)
        return True

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Ask running jobs to stop at the next item, wait a little, then cancel them."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        if not tasks:
            return
        self.service.interrupt_all()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
        log.info("saved %d running job(s) for /resume", len(tasks))


async def _supersede(job: Job, parent: Job) -> None:
    """An interrupted download gives way to a new sync (and its sync-all, once all did)."""
    job.state, job.finished_at = "cancelled", queries.now()
    job.error = f"superseded by sync #{parent.id}"
    await job.save(update_fields=["state", "finished_at", "error", "updated_at"])
    if job.parent_id is not None:
        resumable = await Job.filter(parent_id=job.parent_id, state__in=queries.RESUMABLE_STATES).exists()
        if not resumable:
            await Job.filter(id=job.parent_id, state="interrupted").update(state="cancelled")
    log.info("job %s superseded by sync-all %s", job.id, parent.id)


def _syncall_state(results: list[JobResult]) -> str:
    """A sync-all is paused/cancelled/interrupted if its children stopped that way."""
    for state in ("interrupted", "cancelled", "paused"):
        if any(r.state == state for r in results):
            return state
    return "completed"
