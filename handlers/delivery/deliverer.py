"""After every job: new files to chats in media mode, one line per account to chats in summary mode.

What is pending is derived from the database (files archived since the chat's setting
was turned on, not yet settled in that chat). Each send is noted in a small outbox file
before it starts, and Telegram's answer is kept there until the database has stored it
(retried while the database is locked or away), so a failed write never sends a file
twice, also across a restart. A send whose answer was lost (timed out, connection cut,
the bot killed mid-send) is not repeated: the chat is told it may not have arrived.
Delivery never makes a platform request.

A pass stopped by network trouble or Telegram's 429 counts no attempt and marks nothing
skipped: it is tried again by the periodic pick-up (every ``retry_interval`` seconds),
which also delivers files archived by the command line while the bot runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from db import delivery_queries as dq
from db.models import Account, Job, MediaItem, NotifySetting
from db.patience import connection_lost
from downloader.events import JobFinished, SyncFinished
from downloader.paths import UnsafePath, inside
from handlers.delivery import plan, vanished
from handlers.delivery.captions import (
    account_label,
    backlog_line,
    given_up_line,
    summary_counts,
    unconfirmed_line,
)
from handlers.delivery.outbox import Journal, Outbox
from handlers.delivery.sender import Outcome, Sender, maybe_delivered
from handlers.ratelimit import BACKGROUND

log = logging.getLogger(__name__)
ATTEMPTS = 3  # sends of one file to one chat before it is given up and reported
RETRY_INTERVAL = 180.0  # seconds between pick-ups of what is still undelivered
STORE_PATIENCE = 30.0  # seconds a pass retries storing Telegram's answers before waiting for the next pick-up
FINAL = ("completed", "failed", "cancelled")


class Deliverer:
    """Subscribes to the download service; one worker per chat sends in order."""

    def __init__(
        self,
        sender: Sender,
        service,
        *,
        backlog_limit: int = 20,
        retry_interval: float = RETRY_INTERVAL,
        store_patience: float = STORE_PATIENCE,
    ):
        self.sender = sender
        self.backlog_limit = backlog_limit
        self.retry_interval = retry_interval
        self.store_patience = store_patience
        self.outbox = Outbox(sender.data_dir)  # read now: what a killed or stopped bot left
        self._db_trouble = False
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
        account = await Account.get_or_none(id=job.account_id)
        label = account_label(event.result.platform, event.result.username)
        counts: str | None = None
        for setting in await dq.listeners(job.account_id):
            if setting.mode == "media":
                self.want(setting.chat_id, job.account_id)
            if event.result.state not in FINAL or account is None:
                continue  # a paused job is summarised when it ends
            news = await vanished.take_news(setting, account)
            parts = list(news.parts)
            if setting.mode != "media":
                if counts is None:
                    counts = summary_counts(await dq.job_media(job.id))
                parts = [counts, *parts] if counts else parts
            if not parts:
                continue  # nothing new: say nothing
            line = f"{label}: {'; '.join(parts)}"
            if job.parent_id is not None:
                self._sync_lines.setdefault(job.parent_id, {}).setdefault(setting.chat_id, []).append(line)
            else:
                await self._say(setting.chat_id, line)
            if setting.mode == "media" and news.picture:
                await self._picture(setting.chat_id, news.picture, f"{label}: new profile picture")

    async def _picture(self, chat_id: int, path: str, text: str) -> None:
        """A new profile picture as a photo (media mode); a missing file or a refusal is only logged."""
        try:
            data = await asyncio.to_thread(inside(self.sender.data_dir, path).read_bytes)
            await self.sender.bot.send_photo(chat_id, data, caption=text, rate_limit_args=BACKGROUND)
        except (OSError, UnsafePath, TelegramError) as exc:
            log.warning("could not send the profile picture to chat %s: %s", chat_id, exc)

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
        await self._store()  # Telegram's answers the database could not take before the restart
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
            except Exception as exc:  # the database away mid-pass: one line, tried again at the next pick-up
                log.warning("delivery to chat %s stopped (%s: %s)", chat_id, type(exc).__name__, exc)
                log.debug("delivery to chat %s stopped", chat_id, exc_info=True)
                continue
            if outage:  # the other accounts would fail the same way: all wait for the next pick-up
                self._wanted.pop(chat_id, None)

    async def _pass(self, chat_id: int, account_id: int) -> bool:
        """Send what is pending for one account in one chat, run by run (each within the backlog limit).

        Returns True when Telegram could not be reached or the database could not store its
        answers (nothing counted, nothing skipped; tried again later)."""
        setting = await NotifySetting.get_or_none(chat_id=chat_id, account_id=account_id)
        account = await Account.get_or_none(id=account_id)
        if setting is None or setting.mode != "media" or account is None:
            return False
        if not await self._store():
            return True
        journal = self.outbox.journal(chat_id, account.platform, account.id)
        if await self._unanswered(chat_id, account):
            return True
        held = self.outbox.held(chat_id, account.platform)
        given_up: list[str] = []
        stop: bool | None = None
        for run in await plan.runs(setting, account.platform, self.backlog_limit, held):
            stop = await self._send_run(chat_id, account, run, journal, given_up)
            if stop is not None:
                break
        if given_up:
            line = given_up_line(account.platform, account.username, len(given_up), ATTEMPTS, given_up[-1])
            log.warning("chat %s: %s", chat_id, line)
            await self._say(chat_id, line)
        return bool(stop) or await self._unanswered(chat_id, account)

    async def _send_run(
        self, chat_id, account: Account, run: plan.Run, journal: Journal, given_up
    ) -> bool | None:
        """Send one run's posts, then its "…and N more" line; None: go on, True: outage, False: stop."""
        for unit in run.units:
            if self._stopping:
                return False
            outcome = await self._send(chat_id, account, unit, journal, given_up)
            if not await self._store():
                return True
            if outcome.outage:
                wait = self.retry_interval
                log.warning("delivery to chat %s waits %.0f s for Telegram: %s", chat_id, wait, outcome.stop)
                return True
            if outcome.stop:
                log.warning("delivery to chat %s paused until the next run: %s", chat_id, outcome.stop)
                return False
        if not run.cut:
            return None
        # The files over the limit are settled only once the line reached the chat (or may have).
        await journal.begin(run.cut, "skipped")
        answer = await self._tell(chat_id, backlog_line(account.platform, account.username, len(run.cut)))
        if answer == "outage":
            await journal.forget(run.cut)
            return True
        await journal.answered(run.cut, "skipped", {})
        return None if await self._store() else True

    async def _send(
        self, chat_id: int, account: Account, unit: list[MediaItem], journal: Journal, given_up: list[str]
    ) -> Outcome:
        """Send one post; Telegram's answers go to the outbox as they come, failures are counted
        (a refusing chat counts for every unsent file; network trouble and 429 count nothing)."""
        platform = account.platform
        outcome = await self.sender.send_unit(chat_id, platform, account.username, unit, journal=journal)
        failures = list(outcome.failed)
        if outcome.stop and not outcome.outage:
            handled = {item.media_id for item in outcome.sent + outcome.too_large + outcome.unanswered}
            handled |= {item.media_id for item, _ in failures}
            failures += [(item, outcome.stop) for item in unit if item.media_id not in handled]
        for item, reason in failures:
            if await dq.failed_attempt(chat_id, platform, item.media_id, reason, ATTEMPTS):
                given_up.append(reason)
        return outcome

    async def _unanswered(self, chat_id: int, account: Account) -> bool:
        """Settle sends that got no answer: files become "unconfirmed" (never sent again) once the
        chat was told they may not have arrived; lines count as sent. True: Telegram is away."""
        waiting = self.outbox.unanswered(chat_id, account.id)
        if not waiting:
            return False
        files = [entry for entry in waiting if entry.unknown_as == "unconfirmed"]
        outage = False
        if files:
            line = unconfirmed_line(account.platform, account.username, len(files))
            log.warning("chat %s: %s", chat_id, line)
            outage = await self._tell(chat_id, line) == "outage"
        done = [entry for entry in waiting if not (outage and entry in files)]
        await self.outbox.put([dataclasses.replace(entry, state=entry.unknown_as) for entry in done])
        return not await self._store() or outage

    async def _store(self) -> bool:
        """Store Telegram's answers kept in the outbox, retrying for a while; False while the
        database still refuses (they stay in the outbox, and are never sent again)."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.store_patience, 0.2
        while True:
            try:
                stored = await self.outbox.store()
            except Exception as exc:  # locked, away, restarting: the answers wait in the outbox file
                if not self._db_trouble:
                    self._db_trouble = True
                    log.warning(
                        "delivery: the database cannot store what Telegram confirmed (%s); "
                        "kept in %s and tried again",
                        exc,
                        self.outbox.path,
                    )
                if self._stopping or loop.time() + delay > deadline:
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._db_trouble:
                self._db_trouble = False
                log.warning("delivery: the database stores deliveries again (%d kept ones stored)", stored)
            return True

    async def _tell(self, chat_id: int, text: str) -> str:
        """A plain line in a chat: "sent", "unanswered" (may have arrived), "outage" or "refused"."""
        try:
            await self.sender.bot.send_message(chat_id, text, rate_limit_args=BACKGROUND)
        except TelegramError as exc:
            if maybe_delivered(exc):
                return "unanswered"
            if isinstance(exc, RetryAfter) or (
                isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)
            ):
                return "outage"
            log.warning("could not tell chat %s: %s (%s)", chat_id, text[:80], exc)
            return "refused"
        return "sent"

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
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        try:  # a last try; what the database does not take now is stored at the next start
            await self.outbox.store()
        except Exception as exc:
            log.warning(
                "delivery: %d answer(s) kept in %s for the next start (%s)",
                len(self.outbox),
                self.outbox.path,
                exc,
            )
