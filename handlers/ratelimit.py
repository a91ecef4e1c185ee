"""PTB's AIORateLimiter plus an exact pace per chat and window per group, so chats are never flooded.

Telegram allows about one message per second in a chat (short bursts are tolerated),
20 per minute in a group and about 30 per second overall; an album counts once per
item against the group's minute and the overall second. A chat's pace is a token
bucket, the group's and the bot's windows are sliding, and each counts a send when it
*ends*, because the server counts it when the upload arrives. Deliveries of new content
ask with ``BACKGROUND``: they wait while replies and status edits are waiting, so they
never starve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from pathlib import Path
from typing import Any

from telegram.ext import AIORateLimiter

from handlers import pace

BACKGROUND = "background"  # rate_limit_args of low-priority sends (deliveries)
# Methods that post or change something in a chat (answers to button presses do not count).
_CHAT_METHODS = {
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendPhoto",
    "sendVideo",
    "sendDocument",
    "sendMediaGroup",
    "sendAnimation",
    "sendAudio",
}


class SlidingWindow:
    """At most ``limit`` units in any ``period`` seconds; urgent callers go before background ones."""

    def __init__(self, limit: int, period: float):
        self.limit, self.period = limit, period
        self._spent: deque[list[float]] = deque()  # [end time (inf while in flight), units]
        self._urgent_waiting = 0

    def _used(self, now: float) -> int:
        while self._spent and self._spent[0][0] <= now - self.period:
            self._spent.popleft()
        return sum(units for _, units in self._spent)

    def _wait(self, now: float, weight: int) -> float:
        """Seconds until ``weight`` more units fit (a short poll while sends are in flight)."""
        free, need = self.limit - self._used(now), weight
        for end, units in self._spent:
            if free >= need or end == float("inf"):
                break
            free += units
            if free >= need:
                return max(end + self.period - now, 0.01)
        return 0.05

    @contextlib.asynccontextmanager
    async def slot(self, weight: int = 1, urgent: bool = True):
        """Hold ``weight`` units for one send; they count from when the send ends."""
        weight = max(1, min(weight, self.limit))
        self._urgent_waiting += urgent
        try:
            while True:
                now = time.monotonic()
                if self._used(now) + weight <= self.limit and (urgent or not self._urgent_waiting):
                    break
                await asyncio.sleep(self._wait(now, weight))
        finally:
            self._urgent_waiting -= urgent
        entry = [float("inf"), weight]
        self._spent.append(entry)
        try:
            yield
        finally:
            entry[0] = time.monotonic()
            # Keep the deque ordered by end time, so expiry stays a cheap pop from the left.
            self._spent = deque(sorted(self._spent, key=lambda e: e[0]))


class TokenBucket:
    """A chat's pace as Telegram keeps it: a burst of ``burst`` sends, then ``rate`` a second.

    A sliding window of ``burst`` sends would hold a fourth send for burst/rate seconds
    after the first three; the bucket lets one through each 1/rate s, so a "Paused" right
    after a start is shown at once. A send takes its token when it ends (when Telegram
    counts it); sends in flight hold one each meanwhile."""

    def __init__(self, burst: int, rate: float, tokens: float | None = None):
        self.burst, self.rate = burst, rate
        self._tokens, self._stamp = float(burst if tokens is None else tokens), time.monotonic()
        self._in_flight = 0
        self._urgent_waiting = 0

    def _free(self, now: float) -> float:
        """Tokens left for a new send, after refilling up to ``now``."""
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens - self._in_flight

    def tokens(self) -> float:
        """Tokens now (for saving the pace over a restart)."""
        return self._free(time.monotonic()) + self._in_flight

    def tokens_if_sent(self) -> float:
        """Tokens now, counting the sends in flight as done (what Telegram may already count)."""
        return self._free(time.monotonic())

    @contextlib.asynccontextmanager
    async def slot(self, weight: int = 1, urgent: bool = True):
        """Wait for a token for one send (an album is one message for the chat's pace)."""
        self._urgent_waiting += urgent
        try:
            while True:
                free = self._free(time.monotonic())
                if free >= 1 and (urgent or not self._urgent_waiting):
                    break
                await asyncio.sleep(max((1 - free) / self.rate, 0.05))
        finally:
            self._urgent_waiting -= urgent
        self._in_flight += 1
        try:
            yield
        finally:
            self._free(time.monotonic())
            self._in_flight -= 1
            self._tokens -= 1


class ChatRateLimiter(AIORateLimiter):
    """AIORateLimiter (retries after 429) with sliding windows per chat, per group and overall.

    Slightly under Telegram's numbers: the server measures arrival times, which jitter.
    """

    def __init__(
        self,
        per_second: float = 0.9,
        burst: int = 3,
        group_per_minute: int = 20,
        overall_per_second: int = 28,
        pace_file: Path | None = None,
        **kwargs: Any,
    ):
        # AIORateLimiter's own group and overall buckets allow a burst of 20 and then one
        # every 3 s, which breaks a sliding minute; the windows below replace them.
        super().__init__(overall_max_rate=0, group_max_rate=0, **kwargs)
        self._chat_pace = (burst, per_second)
        self._pace_file = pace_file
        self._group_window = (group_per_minute, 61.0)
        self._chats: dict[int, TokenBucket] = {}
        self._groups: dict[int, SlidingWindow] = {}
        self._overall = SlidingWindow(overall_per_second, 1.0)

    def _window(self, table: dict[int, SlidingWindow], chat_id: int, shape) -> SlidingWindow:
        if chat_id not in table:
            table[chat_id] = SlidingWindow(*shape)
        return table[chat_id]

    async def initialize(self) -> None:
        """Continue the chats' pace a previous process left (a restart does not reset Telegram's)."""
        await super().initialize()
        burst, rate = self._chat_pace
        for chat_id, tokens in pace.load(self._pace_file, rate).items():
            self._chats[chat_id] = TokenBucket(burst, rate, min(tokens, burst))

    async def shutdown(self) -> None:
        """Save the chats' pace for the next start."""
        pace.save(self._pace_file, {chat_id: bucket.tokens() for chat_id, bucket in self._chats.items()})
        await super().shutdown()

    def _save_in_flight(self) -> None:
        """Save the pace as if every send in flight arrived: a process killed mid-send (kill -9,
        the OOM killer) leaves a file that makes the next start wait rather than meet a 429.
        A small write without fsync, on the loop: cheaper than a hand-off to a thread."""
        pace.save(self._pace_file, {chat_id: b.tokens_if_sent() for chat_id, b in self._chats.items()})

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        """Wait for the chat's, the group's and the bot's windows, then let AIORateLimiter send."""
        urgent = rate_limit_args != BACKGROUND
        retries = rate_limit_args if urgent else None
        chat_id = data.get("chat_id")
        if endpoint not in _CHAT_METHODS or not isinstance(chat_id, int) or chat_id == 0:
            return await super().process_request(callback, args, kwargs, endpoint, data, retries)
        media = data.get("media")
        weight = len(media) if endpoint == "sendMediaGroup" and isinstance(media, list) else 1
        if chat_id not in self._chats:
            self._chats[chat_id] = TokenBucket(*self._chat_pace)
        windows = [(self._chats[chat_id], 1), (self._overall, weight)]
        if chat_id < 0:  # the group's minute first: it is the long wait
            windows.insert(0, (self._window(self._groups, chat_id, self._group_window), weight))
        async with contextlib.AsyncExitStack() as stack:
            for window, units in windows:
                await stack.enter_async_context(window.slot(units, urgent))
            self._save_in_flight()
            return await super().process_request(callback, args, kwargs, endpoint, data, retries)
