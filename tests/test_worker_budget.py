"""One Instagram request budget per session across worker processes (RabbitMQ, PostgreSQL).

Each worker is a real `python bot.py worker` subprocess; the requests each session made
are counted at the fake Instagram by the login they carried.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chat import World
from tests.fakes.instagram import FakeInstagram, FakeSession, make_profile, write_session_file
from tests.workers_kit import WorkerProcess, running_cluster, started_jobs

pytestmark = pytest.mark.timeout(180)
BUDGET = 7  # a job costs 5 requests (see the first assertion): the second one is cut at 2


@pytest.fixture
async def cluster(net, data_dir, tmp_path):
    """PostgreSQL of our own, a fresh queue name on RabbitMQ, the bot, and a way to start workers
    with a small daily budget and one of two Instagram logins."""
    async with running_cluster(net, data_dir, tmp_path) as running:
        logins = {name: running.world.instagram.login(name) for name in ("archivebot", "otherbot")}

        def start(name: str, login: str) -> WorkerProcess:
            session = write_session_file(tmp_path / login / f"session-{login}", logins[login])
            env = {"INSTAGRAM_SESSION_FILE": str(session), "INSTAGRAM_DAILY_REQUEST_BUDGET": str(BUDGET)}
            return running.start(name, "--platform", "instagram", env=env)

        yield running.world, start, logins


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
