"""Waiting out a database that went away (PostgreSQL restarting, a network blip).

Queries of a running job are retried with capped backoff while the connection is
down, so a blip of a few seconds costs a pause, not the job. The outage is logged as
two lines for the whole process, one when it starts and one when the database
answers again, never a traceback per retry. How long a call may wait is set per
task with ``patience()`` (outside of it, queries fail at once as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

log = logging.getLogger(__name__)
FIRST_DELAY = 1.0  # seconds before the first retry
MAX_DELAY = 10.0  # never wait longer than this between retries of a running job
FOREVER = math.inf
T = TypeVar("T")

# Seconds a query in this task may wait for the database; None: fail at once.
_patience: contextvars.ContextVar[float | None] = contextvars.ContextVar("db_patience", default=None)
# Told (until, sentence) before each wait: a job shows it in its status message.
_on_wait: contextvars.ContextVar[Callable[[datetime, str], None] | None] = contextvars.ContextVar(
    "db_on_wait", default=None
)

# False while the database is being opened: start-up logs its own attempts.
_counted: contextvars.ContextVar[bool] = contextvars.ContextVar("db_counted", default=True)


class DatabaseUnavailable(Exception):
    """The database stayed unreachable longer than the caller was willing to wait."""

    def __init__(self, waited: float, reason: str):
        took = f"{waited:.0f} s" if waited < 120 else f"{waited / 60:.0f} min"
        super().__init__(f"The database was not reachable for {took} ({reason}).")
        self.sentence = str(self)


class StatementCut(DatabaseUnavailable):
    """The connection was cut while an INSERT was on its way: the row may or may not exist."""

    def __init__(self, reason: str):
        Exception.__init__(self, f"The connection to the database was cut while saving ({reason}).")
        self.sentence = str(self)


@contextlib.contextmanager
def patience(seconds: float | None, on_wait: Callable[[datetime, str], None] | None = None) -> Iterator[None]:
    """Let queries of this task (and tasks it starts) wait up to ``seconds`` for the database."""
    tokens = (_patience.set(seconds), _on_wait.set(on_wait or _on_wait.get()))
    try:
        yield
    finally:
        _on_wait.reset(tokens[1])
        _patience.reset(tokens[0])


@contextlib.contextmanager
def uncounted() -> Iterator[None]:
    """Queries in this block fail without the outage's log lines (opening the database)."""
    token = _counted.set(False)
    try:
        yield
    finally:
        _counted.reset(token)


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the database could not be reached."""
    import asyncpg

    lost = (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,  # also "connection was closed in the middle of operation"
        asyncpg.CannotConnectNowError,  # "the database system is starting up"
        asyncpg.AdminShutdownError,
    )
    return any(isinstance(each, lost) for each in _chain(exc))


def lost_mid_job(exc: BaseException) -> bool:
    """Whether an error that escaped a job was the database connection going away (a
    statement cut inside a transaction, which is not retried): not a disk or file error."""
    import asyncpg

    chain = list(_chain(exc))
    from_database = any(type(each).__module__.startswith(("asyncpg", "tortoise")) for each in chain)
    for each in chain:
        if isinstance(each, asyncpg.PostgresConnectionError):
            return True
        if isinstance(each, asyncpg.InterfaceError) and "connection is closed" in str(each):
            return True
        if isinstance(each, ConnectionError) and from_database:  # not Instagram's socket reset
            return True
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors that caused it (a few levels: drivers wrap each other)."""
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def describe(exc: BaseException) -> str:
    """A short reason for the log: the error's own words, never a traceback."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]


class Outage:
    """One process-wide outage: a line when the first query fails, one when one succeeds again."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        """A query could not reach the database."""
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            log.warning("lost the connection to the database (%s); running jobs wait for it", describe(exc))

    def answered(self) -> None:
        """A query reached the database: if an outage was logged, say it is over."""
        if self.since is None:
            return
        log.info(
            "the database answers again after %.0f s (%d failed queries)",
            time.monotonic() - self.since,
            self.failures,
        )
        self.since, self.failures = None, 0


OUTAGE = Outage()


def cut_mid_statement(exc: BaseException) -> bool:
    """Whether the connection was lost while a statement was on its way or running (the server
    may have applied it), rather than before one could be sent."""
    import asyncpg

    return any(isinstance(each, asyncpg.ConnectionDoesNotExistError) for each in _chain(exc))


async def patiently(call: Callable[[], Awaitable[T]], once_only: bool = False) -> T:
    """Run ``call()``; while the database is unreachable, retry within this task's patience.

    ``once_only``: a statement that must not run twice (an INSERT) is retried only when it
    never reached the server; cut mid-statement, StatementCut is raised instead."""
    budget = _patience.get()
    if budget is None:
        return await _once(call)
    started, delay = time.monotonic(), FIRST_DELAY
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            if once_only and cut_mid_statement(exc):
                OUTAGE.failed(exc)
                raise StatementCut(describe(exc)) from None
            waited = time.monotonic() - started
            if waited >= budget:
                raise DatabaseUnavailable(waited, describe(exc)) from None
            OUTAGE.failed(exc)
            pause = min(delay, budget - waited)
            _tell(pause, exc)
            await asyncio.sleep(pause)
            delay = min(MAX_DELAY, delay * 2)
            continue
        OUTAGE.answered()
        return result


async def insert_once(create: Callable[[], Awaitable[T]], on_duplicate: Callable[[], Awaitable[T]]) -> T:
    """Insert a row that has a unique key: after a cut mid-statement, try again and let the
    key tell whether the first try was applied (then ``on_duplicate()`` runs instead)."""
    from tortoise.exceptions import IntegrityError

    while True:
        try:
            return await create()
        except IntegrityError:
            return await on_duplicate()
        except StatementCut:
            if _patience.get() is None:
                raise
            continue  # the key makes a second try safe; patiently() waits for the database


async def _once(call: Callable[[], Awaitable[T]]) -> T:
    """One try (no patience here): a lost connection still counts for the outage's log lines."""
    try:
        result = await call()
    except Exception as exc:
        if connection_lost(exc) and _counted.get():
            OUTAGE.failed(exc)
        raise
    OUTAGE.answered()
    return result


def _tell(delay: float, exc: BaseException) -> None:
    """Let the waiting job show the wait (its status message says why it stands still)."""
    on_wait = _on_wait.get()
    if on_wait is not None:
        until = datetime.now(UTC) + timedelta(seconds=delay)
        on_wait(until, f"The database is not reachable ({describe(exc)}); trying again")
