"""Staying connected to Telegram: start before the network is up, poll through outages.

A home server reboots before its router does; a VPS loses its uplink for a
minute. PTB's own bootstrap gives up after one failure with a long traceback,
and its polling loop logs a traceback for every failed poll. Here start-up
waits with capped exponential backoff (one log line per attempt, naming the
next try), and an outage while running is one warning when it starts, a
reminder every few minutes and one line when Telegram answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)
FIRST_DELAY = 5.0  # seconds before the second attempt
MAX_DELAY = 300.0  # never wait longer than five minutes between attempts
REMINDER = 300.0  # while polling fails, repeat the warning this often (seconds)
CONFLICT = (
    "another bot process is receiving this bot's messages (Telegram: %s); stop it, only one "
    "process may use a bot token. Polling again less and less often (at most every 30 s)"
)


def backoff(first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> Iterator[float]:
    """Delays between attempts: ``first``, doubling, capped at ``cap``."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


def describe(error: BaseException) -> str:
    """A short reason for the log: the error's own words, never a traceback."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]


async def connect(app: Application, *, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> bool:
    """Initialize ``app`` (getMe) until Telegram answers; False when SIGINT/SIGTERM came first.

    A token Telegram rejects raises InvalidToken at once; every other failure is retried.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        return await _attempts(app, stop, backoff(first, cap))
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _attempts(app: Application, stop: asyncio.Event, delays: Iterator[float]) -> bool:
    """The retry loop of ``connect``."""
    for attempt, delay in enumerate(delays, start=1):
        try:
            if not await _until_stopped(app.initialize(), stop):
                return False
            if attempt > 1:
                log.info("Telegram answered on attempt %d; starting", attempt)
            return True
        except InvalidToken:
            raise
        except RetryAfter as exc:
            delay = max(delay, _seconds(exc.retry_after))
            reason = f"Telegram asks to wait {_seconds(exc.retry_after):g} s"
        except TelegramError as exc:
            reason = describe(exc)
        next_try = datetime.now(UTC) + timedelta(seconds=delay)
        log.warning(
            "Telegram is not reachable (%s); attempt %d failed, next try at %s (in %g s)",
            reason,
            attempt,
            next_try.strftime("%H:%M:%S UTC"),
            delay,
        )
        if await _stopped_within(stop, delay):
            return False
    return False


async def _until_stopped(action, stop: asyncio.Event) -> bool:
    """Run ``action``; False (and cancel it) if ``stop`` is set first."""
    task = asyncio.ensure_future(action)
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TelegramError):
            await task
        return False
    task.result()  # raises what initialize raised
    return True


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds``; True when ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PollingWatch:
    """Logs a polling outage as a few lines: when it starts, every ``reminder`` s, when it ends.

    ``failed`` is PTB's polling error callback (which otherwise logs a traceback per
    failed poll); ``answered`` is called by ``WatchedRequest`` whenever Telegram answers.
    A 409 Conflict (another process polls with the same token) is told the same way.
    """

    def __init__(self, reminder: float = REMINDER, clock: Callable[[], float] = time.monotonic):
        self._reminder, self._clock = reminder, clock
        self._since: float | None = None
        self._warned_at = 0.0
        self._failures = 0
        self._conflict_since: float | None = None
        self._conflict_warned_at = 0.0

    def failed(self, error: TelegramError) -> None:
        """One failed poll: warn at the first one and then every ``reminder`` seconds."""
        if isinstance(error, Conflict):
            self._conflicted(error)
            return
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since, self._warned_at = now, now
            log.warning("lost the connection to Telegram (%s); retrying by itself", describe(error))
        elif now - self._warned_at >= self._reminder:
            self._warned_at = now
            log.warning(
                "still no connection to Telegram after %.0f s (%s); retrying",
                now - self._since,
                describe(error),
            )

    def _conflicted(self, error: Conflict) -> None:
        now = self._clock()
        if self._conflict_since is None:
            self._conflict_since, self._conflict_warned_at = now, now
            log.warning(CONFLICT, describe(error))
        elif now - self._conflict_warned_at >= self._reminder:
            self._conflict_warned_at = now
            log.warning(
                "another bot process still polls with this token after %.0f s", now - self._conflict_since
            )

    def answered(self, status: int = 200) -> None:
        """Telegram answered (HTTP ``status``): say that an outage or a conflict is over."""
        if self._since is not None:
            down_for = self._clock() - self._since
            log.info("Telegram answers again after %.0f s (%d failed polls)", down_for, self._failures)
            self._since, self._failures = None, 0
        if self._conflict_since is not None and status < 300:
            log.info(
                "no other bot process polls with this token any more (after %.0f s); receiving messages",
                self._clock() - self._conflict_since,
            )
            self._conflict_since = None


class WatchedRequest(HTTPXRequest):
    """The getUpdates connection, telling a PollingWatch whenever Telegram answered."""

    def __init__(self, watch: PollingWatch, **kwargs):
        super().__init__(**kwargs)
        self._watch = watch

    async def do_request(self, *args, **kwargs) -> tuple[int, bytes]:
        """Send one request; any HTTP answer means Telegram is reachable."""
        answer = await super().do_request(*args, **kwargs)
        self._watch.answered(answer[0])
        return answer
