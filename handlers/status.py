"""Self-updating status messages: one per job or sync-all, edited within Telegram's limits.

The board subscribes to the DownloadService's events, keeps a view per message,
and a small per-message loop sends at most one edit every `interval` seconds,
skips unchanged text, always sends the final state and waits out RetryAfter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from db import queries
from db.models import Job
from downloader.events import (
    ItemDone,
    JobFinished,
    JobStarted,
    PhaseFinished,
    PhaseResult,
    PhaseStarted,
    QueueWait,
    StopAsked,
    SyncAccountDone,
    SyncFinished,
    SyncStarted,
    Waiting,
    Warned,
)
from downloader.words import result_from_job
from handlers.status_view import (
    JobView,
    SyncView,
    job_keyboard,
    plural,
    render_job,
    render_sync,
    sync_line,
)

log = logging.getLogger(__name__)


@dataclass
class Tracked:
    """One status message and the view it shows."""

    chat_id: int
    view: JobView | SyncView
    message_id: int | None = None
    reply_to: int | None = None
    lazy: bool = False  # scheduled runs: post only once there is something to say
    quiet: bool = False  # ...and stay silent when nothing new was found
    sent: tuple[str, str] | None = None
    last_sent: float = 0.0
    dirty: bool = True
    final: bool = False
    urgent: bool = False  # a job stopped (paused, cancelled, ended): shown at once, not paced
    holding: bool = False  # a stop was asked: progress edits wait, the chat's pace stays free
    task: asyncio.Task | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


FINAL = ("completed", "failed", "cancelled")


def view_from_job(job: Job, platform: str, username: str) -> JobView:
    """A view rebuilt from the job row (after a restart, a resume or a cancel while paused)."""
    finished = {
        phase: PhaseResult.from_dict(data)
        for phase, data in (job.counts or {}).items()
        if data.get("status") in ("done", "skipped", "failed")
    }
    view = JobView(job.id, platform, username, list(job.phases), state=job.state, finished=finished)
    if job.state in FINAL:
        view.result = result_from_job(job, platform, username)
    return view


async def sync_view_from_job(job: Job, title: str) -> SyncView:
    """A sync-all view with the accounts it already finished (for a resumed sync-all)."""
    children = await Job.filter(parent=job).order_by("id").prefetch_related("account")
    view = SyncView(job.id, total=len(children), title=title, state=job.state)
    view.skipped = list((job.counts or {}).get("skipped", []))
    if job.state in ("queued", "running", "paused", "interrupted"):
        view.state = "running" if job.state in ("queued", "running") else job.state
    for child in children:
        if child.state in FINAL:
            result = result_from_job(child, child.account.platform, child.account.username)
            view.done += 1
            view.lines.append(sync_line(result))
            view.new_items += result.new_items
            view.problems += int(result.state == "failed" or any(p.status == "failed" for p in result.phases))
    return view


class StatusBoard:
    """All status messages of this process."""

    def __init__(self, bot: Bot, service, interval: float = 3.0, platform_slots: dict | None = None):
        self.bot = bot
        self.service = service
        self.interval = interval
        # Downloads of one platform that may run at once (as the service runs them).
        self.platform_slots = {"instagram": 1, "tiktok": 2} | (platform_slots or {})
        self._tracked: dict[int, Tracked] = {}
        self._parent_of: dict[int, int] = {}
        service.subscribe(self.on_event)

    async def attach_job(
        self, job: Job, chat_id: int, *, reply_to: int | None = None, reuse: bool = True
    ) -> Tracked:
        """Show a download's status in ``chat_id`` (editing its earlier message when it has one)."""
        await job.fetch_related("account")
        view = view_from_job(job, job.account.platform, job.account.username)
        if view.state == "queued":
            view.behind = await self._running_before(job)
        tracked = Tracked(chat_id, view, reply_to=reply_to)
        if reuse and job.chat_id == chat_id and job.message_id:
            tracked.message_id = job.message_id
        self._tracked[job.id] = tracked
        await self._send(tracked)
        job.chat_id, job.message_id = chat_id, tracked.message_id
        await job.save(update_fields=["chat_id", "message_id", "updated_at"])
        return tracked

    async def _running_before(self, job: Job) -> str | None:
        """The download a queued job waits for ("@bob"), or None when a slot is free."""
        platform = job.account.platform
        running = [
            other
            for other in await queries.running_downloads(platform)
            if other.id != job.id and self.service.is_active(other.id)
        ]
        if len(running) < self.platform_slots.get(platform, 1):
            return None
        return f"@{running[0].account.username}"

    async def attach_sync(
        self,
        job: Job,
        chat_id: int,
        *,
        title: str = "Sync all",
        lazy: bool = False,
        quiet: bool = False,
    ) -> Tracked:
        """Show a sync-all's status (editing its earlier message); ``lazy`` posts only once
        something happens."""
        children = await Job.filter(parent=job).values_list("id", flat=True)
        for child_id in children:
            self._parent_of[child_id] = job.id
        view = await sync_view_from_job(job, title)
        tracked = Tracked(chat_id, view, lazy=lazy, quiet=quiet)
        if job.chat_id == chat_id and job.message_id:
            tracked.message_id = job.message_id
        self._tracked[job.id] = tracked
        if not lazy:
            await self._send(tracked)
            job.chat_id, job.message_id = chat_id, tracked.message_id
            await job.save(update_fields=["chat_id", "message_id", "updated_at"])
        return tracked

    async def show_final(self, job: Job) -> None:
        """Render a job that changed without running here (cancelled while paused)."""
        if job.chat_id is None:
            return
        if job.kind == "syncall":
            tracked = await self.attach_sync(job, job.chat_id)
        else:
            tracked = await self.attach_job(job, job.chat_id)
        self._forget(tracked)

    def message_of(self, job_id: int) -> tuple[int, int] | None:
        """(chat_id, message_id) of a job's status message, if it has one here."""
        tracked = self._tracked.get(self._parent_of.get(job_id, job_id))
        if tracked is None or tracked.message_id is None:
            return None
        return tracked.chat_id, tracked.message_id

    # --- events ------------------------------------------------------------
    def on_event(self, event) -> None:
        """Update the view the event belongs to and schedule an edit."""
        job_id = event.job_id
        if isinstance(event, StopAsked) and job_id in self._parent_of:
            return  # a sync-all's message shows its children's ends
        if job_id in self._parent_of:
            self._on_child_event(self._parent_of[job_id], event)
            return
        tracked = self._tracked.get(job_id)
        if tracked is None:
            return
        if isinstance(event, StopAsked):
            tracked.holding = True  # Telegram allows ~1 edit a second: keep it for "Paused"
            return
        if isinstance(tracked.view, SyncView):
            self._on_sync_event(tracked, event)
        else:
            _apply(tracked.view, event)
            tracked.final = tracked.urgent = isinstance(event, JobFinished)
        self._touch(tracked)

    def _on_child_event(self, parent_id: int, event) -> None:
        tracked = self._tracked.get(parent_id)
        if tracked is None:
            return
        view: SyncView = tracked.view
        if isinstance(event, JobStarted):
            view.current[event.job_id] = JobView(
                event.job_id, event.platform, event.username, list(event.phases), state="running"
            )
        elif isinstance(event, JobFinished):
            view.current.pop(event.job_id, None)
            view.waiting.pop(event.job_id, None)
        elif isinstance(event, QueueWait) and event.where:
            view.waiting[event.job_id] = event.where
        elif isinstance(event, QueueWait):
            view.waiting.pop(event.job_id, None)
        elif event.job_id in view.current:
            _apply(view.current[event.job_id], event)
        self._touch(tracked)

    def _on_sync_event(self, tracked: Tracked, event) -> None:
        view: SyncView = tracked.view
        if isinstance(event, SyncStarted):
            view.total = event.total
            view.skipped = list(event.skipped)
        elif isinstance(event, SyncAccountDone):
            view.done = event.done
            view.requests = event.result.requests or view.requests
            view.lines.append(sync_line(event.result))
            view.new_items += event.result.new_items
            failed = event.result.state == "failed" or any(p.status == "failed" for p in event.result.phases)
            view.problems += int(failed)
            if event.result.new_items or failed:
                tracked.lazy = False  # now there is something to tell
        elif isinstance(event, SyncFinished):
            view.state = event.state
            tracked.final = tracked.urgent = True
            if event.state != "completed":
                tracked.lazy = False  # paused or cancelled: show it, with its buttons

    def _touch(self, tracked: Tracked) -> None:
        tracked.dirty = True
        if tracked.urgent:
            tracked.wake.set()  # a Pause or Cancel is shown within the promised 2 s
        if tracked.task is None or tracked.task.done():
            tracked.task = asyncio.get_running_loop().create_task(self._flush_loop(tracked))

    # --- sending -------------------------------------------------------------
    async def _flush_loop(self, tracked: Tracked) -> None:
        """Send pending changes, at most one edit per interval, until nothing is pending."""
        while tracked.dirty:
            wait = tracked.last_sent + self.interval - time.monotonic()
            if wait > 0 and not tracked.urgent:
                tracked.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tracked.wake.wait(), wait)
            if self._tracked.get(tracked.view.job_id) is not tracked:
                return  # resumed meanwhile: the new view owns the message now, this one is stale
            tracked.dirty = False
            if tracked.final and _nothing_to_tell(tracked):
                await self._close_quiet(tracked)
                return
            if not tracked.lazy and (tracked.final or not tracked.holding):
                await self._send(tracked)
        if tracked.final:
            self._forget(tracked)

    async def _close_quiet(self, tracked: Tracked) -> None:
        """A lazy (scheduled) run found nothing: one short line, or silence in quiet mode."""
        if not tracked.quiet and tracked.view.state == "completed":
            await self._call(
                self.bot.send_message,
                chat_id=tracked.chat_id,
                text=f"{tracked.view.title}: nothing new in {plural(tracked.view.total, 'account')}.",
            )
        self._forget(tracked)

    def _forget(self, tracked: Tracked) -> None:
        if self._tracked.get(tracked.view.job_id) is not tracked:
            return  # a resume attached a new view for the job: that one stays
        self._tracked.pop(tracked.view.job_id, None)
        for child, parent in list(self._parent_of.items()):
            if parent == tracked.view.job_id:
                del self._parent_of[child]

    async def _send(self, tracked: Tracked) -> None:
        """Post or edit the message; unchanged text is not sent again."""
        text, markup = _render(tracked)
        key = (text, markup.to_json() if markup else "")
        if key == tracked.sent:
            return
        if tracked.message_id is not None and await self._edit(tracked, text, markup):
            tracked.sent, tracked.last_sent = key, time.monotonic()
            return
        message = await self._call(
            self.bot.send_message,
            chat_id=tracked.chat_id,
            text=text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            reply_to_message_id=tracked.reply_to,
        )
        if message is not None:
            tracked.message_id = message.message_id
            tracked.sent, tracked.last_sent = key, time.monotonic()

    async def _edit(self, tracked: Tracked, text: str, markup) -> bool:
        """Edit in place; False when the message is gone (then a new one is posted)."""
        try:
            await self._call(
                self.bot.edit_message_text,
                chat_id=tracked.chat_id,
                message_id=tracked.message_id,
                text=text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                raise_bad=True,
            )
            return True
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return True
            log.info("status message %s gone (%s); posting a new one", tracked.message_id, exc)
            tracked.message_id = None
            return False

    async def _call(self, method, raise_bad: bool = False, **kwargs):
        """Call the Bot API, waiting out RetryAfter; other errors are logged, not raised."""
        for _ in range(5):
            try:
                return await method(**kwargs)
            except RetryAfter as exc:
                delay = exc.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
                await asyncio.sleep(seconds + 0.1)
            except BadRequest:
                if raise_bad:
                    raise
                log.warning("Telegram refused a status update", exc_info=True)
                return None
            except (Forbidden, TelegramError) as exc:
                log.warning("could not update status message: %s", exc)
                return None
        return None

    async def tell(self, chat_id: int, text: str) -> None:
        """One plain message (within the same limits and RetryAfter handling as status messages)."""
        await self._call(self.bot.send_message, chat_id=chat_id, text=text)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (briefly) until every pending final state has been sent."""
        tasks = [t.task for t in self._tracked.values() if t.task and not t.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)


def _render(tracked: Tracked) -> tuple[str, InlineKeyboardMarkup | None]:
    view = tracked.view
    if isinstance(view, SyncView):
        state = view.state if view.state != "completed" else "done"
        return render_sync(view), job_keyboard(view.job_id, state)
    return render_job(view), job_keyboard(view.job_id, view.state)


def _nothing_to_tell(tracked: Tracked) -> bool:
    return tracked.lazy and isinstance(tracked.view, SyncView) and tracked.message_id is None


def _apply(view: JobView, event) -> None:
    """Fold one service event into a job view."""
    if isinstance(event, JobStarted):
        view.state, view.queue_wait = "running", None
    elif isinstance(event, QueueWait):
        view.queue_wait = event.where
    elif isinstance(event, PhaseStarted):
        view.phase, view.done, view.total = event.phase, 0, event.total
        view.finished.pop(event.phase, None)
    elif isinstance(event, ItemDone):
        view.done, view.total, view.waiting_until = event.done, event.total, None
    elif isinstance(event, Waiting):
        view.waiting_until, view.waiting_reason = event.until, event.reason
    elif isinstance(event, Warned):
        view.warnings.append(event.message)
    elif isinstance(event, PhaseFinished):
        if event.result.status in ("done", "skipped", "failed"):
            view.finished[event.result.phase] = event.result
    elif isinstance(event, JobFinished):
        view.state = event.result.state
        view.result = event.result if event.result.state in ("completed", "failed", "cancelled") else None
        view.reason = event.result.error if view.result is None else None
        for phase in event.result.phases:
            if phase.status in ("done", "skipped", "failed"):
                view.finished[phase.phase] = phase
