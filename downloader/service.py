"""The DownloadService: runs a job's phases, emits progress, supports pause/cancel.

It knows nothing about Telegram. Sources are blocking and run in worker threads;
everything else (archive checks, fetching, recording) happens on the event loop.
Before any job the archive folder is checked (guard.py) and the account's lease is
taken (leases.py); rate limits and network trouble are waited out on the loop,
interruptibly, and the phase continues from its saved cursor.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from db import queries
from db.models import Account, Job
from db.patience import FOREVER, DatabaseUnavailable, patience
from downloader import leftovers
from downloader.control import JobControl
from downloader.endings import busy_sentence, crashed, job_ending, phase_problems
from downloader.errors import (
    DownloadError,
    LoginRequired,
    StopRequested,
    Transient,
)
from downloader.events import (
    SHOWN_AS_EVENT,
    Event,
    JobFinished,
    JobResult,
    JobStarted,
    PhaseFinished,
    PhaseResult,
    StopAsked,
    Waiting,
    Warned,
)
from downloader.fetch import Fetcher
from downloader.gone import clear_gone, gone_kind, mark_gone
from downloader.guard import ArchiveGuard
from downloader.items import ItemWriter
from downloader.knowledge import forget_missing_files, known_about, stored_account
from downloader.leases import Holder, ProcessRegistry
from downloader.patience import Patience, wait_reason
from downloader.phase import PhaseRunner, PhaseTools
from downloader.prefetch import CHUNK, PrefetchPlan
from downloader.profiles import record_profile
from downloader.renames import follow_rename
from downloader.sources.base import Account as SourceAccount
from downloader.sources.base import Source

log = logging.getLogger(__name__)
current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar("current_job", default=None)
DATABASE_WAIT = 600.0  # seconds a running job waits for a lost database; then it is left resumable


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
        registry: ProcessRegistry | None = None,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.sources = sources
        self.fetcher = fetcher
        self.writer = ItemWriter(
            data_dir=self.data_dir,
            fetcher=fetcher,
            slots=asyncio.Semaphore(concurrency),
            write_metadata=write_metadata,
        )
        self.stop_after_archived = stop_after_archived
        self.guard = ArchiveGuard(self.data_dir)
        self.registry = registry
        slots = {"instagram": 1, "tiktok": 2} | (platform_slots or {})
        self._platform_slots = {name: asyncio.Semaphore(n) for name, n in slots.items()}
        self._subscribers: list[Callable[[Event], None]] = []
        self._controls: dict[int, JobControl] = {}
        self._writing: dict[int, int] = {}  # account id -> the job downloading it in this process
        self._untouched: set[int] = set()  # jobs refused before they ran: not a sync of the account
        self._resumed: set[int] = set()  # jobs run again after a stop (partial files may be left)
        self._taken_over: set[int] = set()  # accounts whose dead writer may have left partial files
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown = threading.Event()  # ends waits of threads that belong to no job
        self.database_wait = DATABASE_WAIT
        # Per platform: a line on the requests spent, shown with every finished job.
        self.usage_lines: dict[str, Callable[[], str]] = {}
        # Per platform: awaited before each job's first request (the budget reads other processes').
        self.before_job: dict[str, Callable[[], Awaitable[None]]] = {}
        # Seconds a job may spend waiting out rate limits and network trouble in all (the command
        # line's --wait); None: the full schedule (downloader.patience).
        self.max_wait: float | None = None
        self._plans: dict[int, PrefetchPlan] = {}  # sync-all id -> its batched stories/highlights
        self.prefetch_chunk = CHUNK

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
        """Called by sources (in a thread) before a politeness or rate-limit wait."""
        job_id = current_job.get()
        if job_id is not None:
            self.emit_threadsafe(Waiting(job_id, until, reason))

    def wait_in_thread(self, seconds: float) -> None:
        """A source's wait (politeness delay): ended by Pause, Cancel or shutdown (StopRequested)."""
        control = self._controls.get(current_job.get() or -1)
        if control is not None:
            control.sleep(seconds)
        elif self._shutdown.wait(seconds):
            raise StopRequested()

    # --- control -----------------------------------------------------------
    def control(self, job_id: int) -> JobControl:
        """The control flags of a job (created on first use)."""
        return self._controls.setdefault(job_id, JobControl())

    def forget(self, job_id: int) -> None:
        """Drop a job's control flags (a job that ran elsewhere has ended)."""
        self._controls.pop(job_id, None)

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
        self._shutdown.set()
        ids = list(self._controls)
        for job_id in ids:
            self._ask(job_id, "interrupted")
        return ids

    def _ask(self, job_id: int, state: str) -> bool:
        if job_id not in self._controls:
            return False
        self._controls[job_id].ask(state)
        self.emit(StopAsked(job_id, state))
        return True

    async def lookup(self, platform: str, username: str):
        """Resolve an account with one light request (for /add); raises DownloadError."""
        return await asyncio.to_thread(self.sources[platform].resolve, username)

    async def busy_with(self, account: Account) -> Holder | None:
        """Another live process downloading this account, if any."""
        return await self.registry.holder(account) if self.registry is not None else None

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
        owner = self.registry.token if self.registry is not None else None
        job = await Job.create(
            kind="download", account=account, phases=chosen, chat_id=chat_id, parent=parent, owner=owner
        )
        self.control(job.id)  # active from now: pause/cancel work while queued
        log.info("job %s queued: %s @%s %s", job.id, account.platform, account.username, chosen)
        return job

    async def run(self, job: Job) -> JobResult:
        """Run (or resume) a job to its end, pause or cancellation; never raises DownloadError.

        A lost database is waited out (up to DATABASE_WAIT, shown in the status message);
        storing the job's end waits as long as it takes, so no job is left "running"."""
        self._loop = asyncio.get_running_loop()
        control = self.control(job.id)
        results = [PhaseResult.from_dict(job.counts.get(p, {"phase": p})) for p in job.phases]
        if job.counts:
            self._resumed.add(job.id)  # it ran before: a stop may have left partial files
        show_wait = lambda until, why: self.emit(Waiting(job.id, until, why))  # noqa: E731
        with patience(FOREVER, show_wait):  # not started yet: it may wait for the database
            await job.fetch_related("account")
        account: Account = job.account
        token = current_job.set(job.id)
        try:
            with patience(self.database_wait, show_wait):
                state, error = await self._run_guarded(job, account, control, results)
        except asyncio.CancelledError:
            with patience(FOREVER):
                await self._finish(job, account, results, "interrupted", None)
            raise
        except DownloadError as exc:  # refused before it ran: the archive folder, another writer
            state, error = "failed", exc.sentence
            self._untouched.add(job.id)
        except DatabaseUnavailable as exc:  # a long outage: keep the job resumable, never "failed"
            log.warning("job %s stops: %s", job.id, exc.sentence)
            state, error = "interrupted", f"{exc.sentence} The download stopped and can be resumed."
        except Exception as exc:  # a bug or the machine (disk, database): fail, never hang
            state, error = crashed(job, exc)
        finally:
            current_job.reset(token)
            self._controls.pop(job.id, None)
        with patience(FOREVER):
            return await self._finish(job, account, results, state, error)

    async def _run_guarded(self, job, account, control, results) -> tuple[str, str | None]:
        """Check the archive folder, hold the account, wait for the platform's turn, run."""
        await self.guard.check()
        if self._writing.setdefault(account.id, job.id) != job.id:  # one writer in this process too
            raise DownloadError(f"@{account.username} is already being downloaded by another job here.")
        try:
            return await self._run_leased(job, account, control, results)
        finally:
            self._writing.pop(account.id, None)

    async def _run_leased(self, job, account, control, results) -> tuple[str, str | None]:
        """Hold the account's lease (across processes) while the job runs."""
        holder = await self.registry.acquire(account, self._clear_leftovers) if self.registry else None
        if holder is not None:
            raise DownloadError(busy_sentence(account, holder))
        try:
            slot = self._platform_slots.setdefault(account.platform, asyncio.Semaphore(1))
            if not await _acquire(slot, control):  # paused or cancelled while waiting its turn
                return control.request, control.reason
            try:
                return await self._run_phases(job, account, control, results)
            finally:
                slot.release()
        finally:
            if self.registry is not None:
                await self._release(account)

    async def _release(self, account: Account) -> None:
        """Give the account's lease back; after a long database outage it expires instead."""
        try:
            await self.registry.release(account)  # waits out a short outage like any other write
        except DatabaseUnavailable:  # no longer renewed by the heartbeat: free within a minute or two
            log.info("@%s: the lease could not be given back and expires by itself", account.username)

    async def _clear_leftovers(self, account: Account) -> None:
        """We took the account over from a process that died: clear its unfinished files
        (resumable partial files stay for this job to continue; its end sweeps the rest)."""
        self._taken_over.add(account.id)
        try:
            removed = await asyncio.to_thread(
                leftovers.clear_account, self.data_dir, account.platform, account.username, True
            )
        except OSError as exc:  # the job still runs; its own temporary names never collide
            log.warning("could not clear temporary files of @%s: %s", account.username, exc)
            return
        if removed:
            log.info("removed %d temporary file(s) of @%s left by that process", removed, account.username)

    async def _run_phases(self, job, account, control, results) -> tuple[str, str | None]:
        """Resolve the account, then run each unfinished phase in order."""
        if control.request:
            return control.request, control.reason
        job.owner = self.registry.token if self.registry is not None else None
        job.state = "running"
        await job.save(update_fields=["state", "owner", "updated_at"])
        log.info("job %s running", job.id)
        self.emit(JobStarted(job.id, account.platform, account.username, tuple(job.phases)))
        source = self.sources[account.platform]
        if account.platform in self.before_job:
            await self.before_job[account.platform]()
        waits = Patience(self.max_wait)
        if job.parent_id in self._plans:  # part of a sync-all: its chunk's batched answers
            await self._plans[job.parent_id].ready(job)
        known_before = account.platform_user_id is not None  # a name never seen is not "gone"
        try:
            describe = lambda: self._describe_account(source, account, job)  # noqa: E731
            info = await self._patiently(job, control, describe, waits)
        except _Stopped:
            return control.request, control.reason
        except DownloadError as exc:
            if known_before and gone_kind(exc):
                return await self._gone(job, account, results, exc)
            return job_ending(exc, first=True)
        if account.gone in ("deleted", "banned") and {"posts", "videos"} & set(job.phases):
            await clear_gone(account)  # the lookup (made for a listing) answered: it exists again
        await forget_missing_files(self.data_dir, account)
        tools = PhaseTools(
            self.emit, self.emit_threadsafe, self.writer, self.data_dir, self.stop_after_archived
        )
        runner = PhaseRunner(tools, job, account, source, info, control, await known_about(account))
        for index, result in enumerate(results):
            if result.status in ("done", "skipped", "failed"):
                continue  # finished before a pause or restart
            try:
                await self._patiently(job, control, lambda result=result: runner.run(result), waits)
                ending = None
            except _Stopped:
                result.status, ending = control.request, None
            except DownloadError as exc:
                if index == 0 and known_before and gone_kind(exc):
                    return await self._gone(job, account, results, exc)
                self._phase_failed(job, result, exc)
                ending = job_ending(exc, first=index == 0)
            await self._save_counts(job, results)
            if ending is not None:
                return ending
            if control.request:
                return control.request, control.reason
        if any(r.status == "done" for r in results):
            await clear_gone(account)  # it answered normally again (also a private one we now see)
        return "completed", None

    async def _gone(self, job, account, results, exc: DownloadError) -> tuple[str, str]:
        """A known account is gone: note it, end the job with one sentence (not a failure)."""
        sentence = await mark_gone(account, gone_kind(exc))
        for result in results:
            if result.status not in ("done", "skipped", "failed"):
                result.status, result.message = "skipped", "not synced"
        await self._save_counts(job, results)
        log.info("job %s: %s (%s)", job.id, sentence, exc.sentence)
        return "completed", sentence

    async def _patiently(self, job: Job, control: JobControl, call, waits: Patience):
        """Await ``call()``, waiting out rate limits and network trouble on the loop (interruptibly).

        The wait is shown (Waiting) and then ``call`` runs again: a phase continues from its
        saved cursor. Raises _Stopped when the job is asked to stop, or the last DownloadError
        once ``waits`` gives up."""
        attempt = 0
        while True:
            try:
                return await call()
            except StopRequested as exc:  # a politeness delay in the source, ended by Pause/Cancel
                raise _Stopped() from exc
            except DownloadError as exc:
                if control.request:
                    raise _Stopped() from exc
                delay = waits.delay(exc, attempt)
                if delay is None:
                    raise
                until = datetime.now(UTC) + timedelta(seconds=delay)
                self.emit(Waiting(job.id, until, wait_reason(exc), trying_again=isinstance(exc, Transient)))
                log.info("job %s waits %.0f s: %s", job.id, delay, exc.sentence, extra=SHOWN_AS_EVENT)
                if await control.wait(delay):
                    raise _Stopped() from exc
                waits.spent(delay)
                attempt += 1

    def _phase_failed(self, job: Job, result: PhaseResult, exc: DownloadError) -> None:
        """Record a phase's failure; login-required later phases are "skipped", not failed."""
        skipped = isinstance(exc, LoginRequired) and result.phase in ("stories", "highlights")
        result.status = "skipped" if skipped else "failed"
        result.message = exc.sentence
        self.emit(PhaseFinished(job.id, result))
        log.info("job %s phase %s %s: %s", job.id, result.phase, result.status, exc.sentence)

    async def _describe_account(self, source, account: Account, job: Job) -> SourceAccount:
        """The account as the platform sees it; a stories/highlights-only job reuses the stored id."""
        listing = {"posts", "videos"} & set(job.phases)
        if not listing and account.platform_user_id:
            return stored_account(account)
        info = await asyncio.to_thread(source.resolve, account.username, account.platform_user_id)
        renamed = account.platform_user_id and info.username.lower() != account.username
        if renamed:  # the stored id answered with another name: the account was renamed
            sentence = await follow_rename(self.data_dir, account, info.username)
            self.emit(Warned(job.id, None, sentence))
        account.platform_user_id = info.user_id or account.platform_user_id
        account.display_name = info.display_name or account.display_name
        await account.save(update_fields=["platform_user_id", "display_name", "updated_at"])
        # Only with posts: a stories-only job touches nothing else (and TikTok's lookup has no profile).
        if account.platform == "instagram" and "posts" in job.phases:
            await record_profile(self.data_dir, account, info, self.fetcher)
        return info

    def plan_prefetch(self, run_id: int, jobs: list[Job]) -> None:
        """A sync-all's (``run_id``) jobs: batch their stories and highlights chunk by chunk."""
        self._plans[run_id] = PrefetchPlan(self.sources, jobs, self.prefetch_chunk)

    def end_prefetch(self, run_id: int) -> None:
        """The sync-all ended: forget its plan."""
        self._plans.pop(run_id, None)

    async def _finish(self, job, account, results, state, error) -> JobResult:
        """Store the final state and tell subscribers."""
        job.state = state
        job.error = error
        job.counts = {r.phase: r.to_dict() for r in results}
        if state in ("completed", "failed", "cancelled"):
            job.finished_at = queries.now()
            job.cursor = None
        await job.save()
        inherited = job.id in self._resumed or account.id in self._taken_over
        if state == "cancelled" or (state in ("completed", "failed") and inherited):
            await self.drop_partials(account)
        self._resumed.discard(job.id)  # a later run finds out again from the job's counts
        self._taken_over.discard(account.id)
        if state in ("completed", "failed") and job.id not in self._untouched:
            account.last_sync_at = queries.now()
            account.last_error = error or phase_problems(results)
            await account.save(update_fields=["last_sync_at", "last_error", "updated_at"])
        result = JobResult(job.id, account.platform, account.username, state, results, error)
        usage = self.usage_lines.get(account.platform)
        result.requests = usage() if usage is not None else None
        self._untouched.discard(job.id)
        log.info("job %s %s: @%s %s", job.id, state, account.username, error or "")
        self.emit(JobFinished(job.id, result))
        return result

    async def drop_partials(self, account: Account) -> None:
        """Remove the account's partial files once no download may continue them (a Cancel,
        or a job that ended with some left, e.g. of a story that expired meanwhile)."""
        if (account.platform, account.username) in await queries.unfinished_folders():
            return
        if await self.busy_with(account) is not None:
            return  # another process is downloading it: the files are its own
        try:
            removed = await asyncio.to_thread(
                leftovers.clear_account, self.data_dir, account.platform, account.username
            )
        except OSError as exc:
            log.warning("could not remove partial files of @%s: %s", account.username, exc)
            return
        if removed:
            log.info("removed %d partial file(s) of @%s", removed, account.username)

    async def _save_counts(self, job: Job, results: list[PhaseResult]) -> None:
        job.counts = {r.phase: r.to_dict() for r in results}
        await job.save(update_fields=["counts", "updated_at"])


class _Stopped(Exception):
    """The job was asked to stop (pause, cancel, shutdown) while it waited."""


async def _acquire(slot: asyncio.Semaphore, control: JobControl) -> bool:
    """Wait for the platform's turn; False if the job is paused or cancelled meanwhile."""
    while not control.request:
        try:
            await asyncio.wait_for(slot.acquire(), timeout=0.5)
            return True
        except TimeoutError:
            continue
    return False
