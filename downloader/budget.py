"""The Instagram request budget: requests counted per session, hour and kind, in the database.

One figure per Instagram session for every process that uses it (bot, command line,
workers): the database holds the counts, each process adds its own requests in memory and
reads the session's last 24 hours again at each job start and every ``refresh_every`` while
it makes requests. The blocking Instagram source runs in worker threads and calls
``record`` and ``check`` there; only the event loop touches the database (``flush`` and
``refresh``, scheduled from the threads), so a worker thread never does.

A 429 is shared the same way: the session's "rest until" goes to instagram_sessions, and
every process with the session waits until then before its next request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from tortoise.expressions import F, Q

from db.models import InstagramSession, RequestCount
from downloader.errors import BudgetExhausted, RateLimited

log = logging.getLogger(__name__)

DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)
REFRESH = timedelta(seconds=30)  # how old another process's requests may be in our figure
REFRESH_WAIT = 5.0  # seconds a thread waits for the loop's refresh before using what it has
ANONYMOUS = ""  # the session name of requests made without a login
EVERY = "*"  # counts from before sessions were told apart: they count against every session


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def session_label(name: str) -> str:
    """How people see a session's name: the account, or "no login"."""
    return f"session {name}" if name else "no login"


def usage_text(label: str | None, hour: int, day: int, limit: int) -> str:
    """A line like "Instagram requests (session alice): 12 last hour, 340 last 24 h of 2000"."""
    of = f" of {limit}" if limit > 0 else ""
    named = f" ({label})" if label is not None else ""
    return f"Instagram requests{named}: {hour} last hour, {day} last 24 h{of}"


class RequestBudget:
    """Requests per session (last hour, last 24 h) of every process, and a daily limit per session."""

    def __init__(
        self,
        daily_limit: int = 2000,
        *,
        clock: Callable[[], datetime] | None = None,
        refresh_every: timedelta = REFRESH,
    ):
        self.daily_limit = daily_limit  # 0: no limit
        self.refresh_every = refresh_every
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._hours: dict[str, Counter[datetime]] = {}  # session -> hour -> requests, last 24 h
        self._pending: Counter[tuple[datetime, str, str]] = Counter()  # (hour, session, kind), not stored
        self._rest: dict[str, datetime] = {}  # session -> no request before this (a 429)
        self._rest_pending: dict[str, datetime] = {}
        self._read_at: dict[str, datetime] = {}  # session -> when its figure was read from the DB
        self._refreshing: concurrent.futures.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io: asyncio.Lock | None = None  # one flush or refresh at a time
        self._flush_scheduled = False

    def session(self, name: str | None) -> SessionBudget:
        """The budget of one Instagram session (None: requests without a login)."""
        name = name or ANONYMOUS
        with self._lock:
            self._hours.setdefault(name, Counter())
        return SessionBudget(self, name)

    async def load(self) -> None:
        """Remember the loop to store on; read the sessions known so far from the database."""
        self._loop = asyncio.get_running_loop()
        await self.refresh()

    # --- the database (event loop only) --------------------------------------
    async def flush(self) -> None:
        """Write the counts and rests recorded since the last flush (kept for the next on failure)."""
        async with self._io_lock():
            try:
                await self._write()
            except Exception as exc:  # a database blip must not fail the job that made requests
                log.warning("could not store Instagram request counts (%s); trying again later", exc)

    async def refresh(self, names: Iterable[str] | None = None) -> None:
        """Store ours, then read the sessions' last 24 hours and rests as every process left them;
        on a database error the figures known so far stay."""
        async with self._io_lock():
            try:
                await self._read(names)
            except Exception as exc:  # the next refresh tries again; the job goes on
                log.warning("could not read Instagram request counts (%s); using the last figures", exc)

    async def _read(self, names: Iterable[str] | None) -> None:
        # Caller holds the io lock.
        await self._write()
        with self._lock:
            names = list(self._hours) if names is None else list(names)
        if not names:
            return
        read_at = self._clock()
        rows = await RequestCount.filter(
            session__in=[*names, EVERY], hour__gte=hour_of(read_at - DAY)
        ).values_list("session", "hour", "count")
        rests = await InstagramSession.filter(name__in=names, rest_until__not_isnull=True).values_list(
            "name", "rest_until"
        )
        self._replace(names, rows, dict(rests), read_at)

    def _replace(self, names: list[str], rows, rests: dict, read_at: datetime) -> None:
        # What the DB says plus what this process recorded since it wrote (not in the DB yet).
        with self._lock:
            for name in names:
                hours: Counter[datetime] = Counter()
                for session, hour, count in rows:
                    if session in (name, EVERY):
                        hours[hour_of(hour)] += count
                for (hour, session, _), count in self._pending.items():
                    if session == name:
                        hours[hour] += count
                self._hours[name] = hours
                # The database has every rest stored so far; ours not yet stored are pending.
                known = [r for r in (rests.get(name), self._rest_pending.get(name)) if r is not None]
                if known:
                    self._rest[name] = max(known)
                else:
                    self._rest.pop(name, None)
                self._read_at[name] = read_at

    async def _write(self) -> None:
        # Caller holds the io lock. What could not be written stays for the next flush.
        with self._lock:
            pending, self._pending = self._pending, Counter()
            rests, self._rest_pending = self._rest_pending, {}
            self._flush_scheduled = False
        try:
            for key in list(pending):
                if pending[key]:  # a request and its refund cancel out
                    await _add(key, pending[key])
                del pending[key]
            for name in list(rests):
                await _rest(name, rests[name])
                del rests[name]
        finally:
            with self._lock:
                self._pending.update(pending)
                for name, until in rests.items():
                    self._rest_pending[name] = max(until, self._rest_pending.get(name, until))

    def _io_lock(self) -> asyncio.Lock:
        if self._io is None:
            self._io = asyncio.Lock()
        return self._io

    # --- any thread ----------------------------------------------------------
    def record(self, name: str, kind: str, count: int = 1) -> datetime:
        """Count ``count`` requests of ``kind`` made with session ``name`` now; return the hour
        they count in (for ``refund``)."""
        hour = hour_of(self._clock())
        with self._lock:
            self._hours.setdefault(name, Counter())[hour] += count
            self._pending[(hour, name, kind)] += count
        self._schedule_flush()
        return hour

    def refund(self, name: str, kind: str, hour: datetime) -> None:
        """Take back one request counted in ``hour`` that never reached Instagram (no connection)."""
        with self._lock:
            hours = self._hours.setdefault(name, Counter())
            hours[hour] = max(0, hours[hour] - 1)
            self._pending[(hour, name, kind)] -= 1  # stored already: the flush subtracts it
        self._schedule_flush()

    def rest_until(self, name: str, until: datetime) -> None:
        """Instagram told us to wait (429): no process with this session asks before ``until``."""
        with self._lock:
            known = self._rest.get(name)
            if known is not None and until <= known:
                return
            self._rest[name] = self._rest_pending[name] = until
        self._schedule_flush()

    def check(self, name: str) -> None:
        """Raise RateLimited or BudgetExhausted (with when to retry) if no request may be made now."""
        self._fresh(name)
        now = self._clock()
        with self._lock:
            rest = self._rest.get(name)
        if rest is not None and now < rest:
            raise RateLimited(
                f"Instagram is rate limiting the bot's {session_label(name)}; "
                f"waiting until {rest:%H:%M} UTC before asking again.",
                retry_at=rest,
            )
        if not self.allowed(name):
            raise BudgetExhausted(retry_at=self.retry_at(name))

    def usage(self, name: str) -> tuple[int, int]:
        """Requests of the session in the current hour and in the last 24 hours."""
        now = hour_of(self._clock())
        with self._lock:
            hours = self._forget_old(name, now)
            return hours.get(now, 0), sum(hours.values())

    def allowed(self, name: str) -> bool:
        """Whether another request of the session stays within the daily limit."""
        return self.daily_limit <= 0 or self.usage(name)[1] < self.daily_limit

    def retry_at(self, name: str) -> datetime:
        """When enough old hours have left the 24-hour window for one more request."""
        now = hour_of(self._clock())
        with self._lock:
            hours = self._forget_old(name, now)
            total = sum(hours.values())
            for hour in sorted(hours):
                total -= hours[hour]
                if total < self.daily_limit:
                    return hour + DAY
        return now + HOUR

    def usage_line(self, name: str) -> str:
        """One line for /status and summaries, naming the session."""
        return usage_text(session_label(name), *self.usage(name), self.daily_limit)

    def _forget_old(self, name: str, now: datetime) -> Counter[datetime]:
        # Caller holds the lock. Hours older than the window no longer count.
        hours = self._hours.setdefault(name, Counter())
        for hour in [h for h in hours if h <= now - DAY]:
            del hours[hour]
        return hours

    def _schedule_flush(self) -> None:
        loop = self._loop
        with self._lock:
            schedule = loop is not None and not self._flush_scheduled and not loop.is_closed()
            self._flush_scheduled = self._flush_scheduled or schedule
        if schedule:
            try:
                loop.call_soon_threadsafe(self._start_flush)
            except RuntimeError:  # the loop closed meanwhile: the next flush() writes it
                self._flush_scheduled = False

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self.flush())
        task.add_done_callback(_log_failure)

    def _fresh(self, name: str) -> None:
        """From a worker thread: have the loop re-read the session when our figure is old."""
        loop = self._loop
        read_at = self._read_at.get(name)
        if loop is None or loop.is_closed() or _on(loop):
            return  # not loaded, or on the loop itself (tests): the figure stays as it is
        if read_at is not None and self._clock() - read_at < self.refresh_every:
            return
        with self._lock:
            if self._refreshing is None or self._refreshing.done():
                try:
                    self._refreshing = asyncio.run_coroutine_threadsafe(self.refresh(), loop)
                except RuntimeError:
                    return
            waiting = self._refreshing
        try:
            waiting.result(timeout=REFRESH_WAIT)
        except Exception as exc:  # a busy database: go on with what we know, try again next time
            log.warning("could not read the Instagram request counts: %s", exc)


class SessionBudget:
    """One session's view of the budget: what the Instagram rate controller checks and counts."""

    def __init__(self, budget: RequestBudget, name: str):
        self.budget = budget
        self.name = name

    @property
    def daily_limit(self) -> int:
        """The limit of every session (INSTAGRAM_DAILY_REQUEST_BUDGET)."""
        return self.budget.daily_limit

    def check(self) -> None:
        """Raise when this session may make no request now."""
        self.budget.check(self.name)

    def record(self, kind: str, count: int = 1) -> datetime:
        """Count requests of this session; the hour they count in."""
        return self.budget.record(self.name, kind, count)

    def refund(self, kind: str, hour: datetime) -> None:
        """Take back one request (counted in ``hour``) that never reached Instagram."""
        self.budget.refund(self.name, kind, hour)

    def rest_until(self, until: datetime) -> None:
        """Instagram told this session to wait until ``until``."""
        self.budget.rest_until(self.name, until)

    def usage(self) -> tuple[int, int]:
        """Requests of this session in the current hour and the last 24 hours."""
        return self.budget.usage(self.name)

    def allowed(self) -> bool:
        """Whether another request stays within the daily limit."""
        return self.budget.allowed(self.name)

    def usage_line(self) -> str:
        """A line like "Instagram requests (session alice): 12 last hour, 340 last 24 h of 2000"."""
        return self.budget.usage_line(self.name)


async def usage_of_sessions(names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Requests of each session (last hour, last 24 h) in one query, for /status."""
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    now = hour_of(datetime.now(UTC))
    rows = await RequestCount.filter(session__in=[*names, EVERY], hour__gt=now - DAY).values_list(
        "session", "hour", "count"
    )
    usage = {name: [0, 0] for name in names}
    for session, hour, count in rows:
        for name in names if session == EVERY else [session]:
            usage[name][1] += count
            usage[name][0] += count if hour_of(hour) == now else 0
    return {name: (hour, day) for name, (hour, day) in usage.items()}


async def _add(key: tuple[datetime, str, str], count: int) -> None:
    hour, session, kind = key
    row, created = await RequestCount.get_or_create(
        hour=hour, session=session, kind=kind, defaults={"count": count}
    )
    if not created:
        await RequestCount.filter(id=row.id).update(count=F("count") + count)


async def _rest(name: str, until: datetime) -> None:
    await InstagramSession.get_or_create(name=name)
    later = Q(rest_until__isnull=True) | Q(rest_until__lt=until)
    await InstagramSession.filter(Q(name=name) & later).update(rest_until=until)


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not store Instagram request counts: %s", task.exception())
