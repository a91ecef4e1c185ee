"""After every job: new files to chats in media mode, one line per account to chats in summary mode.

What is pending is derived from the database (files archived since the chat's setting
was turned on, not yet settled in that chat), and a file counts as delivered only once
Telegram confirmed it, so a crash or restart never loses or repeats a delivery (a send
cut off mid-way may be repeated once). Delivery never makes a platform request.

A pass stopped by network trouble or Telegram's 429 counts no attempt: it is tried again
by the periodic pick-up (every ``retry_interval`` seconds), which also delivers files
archived by the command line while the bot runs.
"""

from __future__ import annotations

import asyncio
import logging

from telegram.error import TelegramError

from db import delivery_queries as dq
from db.models import Account, Job, MediaItem, NotifySetting
from db.patience import connection_lost
from downloader.events import JobFinished, SyncFinished
from handlers.delivery.captions import account_label, backlog_line, given_up_line, summary_counts
from handlers.delivery.sender import Outcome, Sender
from handlers.ratelimit import BACKGROUND

log = logging.getLogger(__name__)
ATTEMPTS = 3  # sends of one file to one chat before it is given up and reported
RETRY_INTERVAL = 180.0  # seconds between pick-ups of what is still undelivered
FINAL = ("completed", "failed", "cancelled")


def units_of(items: list[MediaItem]) -> list[list[MediaItem]]:
    """Files grouped per post (album), story or video, in the order given."""
    units: dict[str, list[MediaItem]] = {}
    for item in items:
        units.setdefault(item.group_id or item.media_id, []).append(item)
    return list(units.values())


def within_limit(units: list[list[MediaItem]], limit: int) -> tuple[list[list[MediaItem]], list[MediaItem]]:
    """The newest posts that fit in ``limit`` files (oldest first), and the files left over."""
    chosen: list[list[MediaItem]] = []
    rest: list[MediaItem] = []
    used = 0
    for index in range(len(units) - 1, -1, -1):
        unit = units[index]
        if used + len(unit) <= limit:
            chosen.append(unit)
            used += len(unit)
            continue
        if not chosen:  # one post larger than the limit: its first files only
            chosen.append(unit[:limit])
            rest.extend(unit[limit:])
            index -= 1
        rest.extend(item for older in units[: index + 1] for item in older)
        break
    return list(reversed(chosen)), rest


class Deliverer:
    """Subscribes to the download service; one worker per chat sends in order."""

    def __init__(
        self, sender: Sender, service, *, backlog_limit: int = 20, retry_interval: float = RETRY_INTERVAL
    ):
        self.sender = sender
        self.backlog_limit = backlog_limit
        self.retry_interval = retry_interval
        self._ticker: asyncio.Task | None = None
        self._events: asyncio.Queue = asyncio.Queue()
        self._consumer: asyncio.Task | None = None
        self._wanted: dict[int, list[int]] = {}  # chat -> accounts to look at, in order
        self._workers: dict[int, asyncio.Task] = {}
        self._sync_lines: dict[int, dict[int, list[str]]] = {}  # sync-all -> chat -> summary lines
        self._stopping = False
        service.subscribe(self.on_event)

    # --- events ----------------------------------------------------------------
    def on_event(self, event) -> None:
        """Queue the ends of jobs and sync-alls; everything else is the status board's."""
        if self._stopping or not isinstance(event, JobFinished | SyncFinished):
            return
        self._events.put_nowait(event)
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.get_running_loop().create_task(self._consume())

    async def _consume(self) -> None:
        """Handle queued events in order (a sync-all's end after its last account's)."""
        while not self._events.empty():
            event = self._events.get_nowait()
            try:
                if isinstance(event, JobFinished):
                    await self._job_finished(event)
                else:
                    await self._sync_finished(event)
            except Exception:  # delivery must never take the bot down
                log.exception("delivery after job %s failed", event.job_id)

    async def _job_finished(self, event: JobFinished) -> None:
        job = await Job.get_or_none(id=event.job_id)
        if job is None or job.account_id is None:
            return
        line: str | None = None
        for setting in await dq.listeners(job.account_id):
            if setting.mode == "media":
                self.want(setting.chat_id, job.account_id)
                continue
            if event.result.state not in FINAL:
                continue  # a paused job is summarised when it ends
            if line is None:
                counts = summary_counts(await dq.job_media(job.id))
                label = account_label(event.result.platform, event.result.username)
                line = f"{label}: {counts}" if counts else ""
            if not line:
                continue  # nothing new: say nothing
            if job.parent_id is not None:
                self._sync_lines.setdefault(job.parent_id, {}).setdefault(setting.chat_id, []).append(line)
            else:
                await self._say(setting.chat_id, line)

    async def _sync_finished(self, event: SyncFinished) -> None:
        """One message per chat for the whole sync-all."""
        for chat_id, lines in self._sync_lines.pop(event.job_id, {}).items():
            await self._say(chat_id, "\n".join(["New content:", *lines]))

    # --- media passes ------------------------------------------------------------
    def want(self, chat_id: int, account_id: int) -> None:
        """Look for undelivered files of an account in a chat (soon, in order)."""
        if self._stopping:
            return
        queue = self._wanted.setdefault(chat_id, [])
        if account_id not in queue:
            queue.append(account_id)
        worker = self._workers.get(chat_id)
        if worker is None or worker.done():
            self._workers[chat_id] = asyncio.get_running_loop().create_task(self._work(chat_id))

    async def start(self) -> None:
        """At start: what was archived but not delivered before the restart; then pick up periodically."""
        await self.pick_up()
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def pick_up(self, *, skip_downloading: bool = False) -> None:
        """Look for undelivered files of every (chat, account) in media mode.

        ``skip_downloading``: leave accounts being downloaded to the end of their job
        (a post's files are only complete then)."""
        busy = await dq.accounts_downloading() if skip_downloading else set()
        for setting in await dq.media_settings():
            if setting.account_id not in busy:
                self.want(setting.chat_id, setting.account_id)

    async def _tick(self) -> None:
        """Every ``retry_interval``: retry passes stopped by network trouble, deliver outside files."""
        while not self._stopping:
            await asyncio.sleep(self.retry_interval)
            try:
                await self.pick_up(skip_downloading=True)
            except Exception as exc:  # the next tick tries again; the bot stays up
                if not connection_lost(exc):  # a lost database is logged once per outage
                    log.exception("periodic delivery pick-up failed")

    async def _work(self, chat_id: int) -> None:
        while self._wanted.get(chat_id) and not self._stopping:
            account_id = self._wanted[chat_id].pop(0)
            try:
                outage = await self._pass(chat_id, account_id)
            except Exception:
                log.exception("delivering to chat %s failed", chat_id)
                continue
            if outage:  # the other accounts would fail the same way: all wait for the next pick-up
                self._wanted.pop(chat_id, None)

    async def _pass(self, chat_id: int, account_id: int) -> bool:
        """Send what is pending for one account in one chat, at most the backlog limit.

        Returns True when Telegram could not be reached (nothing counted; tried again later)."""
        setting = await NotifySetting.get_or_none(chat_id=chat_id, account_id=account_id)
        account = await Account.get_or_none(id=account_id)
        if setting is None or setting.mode != "media" or account is None:
            return False
        platform = account.platform
        pending = await dq.pending(setting, platform)
        units, rest = within_limit(units_of(pending), self.backlog_limit)
        await dq.settle(chat_id, platform, [item.media_id for item in rest], "skipped")
        given_up: list[str] = []
        outage = False
        for unit in units:
            if self._stopping:
                return False
            outcome = await self._send(chat_id, account, unit, given_up)
            if outcome.outage:
                wait = self.retry_interval
                log.warning("delivery to chat %s waits %.0f s for Telegram: %s", chat_id, wait, outcome.stop)
                outage = True
                break
            if outcome.stop:
                log.warning("delivery to chat %s paused until the next run: %s", chat_id, outcome.stop)
                break
        if rest:
            await self._say(chat_id, backlog_line(platform, account.username, len(rest)))
        if given_up:
            line = given_up_line(platform, account.username, len(given_up), ATTEMPTS, given_up[-1])
            log.warning("chat %s: %s", chat_id, line)
            await self._say(chat_id, line)
        return outage

    async def _send(
        self, chat_id: int, account: Account, unit: list[MediaItem], given_up: list[str]
    ) -> Outcome:
        """Send one post; Telegram's confirmations are recorded as they come, failures counted
        (a refusing chat counts for every unsent file; network trouble and 429 count nothing)."""
        platform = account.platform

        async def confirm(rows: list[MediaItem], state: str) -> None:
            await dq.settle(chat_id, platform, [item.media_id for item in rows], state)

        outcome = await self.sender.send_unit(chat_id, platform, account.username, unit, confirm=confirm)
        failures = list(outcome.failed)
        if outcome.stop and not outcome.outage:
            handled = {item.media_id for item in outcome.sent + outcome.too_large}
            handled |= {item.media_id for item, _ in failures}
            failures += [(item, outcome.stop) for item in unit if item.media_id not in handled]
        for item, reason in failures:
            if await dq.failed_attempt(chat_id, platform, item.media_id, reason, ATTEMPTS):
                given_up.append(reason)
        return outcome

    async def _say(self, chat_id: int, text: str) -> None:
        """A plain line in a chat; a chat that refuses is only logged."""
        try:
            await self.sender.bot.send_message(chat_id, text, rate_limit_args=BACKGROUND)
        except TelegramError as exc:
            log.warning("could not tell chat %s: %s (%s)", chat_id, text[:80], exc)

    # --- shutdown ------------------------------------------------------------------
    async def stop(self, timeout: float = 5.0) -> None:
        """Finish the file being sent (briefly), then stop; the rest is picked up at the next start."""
        self._stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
        tasks = [t for t in [self._consumer, *self._workers.values()] if t is not None and not t.done()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
