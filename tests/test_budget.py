"""The Instagram request budget: counts per hour and kind in the real database, the 24-hour cap."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from db.models import RequestLog
from downloader.budget import RequestBudget
from downloader.errors import BudgetExhausted


class Clock:
    """A settable clock for the budget (time is the budget's input, not our code under test)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 5, 1, 10, 30, tzinfo=UTC))


async def test_counts_from_worker_threads_reach_the_database(db, clock):
    budget = RequestBudget(0, clock=clock)
    await budget.load()

    def work(kind: str) -> None:
        for _ in range(50):
            budget.record(kind)

    threads = [threading.Thread(target=work, args=(k,)) for k in ("timeline", "reels", "timeline")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def stored() -> dict:
        # No flush() here: the threads' counts must reach the database by themselves.
        while True:
            rows = {(r.kind, r.hour): r.count for r in await RequestLog.all()}
            if sum(rows.values()) == 150:
                return rows
            await asyncio.sleep(0.01)

    rows = await asyncio.wait_for(stored(), timeout=5)
    hour = datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert rows == {("timeline", hour): 100, ("reels", hour): 50}
    assert budget.usage() == (150, 150)


async def test_the_window_slides_and_the_cap_says_when_it_opens(db, clock):
    budget = RequestBudget(10, clock=clock)
    await budget.load()
    for _ in range(6):
        budget.record("timeline")
    clock.now += timedelta(hours=5)
    for _ in range(4):
        budget.record("stories")
    await budget.flush()

    assert budget.usage() == (4, 10) and not budget.allowed()
    with pytest.raises(BudgetExhausted) as caught:
        budget.check()
    # The 6 requests of 10:xx leave the window at 10:00 the next day.
    assert caught.value.retry_at == datetime(2026, 5, 2, 10, tzinfo=UTC)
    assert "deferred to 10:00 UTC" in caught.value.sentence
    assert budget.usage_line() == "Instagram requests: 4 last hour, 10 last 24 h of 10"

    restarted = RequestBudget(10, clock=clock)
    await restarted.load()  # the counts survive a restart
    assert restarted.usage() == (4, 10)

    clock.now = datetime(2026, 5, 2, 10, 1, tzinfo=UTC)
    assert restarted.usage() == (0, 4) and restarted.allowed()
    restarted.check()


async def test_no_limit_never_refuses(db, clock):
    budget = RequestBudget(0, clock=clock)
    for _ in range(5000):
        budget.record("timeline")
    assert budget.allowed()
    budget.check()
    assert budget.usage_line() == "Instagram requests: 5000 last hour, 5000 last 24 h"
