"""The Instagram request budget: counts per session, hour and kind in the real database, the
24-hour cap, one figure for every process using a session, and a 429 shared between them."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from db import close_database, connection_name, open_database, tortoise_config
from db.models import InstagramSession, RequestCount
from downloader.budget import RequestBudget
from downloader.errors import BudgetExhausted, RateLimited
from downloader.events import Waiting
from tests.fakes.instagram import make_profile
from tests.harness import make_settings, run_download, services_for


class Clock:
    """A settable clock for the budget (time is the budget's input, not our code under test)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 5, 1, 10, 30, tzinfo=UTC))


async def process(limit: int, clock: Clock, *sessions: str) -> RequestBudget:
    """One process's budget (the bot, the command line or a worker) on the shared database."""
    budget = RequestBudget(limit, clock=clock)
    for name in sessions:
        budget.session(name)
    await budget.load()
    return budget


async def soon(condition, timeout: float = 10) -> None:
    """Wait until ``await condition()`` is true (fails after ``timeout`` seconds)."""

    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_counts_from_worker_threads_reach_the_database(db, clock):
    budget = await process(0, clock)
    alice = budget.session("alice")

    def work(kind: str) -> None:
        for _ in range(50):
            alice.record(kind)

    threads = [threading.Thread(target=work, args=(k,)) for k in ("timeline", "reels", "timeline")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def stored() -> dict:
        # No flush() here: the threads' counts must reach the database by themselves.
        while True:
            rows = {(r.session, r.kind, r.hour): r.count for r in await RequestCount.all()}
            if sum(rows.values()) == 150:
                return rows
            await asyncio.sleep(0.01)

    rows = await asyncio.wait_for(stored(), timeout=5)
    hour = datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert rows == {("alice", "timeline", hour): 100, ("alice", "reels", hour): 50}
    assert alice.usage() == (150, 150)


async def test_the_window_slides_and_the_cap_says_when_it_opens(db, clock):
    budget = await process(10, clock)
    alice = budget.session("alice")
    for _ in range(6):
        alice.record("timeline")
    clock.now += timedelta(hours=5)
    for _ in range(4):
        alice.record("stories")
    await budget.flush()

    assert alice.usage() == (4, 10) and not alice.allowed()
    with pytest.raises(BudgetExhausted) as caught:
        alice.check()
    # The 6 requests of 10:xx leave the window at 10:00 the next day.
    assert caught.value.retry_at == datetime(2026, 5, 2, 10, tzinfo=UTC)
    assert "deferred to 10:00 UTC" in caught.value.sentence
    assert alice.usage_line() == "Instagram requests (session alice): 4 last hour, 10 last 24 h of 10"

    restarted = await process(10, clock, "alice")  # the counts survive a restart
    assert restarted.usage("alice") == (4, 10)

    clock.now = datetime(2026, 5, 2, 10, 1, tzinfo=UTC)
    assert restarted.usage("alice") == (0, 4) and restarted.allowed("alice")
    restarted.check("alice")


async def test_no_limit_never_refuses(db, clock):
    budget = RequestBudget(0, clock=clock)
    anonymous = budget.session(None)
    for _ in range(5000):
        anonymous.record("timeline")
    assert anonymous.allowed()
    anonymous.check()
    assert anonymous.usage_line() == "Instagram requests (no login): 5000 last hour, 5000 last 24 h"


async def test_two_sessions_are_counted_apart_and_a_restart_keeps_each(db, clock):
    budget = await process(5, clock)
    alice, bob = budget.session("alice"), budget.session("bob")
    for _ in range(5):
        alice.record("timeline")
    bob.record("profile")
    await budget.flush()

    with pytest.raises(BudgetExhausted):
        alice.check()
    bob.check()  # bob's login is not spent by alice's requests
    assert (alice.usage(), bob.usage()) == ((5, 5), (1, 1))
    rows = {(r.session, r.kind): r.count for r in await RequestCount.all()}
    assert rows == {("alice", "timeline"): 5, ("bob", "profile"): 1}

    clock.now += timedelta(hours=23)
    restarted = await process(5, clock, "alice", "bob", "carol")
    assert [restarted.usage(n) for n in ("alice", "bob", "carol")] == [(0, 5), (0, 1), (0, 0)]


async def test_a_database_blip_loses_no_count_and_fails_nothing(db, clock, caplog):
    budget = await process(5, clock, "alice")
    alice = budget.session("alice")
    alice.record("timeline")
    await budget.flush()
    conn = connections.get(connection_name(db))
    await conn.execute_script("ALTER TABLE request_counts RENAME TO request_counts_away")
    alice.record("timeline")
    alice.record("profile")
    await budget.flush()  # neither raises: the job that made the requests goes on
    await budget.refresh()
    assert "could not store Instagram request counts" in caplog.text
    assert alice.usage() == (3, 3)  # the figure keeps what could not be written
    await conn.execute_script("ALTER TABLE request_counts_away RENAME TO request_counts")
    await budget.flush()
    rows = {(r.session, r.kind): r.count for r in await RequestCount.all()}
    assert rows == {("alice", "timeline"): 2, ("alice", "profile"): 1}  # each request once
    restarted = await process(5, clock, "alice")
    assert restarted.usage("alice") == (3, 3)


async def test_two_processes_with_one_session_share_one_figure(db, clock):
    worker, cli = await process(10, clock, "alice"), await process(10, clock, "alice")
    for _ in range(6):
        worker.record("alice", "timeline")
    await worker.flush()
    for _ in range(3):
        cli.record("alice", "profile")
    await cli.flush()

    # The command line's figure is 30 s old at most while it makes requests: it re-reads then.
    in_a_thread = lambda: cli.check("alice")  # noqa: E731 - the source checks in a worker thread
    await asyncio.to_thread(in_a_thread)  # read at load: 3 of 10
    assert cli.usage("alice") == (3, 3)
    clock.now += timedelta(seconds=31)
    await asyncio.to_thread(in_a_thread)  # re-read: the worker's 6 are in it
    assert cli.usage("alice") == (9, 9)

    cli.record("alice", "profile")
    with pytest.raises(BudgetExhausted):  # 6 + 4 = 10: the sum reaches the limit
        await asyncio.to_thread(in_a_thread)
    await cli.refresh()  # at a job start: what this process recorded is stored first, then read
    await worker.refresh()
    assert worker.usage("alice") == cli.usage("alice") == (10, 10)
    assert sum(r.count for r in await RequestCount.filter(session="alice")) == 10
    with pytest.raises(BudgetExhausted):
        worker.check("alice")


async def test_a_429_rest_is_shared_by_every_process_with_the_session(db, clock):
    bot, worker = await process(0, clock, "alice", "bob"), await process(0, clock, "alice", "bob")
    until = clock.now + timedelta(minutes=11)
    bot.session("alice").rest_until(until)
    bot.session("alice").rest_until(until - timedelta(minutes=5))  # an earlier time changes nothing
    await bot.flush()
    assert await InstagramSession.filter(rest_until__not_isnull=True).values_list("name", "rest_until") == [
        ("alice", until)
    ]

    await worker.refresh()  # a job start
    with pytest.raises(RateLimited) as caught:
        worker.check("alice")
    assert caught.value.retry_at == until
    assert caught.value.sentence == (
        "Instagram is rate limiting the bot's session alice; waiting until 10:41 UTC before asking again."
    )
    worker.check("bob")  # another login is not told to wait
    clock.now = until
    worker.check("alice")


async def test_a_429_at_instagram_keeps_a_second_process_from_asking(ig, make_source, session_file, db):
    first, second = RequestBudget(0), RequestBudget(0)
    await first.load()
    await second.load()
    source = make_source(session_file=session_file, budget=first)
    account = await asyncio.to_thread(source.resolve, "alice")
    ig.rate_limit(1)
    listing = source.pages(account, "posts", None)
    with pytest.raises(RateLimited) as told:
        await asyncio.to_thread(next, listing)
    await first.flush()
    asked = ig.api_count()

    other = make_source(session_file=session_file, budget=second)  # the same login, another process
    with pytest.raises(RateLimited) as caught:
        await asyncio.to_thread(other.resolve, "alice")
    assert ig.api_count() == asked  # not one request before Instagram's time
    assert caught.value.retry_at == told.value.retry_at
    assert f"waiting until {told.value.retry_at:%H:%M} UTC" in caught.value.sentence


async def test_counts_from_before_sessions_count_against_every_session(data_dir):
    url = f"sqlite://{data_dir / 'old.sqlite3'}"
    await migrate(config=tortoise_config(url), target="archive.0008_workers")
    await Tortoise.close_connections()
    await Tortoise.init(config=tortoise_config(url))
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    conn = connections.get(connection_name(url))
    for hour, kind, count in [(now, "timeline", 7), (now - timedelta(hours=2), "profile", 5)]:
        await conn.execute_query(  # counted before 0009 (the table is gone since 0010)
            "INSERT INTO request_log (hour, kind, count) VALUES (?, ?, ?)",
            [hour.isoformat(sep=" "), kind, count],
        )
    await Tortoise.close_connections()

    await open_database(url)  # the upgrade: 0009 copies the old counts
    try:
        rows = sorted(await RequestCount.all().values_list("session", "kind", "count"))
        assert rows == [("*", "profile", 5), ("*", "timeline", 7)]
        budget = await process(20, None, "alice", "")
        assert budget.usage("alice") == budget.usage("") == (7, 12)
        budget.record("alice", "timeline", 8)
        with pytest.raises(BudgetExhausted):
            budget.check("alice")
        budget.check("")
    finally:
        await close_database()


async def test_a_process_waits_out_the_429_another_process_was_given(ig, net, data_dir, session_file):
    ig.add_profile(make_profile("bob", 1002, posts=3, stories=0, highlights=()))
    settings = make_settings(data_dir, net=net, instagram_session_file=session_file)
    bot, cli = await services_for(settings), await services_for(settings)  # two processes, one login
    waits: dict[str, list[Waiting]] = {"bot": [], "cli": []}
    for name, services in (("bot", bot), ("cli", cli)):
        services.service.subscribe(
            lambda e, name=name: waits[name].append(e) if isinstance(e, Waiting) else None
        )
    try:
        ig.rate_limit(1)
        told = asyncio.create_task(run_download(bot, "instagram", "alice"))
        stored = InstagramSession.filter(name="archivebot", rest_until__not_isnull=True).exists
        await soon(stored)
        waiting = asyncio.create_task(run_download(cli, "instagram", "bob"))
        await soon(lambda: asyncio.sleep(0, waits["cli"]))

        assert ig.api_count() == 1  # the bot's request answered 429; the command line asked nothing
        until = waits["bot"][0].until
        assert [w.reason for w in waits["cli"]] == [
            "Instagram is rate limiting the bot's session archivebot; "
            f"waiting until {until:%H:%M} UTC before asking again."
        ]
        assert abs((waits["cli"][0].until - until).total_seconds()) < 2
        for services, wait in ((bot, waits["bot"][0]), (cli, waits["cli"][0])):
            services.service.control(wait.job_id).ask("paused")  # the wait ends at once
        results = await asyncio.wait_for(asyncio.gather(told, waiting), timeout=10)
        assert [r.state for r in results] == ["paused", "paused"]
        assert ig.api_count() == 1
    finally:
        await cli.close()
        await bot.close()


async def test_a_request_taken_back_after_it_was_stored_leaves_the_database_right(db, clock):
    budget = await process(0, clock)
    alice = budget.session("alice")
    sent = alice.record("timeline")
    unsent = alice.record("timeline")
    await budget.flush()
    assert sum(r.count for r in await RequestCount.all()) == 2
    clock.now += timedelta(hours=1)  # the refund names the hour it was counted in, not the current one
    alice.refund("timeline", unsent)
    assert alice.usage() == (0, 1)
    await budget.flush()
    rows = [(r.hour, r.count) for r in await RequestCount.all()]
    assert rows == [(sent, 1)]
    other = await process(0, clock, "alice")  # another process reads what is stored
    assert other.session("alice").usage() == (0, 1)
