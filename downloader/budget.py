"""The Instagram request budget: every API request counted per kind, kept per hour in the DB.

The blocking Instagram source runs in worker threads; it calls ``record`` and ``check``
there. Counts live in memory behind a lock and are written to the request_log table by
``flush`` on the event loop (scheduled from the thread with ``call_soon_threadsafe``), so
a worker thread never touches the database and a restart keeps the last 24 hours.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F

from db.models import RequestLog
from downloader.errors import BudgetExhausted

log = logging.getLogger(__name__)

DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class RequestBudget:
    """Counts Instagram requests (last hour, last 24 h) and enforces a daily limit (0: none)."""

    def __init__(self, daily_limit: int = 2000, *, clock: Callable[[], datetime] | None = None):
        self.daily_limit = daily_limit
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._hours: Counter[datetime] = Counter()  # hour -> requests, last 24 h
        self._pending: Counter[tuple[datetime, str]] = Counter()  # not yet in the DB
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_scheduled = False

    async def load(self) -> None:
        """Read the last 24 hours from the database; remember the loop to flush on."""
        self._loop = asyncio.get_running_loop()
        since = hour_of(self._clock() - DAY)
        rows = await RequestLog.filter(hour__gte=since).values_list("hour", "count")
        with self._lock:
            self._hours = Counter()
            for hour, count in rows:
                self._hours[hour_of(hour)] += count

    def record(self, kind: str, count: int = 1) -> None:
        """Count ``count`` requests of ``kind`` now; safe from any thread."""
        hour = hour_of(self._clock())
        with self._lock:
            self._hours[hour] += count
            self._pending[(hour, kind)] += count
            schedule = self._loop is not None and not self._flush_scheduled and not self._loop.is_closed()
            self._flush_scheduled = self._flush_scheduled or schedule
        if schedule:
            try:
                self._loop.call_soon_threadsafe(self._start_flush)
            except RuntimeError:  # the loop closed meanwhile: the next flush() writes it
                self._flush_scheduled = False

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self.flush())
        task.add_done_callback(_log_failure)

    async def flush(self) -> None:
        """Write the counts recorded since the last flush to the request_log table."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._flush_scheduled = False
        for (hour, kind), count in pending.items():
            row, created = await RequestLog.get_or_create(hour=hour, kind=kind, defaults={"count": count})
            if not created:
                await RequestLog.filter(id=row.id).update(count=F("count") + count)

    def usage(self) -> tuple[int, int]:
        """Requests in the current hour and in the last 24 hours."""
        now = hour_of(self._clock())
        with self._lock:
            self._forget_old(now)
            return self._hours.get(now, 0), sum(self._hours.values())

    def allowed(self) -> bool:
        """Whether another request stays within the daily limit."""
        return self.daily_limit <= 0 or self.usage()[1] < self.daily_limit

    def retry_at(self) -> datetime:
        """When enough old hours have left the 24-hour window for one more request."""
        now = hour_of(self._clock())
        with self._lock:
            self._forget_old(now)
            total = sum(self._hours.values())
            for hour in sorted(self._hours):
                total -= self._hours[hour]
                if total < self.daily_limit:
                    return hour + DAY
        return now + HOUR

    def check(self) -> None:
        """Raise BudgetExhausted (with when to retry) if the next request would exceed the limit."""
        if not self.allowed():
            raise BudgetExhausted(retry_at=self.retry_at())

    def usage_line(self) -> str:
        """One line for /status and summaries: "Instagram requests: 12 last hour, 340 last 24 h of 2000"."""
        hour, day = self.usage()
        limit = f" of {self.daily_limit}" if self.daily_limit > 0 else ""
        return f"Instagram requests: {hour} last hour, {day} last 24 h{limit}"

    def _forget_old(self, now: datetime) -> None:
        # Caller holds the lock. Hours older than the window no longer count.
        for hour in [h for h in self._hours if h <= now - DAY]:
            del self._hours[hour]


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not store Instagram request counts: %s", task.exception())
