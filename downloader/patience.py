"""How long a job waits out rate limits and network trouble before it gives up.

The bot and workers wait as the schedule below says (a home server outlives an outage);
the command line gives up sooner (``--wait MINUTES``): a person is watching the terminal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from downloader.errors import BudgetExhausted, DownloadError, RateLimited, Transient

MAX_RATE_WAIT = timedelta(minutes=30)  # longer rate-limit waits end the job (the schedule retries)
RATE_WAITS = 3  # rate-limit waits per phase
NETWORK_WAITS = (15, 30, 60, 120, 300, 300, 300, 300)  # seconds; then the job is left resumable
_LATER = re.compile(r"[;,]? (or )?try again later\.$")


class Patience:
    """The waits of one run of a job; ``limit``: seconds of waiting in all (None: the schedule's)."""

    def __init__(self, limit: float | None = None):
        self.limit = limit
        self.waited = 0.0

    def delay(self, exc: DownloadError, attempt: int) -> float | None:
        """Seconds to wait before the ``attempt``-th retry after ``exc``, or None to give up."""
        delay = retry_delay(exc, attempt)
        if delay is None or self.limit is None:
            return delay
        left = self.limit - self.waited
        if left < 1.0:
            return None
        if not isinstance(exc, Transient) and delay > left:
            return None  # asking before the platform allows it only earns a longer wait
        return min(delay, left)

    def spent(self, seconds: float) -> None:
        """Count a wait that was made."""
        self.waited += seconds


def retry_delay(exc: DownloadError, attempt: int) -> float | None:
    """Seconds to wait before trying the phase again, or None to give up (the full schedule)."""
    if isinstance(exc, (RateLimited, BudgetExhausted)) and exc.retry_at is not None:
        delay = (exc.retry_at - datetime.now(UTC)).total_seconds()
        if attempt < RATE_WAITS and delay <= MAX_RATE_WAIT.total_seconds():
            return max(delay, 1.0)
        return None
    if isinstance(exc, Transient) and attempt < len(NETWORK_WAITS):
        return float(NETWORK_WAITS[attempt])
    return None


def wait_reason(exc: DownloadError) -> str:
    """What a wait after ``exc`` is for, e.g. "Network trouble reaching Instagram for @alice;
    trying again" (a Transient's "try again later" is what the job itself does now)."""
    if isinstance(exc, Transient):
        return f"{_LATER.sub('', exc.sentence).rstrip('.')}; trying again"
    return exc.sentence
