"""One Instagram request budget per session across worker processes (RabbitMQ, PostgreSQL).

Each worker is a real `python bot.py worker` subprocess; the requests each session made
are counted at the fake Instagram by the login they carried.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time

import pytest

from tests.chat import World
from tests.conftest import pg_skip_reason
from tests.fakes.instagram import FakeInstagram, FakeSession, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import TOKEN, make_settings, running_bot
from tests.postgres import own_database
from tests.workers_kit import RABBIT, WorkerProcess, started_jobs, unreachable, worker_env

pytestmark = pytest.mark.timeout(180)
BUDGET = 7  # a job costs 5 requests (see the first assertion): the second one is cut at 2


@pytest.fixture
async def cluster(net, data_dir, tmp_path):
    """PostgreSQL of our own, a fresh queue name on RabbitMQ, the bot, and a way to start workers
    with a small daily budget and one of two Instagram logins."""
    reason = await pg_skip_reason() or unreachable(RABBIT)
    if reason:
        pytest.skip(reason)
    instagram = FakeInstagram(net)
    logins = {name: instagram.login(name) for name in ("archivebot", "otherbot")}
    prefix = f"test-{secrets.token_hex(4)}"
    workers: list[WorkerProcess] = []
    async with own_database() as db_url:

        def start(name: str, login: str) -> WorkerProcess:
            session = write_session_file(tmp_path / login / f"session-{login}", logins[login])
            env = worker_env(
                data_dir=data_dir, db_url=db_url, queue_url=RABBIT, prefix=prefix, net=net, session=session
            )
            env["INSTAGRAM_DAILY_REQUEST_BUDGET"] = str(BUDGET)
            worker = WorkerProcess(tmp_path, env, name, "--platform", "instagram")
            workers.append(worker)
            return worker

        with FakeTelegram(TOKEN) as telegram:
            settings = make_settings(
                data_dir, net=net, telegram=telegram, database_url=db_url, queue_url=RABBIT, queue_name=prefix
            )
            try:
                async with running_bot(settings) as app:
                    yield World(telegram, instagram, FakeTikTok(net), app), start, logins
            finally:
                for worker in workers:
                    worker.stop(signal.SIGKILL)


async def ended(world: World, username: str, state: str) -> str:
    """The status message of @username's job once it says ``state``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for message in world.bot_messages():
            if f"@{username}" in (message.plain or "") and state in message.plain:
                return message.plain
        await asyncio.sleep(0.05)
    raise AssertionError(f"@{username} never {state}: {[m.plain for m in world.bot_messages()]}")


def requests_of(instagram: FakeInstagram, login: FakeSession) -> int:
    """API requests the fake served to one login (its csrftoken: a cookie, or the mobile API's header)."""
    return sum(1 for r in instagram.api_requests() if login.csrftoken in " ".join(r.headers.values()))


async def test_workers_with_one_session_share_its_budget_and_another_session_has_its_own(cluster):
    world, start, logins = cluster
    for name, pk in (("carol", 3003), ("dave", 3004), ("erin", 3005)):
        world.instagram.add_profile(make_profile(name, pk, posts=3, stories=0, highlights=()))
    one, two = start("w-one", "archivebot"), start("w-two", "archivebot")
    await one.wait_for("takes instagram jobs")
    await two.wait_for("takes instagram jobs")

    await world.reply("/download carol")
    assert "Completed: 3 posts" in await ended(world, "carol", "Completed")
    first = requests_of(world.instagram, logins["archivebot"])
    assert first == world.instagram.api_count() == 5  # profile, start page, timeline, stories, highlights
    ran_carol, other = (one, two) if started_jobs(one) else (two, one)
    ran_carol.stop()  # dave's job goes to the other worker, which loaded the budget before carol's

    await world.reply("/download dave")
    failed = await ended(world, "dave", "Failed")
    assert started_jobs(other) == 1
    assert "request budget (INSTAGRAM_DAILY_REQUEST_BUDGET) is spent" in failed
    assert requests_of(world.instagram, logins["archivebot"]) == world.instagram.api_count() == BUDGET
    status = await world.reply("/status")
    assert f"Instagram requests: {BUDGET} last hour, {BUDGET} last 24 h of {BUDGET}" in status
    other.stop()

    third = start("w-third", "otherbot")  # another login: its own budget
    await third.wait_for("takes instagram jobs")
    await world.reply("/download erin")
    assert "Completed: 3 posts" in await ended(world, "erin", "Completed")
    assert requests_of(world.instagram, logins["otherbot"]) == first
    assert requests_of(world.instagram, logins["archivebot"]) == BUDGET
    status = await world.reply("/status")
    assert (
        f"w-third (instagram, session otherbot): idle; Instagram requests: {first} last hour, "
        f"{first} last 24 h of {BUDGET}"
    ) in status
