"""/check: the whole Instagram timeline listed once; archived posts missing from it are marked
deleted (files kept), and unmarked when they are listed again."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from db.models import Account, MediaItem
from tests.chat import World
from tests.fakes.instagram import NEWEST, FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import (
    BOT,
    OWNER,
    TOKEN,
    make_settings,
    media_on_disk,
    process_env,
    run_download,
    running_bot,
)

COST = re.compile(r"about (\d+) Instagram requests")


@asynccontextmanager
async def check_world(net, data_dir, tmp_path, posts: int = 15, **overrides):
    """alice with ``posts`` posts (no stories or highlights) on a logged-in fake Instagram."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=posts, stories=0, highlights=()))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    tiktok = FakeTikTok(net)
    tiktok.add_account("bob.dance", videos=1)
    with FakeTelegram(TOKEN) as telegram:
        values = {"instagram_session_file": session, "download_retries": 0, "schedule_min_interval": 1}
        settings = make_settings(data_dir, net=net, telegram=telegram, **(values | overrides))
        async with running_bot(settings) as app:
            yield World(telegram, instagram, tiktok, app)


@pytest.fixture
async def world(net, data_dir, tmp_path):
    async with check_world(net, data_dir, tmp_path) as world:
        yield world


async def archived(world: World, name: str = "alice") -> None:
    """Track and download the account (its posts only matter here)."""
    assert "Now tracking" in await world.reply(f"/add {name}")
    result = await run_download(world.app.bot_data.extras["services"], "instagram", name)
    assert result.state == "completed", result


def code_at(world: World, index: int) -> str:
    return world.instagram.profiles["alice"].posts[index].code


def posted(index: int) -> str:
    return f"{datetime.fromtimestamp(NEWEST - index * 86_400, UTC):%Y-%m-%d}"


async def marks() -> dict[str, datetime | None]:
    rows = await MediaItem.filter(kind__in=("post", "reel")).values_list("media_id", "deleted_at")
    return dict(rows)


def budget_used(world: World) -> int:
    return world.app.bot_data.service.sources["instagram"].budget.usage()[1]


async def run_check(world: World, final: str) -> tuple[int, int, str]:
    """/check alice: (cost announced, API requests made, the final reply)."""
    before = world.instagram.api_count()
    mark = world.say("/check alice")
    announced = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
    cost = int(COST.search(announced.params["text"])[1])
    done = await world.telegram.await_for(
        "sendMessage",
        chat_id=OWNER,
        after=mark,
        timeout=30,
        predicate=lambda call: final in call.params["text"],
    )
    return cost, world.instagram.api_count() - before, done.params["text"]


async def test_deleted_posts_are_marked_kept_and_unmarked_when_back(world, data_dir):
    await archived(world)
    files = media_on_disk(data_dir)
    gone = [world.instagram.delete_post("alice", code_at(world, i)) for i in (5, 2)]  # 2: a carousel
    used = budget_used(world)
    cost, made, text = await run_check(world, "deleted on Instagram")
    assert cost == made == 3  # the lookup and two timeline pages (13 posts, 12 a page)
    assert budget_used(world) - used == 3  # counted in the daily budget like a sync's requests
    assert text == (
        f"@alice: 2 posts deleted on Instagram since they were archived (posted {posted(2)}, "
        f"{posted(5)}); their files stay in the archive."
    )
    first = await marks()
    deleted = {media for media, when in first.items() if when is not None}
    assert deleted == {str(gone[0].pk), *(f"{gone[1].pk}_{n}" for n in (1, 2, 3))}
    assert media_on_disk(data_dir) == files  # nothing removed
    assert (await Account.get(username="alice")).checked_at is not None

    # A second check changes nothing: the first date seen missing stays.
    _, made, again = await run_check(world, "deleted on Instagram")
    assert again == text and made == 3 and await marks() == first

    world.instagram.restore_post("alice", gone[1])
    _, _, text = await run_check(world, "deleted on Instagram")
    assert text.startswith(f"@alice: 1 post deleted on Instagram since it was archived (posted {posted(5)})")
    world.instagram.restore_post("alice", gone[0])
    _, _, text = await run_check(world, "still on Instagram")
    assert text == "@alice: all 15 archived posts are still on Instagram."
    assert all(when is None for when in (await marks()).values())
    assert media_on_disk(data_dir) == files


@pytest.mark.parametrize("what", ["429", "checkpoint"])
async def test_a_listing_cut_part_way_marks_nothing(what, net, data_dir, tmp_path):
    async with check_world(net, data_dir, tmp_path, posts=30) as world:
        await archived(world)
        world.instagram.delete_post("alice", code_at(world, 0))
        world.instagram.fail_timeline_after(1, what)
        _, _, text = await run_check(world, "Could not check")
        assert text.startswith("Could not check @alice: ") and text.endswith("Nothing was marked.")
        assert "Traceback" not in text
        assert all(when is None for when in (await marks()).values())
        assert (await Account.get(username="alice")).checked_at is None


async def test_bad_input_is_one_clear_sentence(world):
    assert await world.reply("/check") == "Usage: /check <Instagram user or profile URL>"
    before = world.instagram.api_count()
    assert await world.reply("/check nobody") == "@nobody is not tracked on Instagram: /add it first."
    assert "Now tracking" in await world.reply("/add bob.dance tiktok")
    text = await world.reply("/check bob.dance tiktok")
    assert text == "/check is for Instagram accounts only; @bob.dance is on TikTok."
    assert world.instagram.api_count() == before
    assert "Now tracking" in await world.reply("/add alice")
    before = world.instagram.api_count()
    text = await world.reply("/check alice")
    assert text == "@alice has no archived posts yet, so there is nothing to check."
    assert world.instagram.api_count() == before


async def test_a_spent_budget_refuses_and_changes_nothing(net, data_dir, tmp_path):
    async with check_world(net, data_dir, tmp_path, instagram_daily_request_budget=1000) as world:
        await archived(world)
        world.instagram.delete_post("alice", code_at(world, 0))
        budget = world.app.bot_data.service.sources["instagram"].budget
        budget.record("timeline", 1000 - budget.usage()[1])  # today's budget is spent
        before = world.instagram.api_count()
        text = await world.reply("/check alice")
        assert text.startswith("Checking @alice needs about 3 Instagram requests but only 0 are left")
        assert world.instagram.api_count() == before
        assert all(when is None for when in (await marks()).values())


async def test_gallery_shows_deleted_posts(gallery):
    """The account page's tile and the item page say "deleted on Instagram <date>" (no JS needed)."""
    await archived(gallery)
    code = code_at(gallery, 1)
    gallery.instagram.delete_post("alice", code)
    _, _, text = await run_check(gallery, "deleted on Instagram")
    assert text.startswith("@alice: 1 post deleted on Instagram")
    item = await MediaItem.get(group_id=code)
    kept = await MediaItem.filter(kind__in=("post", "reel"), deleted_at__isnull=True).first()
    badge = f"deleted on Instagram {item.deleted_at:%Y-%m-%d}"
    async with gallery.browser() as client:
        async with client.get(f"/accounts/{item.account_id}") as response:
            page = await response.text()
        assert page.count(badge) == 1 and f'href="/items/{item.id}"' in page
        async with client.get(f"/items/{item.id}") as response:
            assert badge in await response.text()
        async with client.get(f"/items/{kept.id}") as response:
            assert "deleted on Instagram" not in await response.text()


async def test_monthly_check_shows_in_schedule_and_checks_the_oldest_checked_account(world):
    world.instagram.add_profile(make_profile("carol", 2002, posts=2, stories=0, highlights=()))
    await archived(world)
    await archived(world, "carol")
    world.instagram.delete_post("alice", code_at(world, 0))
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await Account.filter(username="carol").update(checked_at=long_ago)
    await Account.filter(username="alice").update(checked_at=long_ago - timedelta(days=1))
    assert "Scheduled check for deleted posts: off" in await world.reply("/schedule")
    shown = await world.reply("/schedule check monthly")
    assert "Scheduled check for deleted posts: monthly (a share of the accounts each day) — next run" in shown
    assert "Scheduled check for deleted posts: monthly" in await world.reply("/schedule")
    assert "/schedule check monthly" in await world.reply("/schedule check weekly")

    (job,) = world.app.job_queue.get_jobs_by_name("check")
    before = world.instagram.api_count()
    await job.run(world.app)  # the day's run, now: 2 accounts -> 1 a day, the one checked longest ago
    message = await world.message_with("deleted on Instagram since it was archived")
    assert message.plain == (
        f"@alice: 1 post deleted on Instagram since it was archived (posted {posted(0)}); "
        "its files stay in the archive."
    )
    assert world.instagram.api_count() - before == 3  # alice's lookup and 2 pages; carol waits
    carol = await Account.get(username="carol")
    assert carol.checked_at == long_ago
    assert (await Account.get(username="alice")).checked_at > long_ago
    assert "Scheduled check for deleted posts: off" in await world.reply("/schedule check off")
    assert world.app.job_queue.get_jobs_by_name("check") == ()


def bot_py(tmp_path, net, *args: str) -> subprocess.CompletedProcess:
    """`python bot.py <args>` without a login, against the fakes."""
    env = process_env(tmp_path / "data", net)
    run = [sys.executable, str(BOT), *args]
    return subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_command_line_check_without_a_login_costs_what_it_says(tmp_path, net):
    """Logged out: the profile page (12 codes) and a page per further 12, plus the start page."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=15, stories=0, highlights=()))
    assert bot_py(tmp_path, net, "download", "alice").returncode == 0
    refused = bot_py(tmp_path, net, "check", "alice")
    assert refused.returncode == 1 and "@alice is not tracked on Instagram" in refused.stderr
    with sqlite3.connect(tmp_path / "data" / "archive.sqlite3") as db:
        db.execute("UPDATE accounts SET tracked = 1")
    files = media_on_disk(tmp_path / "data")
    code = instagram.profiles["alice"].posts[3].code
    instagram.delete_post("alice", code)
    before = instagram.api_count()
    done = bot_py(tmp_path, net, "check", "alice")
    assert done.returncode == 0, done.stderr
    cost = int(COST.search(done.stderr)[1])
    assert cost == instagram.api_count() - before == 3  # profile page, start page, page 2
    assert done.stdout.strip() == (
        f"@alice: 1 post deleted on Instagram since it was archived (posted {posted(3)}); "
        "its files stay in the archive."
    )
    assert "Traceback" not in done.stderr and media_on_disk(tmp_path / "data") == files


async def test_an_account_without_archived_posts_does_not_hold_up_the_monthly_check(world):
    world.instagram.add_profile(make_profile("dave", 3003, posts=2, stories=0, highlights=()))
    assert "Now tracking" in await world.reply("/add dave")  # tracked, nothing archived yet
    await archived(world)
    await Account.filter(username="alice").update(checked_at=datetime.now(UTC) - timedelta(days=40))
    world.instagram.delete_post("alice", code_at(world, 0))
    await world.reply("/schedule check monthly")
    (job,) = world.app.job_queue.get_jobs_by_name("check")
    before = world.instagram.api_count()
    await job.run(world.app)  # day 1: dave (never checked) has nothing to compare: a month's rest
    assert world.instagram.api_count() == before  # and no request was spent on it
    assert (await Account.get(username="dave")).checked_at is not None
    await job.run(world.app)  # day 2: alice's turn comes
    message = await world.message_with("deleted on Instagram since it was archived")
    assert message.plain.startswith("@alice: 1 post deleted")
    assert world.instagram.api_count() - before == 3
