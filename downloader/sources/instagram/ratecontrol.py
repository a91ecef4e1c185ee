"""Politeness, counting and the budget, at the one place instaloader asks before each request.

instaloader calls ``wait_before_query`` before every request it makes (API, pages,
retries) and ``handle_429`` before retrying after a 429. Here each request is checked
against the daily budget, spaced by the politeness delay (short: slept in the worker
thread through the injected, interruptible ``sleep``), and counted by kind. Long waits
(a 429 back-off, a full rate window) are never slept in the thread: they raise
RateLimited at once and the service waits on the event loop.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from instaloader import InstaloaderContext, RateController
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, ProxyError, SSLError
from urllib3.exceptions import NewConnectionError

from downloader.errors import RateLimited

# Sleeps longer than this are announced through on_wait (the status message shows them).
WAIT_REPORT_THRESHOLD = 1.0
# A rate window longer than this is handed back to the service instead of slept in a thread.
LONG_WAIT = 30.0
# What instaloader's rate-limit buckets mean, for the request log.
KINDS = {
    "29104886249145907": "timeline",
    "28904005159232689": "timeline",
    "27128499623469141": "post",
    "27937681195819736": "profile",
    "303a4ae99711322310f25250d988f3b7": "stories",
    "d6f4427fbe92d846298cf93df0b937d3": "login_check",
    "7c16654f22c819fb63d1183034a5162f": "highlights_tray",
    "45246d3fe16ccc6577e0bd297a5db1ab": "reels",
    "other": "page",
    "iphone": "mobile_api",
}


def never_reached(error: BaseException | None) -> bool:
    """Whether a request failed before it was sent: no connection, TLS handshake or proxy tunnel."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ProxyError, SSLError, ConnectTimeout)):
            return True
        if isinstance(error, RequestsConnectionError):
            reason = getattr(error.args[0], "reason", None) if error.args else None
            return isinstance(reason, NewConnectionError)  # refused, no route, no such host
        error = error.__cause__ or error.__context__
    return False


class Backoff(RateLimited):
    """A wait too long for a worker thread: the service waits until ``retry_at`` instead."""

    def __init__(self, retry_at: datetime, after_429: bool):
        self.after_429 = after_429
        super().__init__(retry_at=retry_at)


class Budget:
    """What the controller needs of one session's budget (downloader.budget.SessionBudget has it)."""

    def check(self) -> None:
        """Raise BudgetExhausted when no request is allowed now."""

    def record(self, kind: str) -> datetime | None:
        """Count one request of ``kind``; what ``refund`` needs to take it back."""

    def refund(self, kind: str, hour: datetime) -> None:
        """Take back a request that never reached Instagram."""

    def rest_until(self, until: datetime) -> None:
        """Instagram said to wait until ``until``."""


class Budgets:
    """What a source needs of the request budget: one Budget per login (RequestBudget has it)."""

    def session(self, name: str | None) -> Budget:
        """The budget of the login named ``name`` (None: without a login)."""
        return Budget()


class PoliteRateController(RateController):
    """instaloader's rate windows, plus the politeness delay, the budget and request counting."""

    def __init__(
        self,
        context: InstaloaderContext,
        *,
        delay: tuple[float, float],
        sleep: Callable[[float], None],
        on_wait: Callable[[datetime, str], None] | None,
        budget: Budget | None = None,
    ):
        super().__init__(context)
        self._delay = delay
        self._sleep = sleep
        self._on_wait = on_wait
        self._budget = budget or Budget()
        self._reason = ""
        self._last_request: float | None = None
        self._hint = threading.local()  # the kind of request the API class is making

    def kind(self, kind: str | None):
        """Name the kind of the requests made until the next call (None: derive it)."""
        self._hint.kind = kind

    def sleep(self, secs: float) -> None:
        """Sleep through the injected function, announcing long waits first."""
        if secs > WAIT_REPORT_THRESHOLD and self._on_wait is not None:
            self._on_wait(datetime.now(UTC) + timedelta(seconds=secs), self._reason)
        self._sleep(secs)

    def wait_before_query(self, query_type: str) -> None:
        """Budget, politeness delay and instaloader's own windows; then count the request."""
        self._budget.check()
        self._polite_pause()
        waittime = self.query_waittime(query_type, time.monotonic(), False)
        if waittime > LONG_WAIT:
            raise Backoff(datetime.now(UTC) + timedelta(seconds=waittime), after_429=False)
        self._reason = "Instagram request budget: waiting for instaloader's rate window"
        super().wait_before_query(query_type)
        self._last_request = time.monotonic()
        kind = getattr(self._hint, "kind", None) or KINDS.get(query_type, "graphql")
        self._hint.counted = (kind, self._budget.record(kind))

    def unsent(self, error: BaseException | None) -> None:
        """The last request counted in this thread failed with ``error``: if it never reached
        Instagram (no connection, the proxy refused), it is not a request: take it back."""
        counted = getattr(self._hint, "counted", None)
        if counted is None or counted[1] is None or not never_reached(error):
            return
        self._hint.counted = None
        self._budget.refund(*counted)

    def handle_429(self, query_type: str) -> None:
        """After a 429: hand instaloader's back-off estimate to the service, do not sleep it."""
        waittime = self.query_waittime(query_type, time.monotonic(), True)
        backoff = timedelta(seconds=max(waittime, 60.0))
        raise Backoff(datetime.now(UTC) + backoff, after_429=True)

    def _polite_pause(self) -> None:
        # The delay is *between* requests: time spent elsewhere (downloads) counts towards it.
        low, high = self._delay
        if high <= 0 or self._last_request is None:
            return
        remaining = random.uniform(low, high) - (time.monotonic() - self._last_request)
        if remaining > 0:
            self._reason = "politeness delay between Instagram requests"
            self.sleep(remaining)
