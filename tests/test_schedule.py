"""Scheduled sync-all: /schedule in chat, runs on PTB's JobQueue, against the fakes and the real bot."""

from __future__ import annotations

import asyncio
import itertools
import logging
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from db import close_database, open_database, queries
from db.models import Account, Job, MediaItem
from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, TOKEN, make_settings, media_on_disk, running_bot
from tests.process import BOT, answer_then_stop, bot_env

GROUP = -100555  # a NOTIFY_CHAT_ID other than the owner's chat
SKIPPED = "skipped: a sync-all is still running"


@asynccontextmanager
async def bot_world(net, data_dir, tmp_path, **overrides):
    """alice (3 posts, 2 stories) on a logged-in fake Instagram, bob.dance (2 videos) on TikTok."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=3, highlights=()))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    tiktok = FakeTikTok(net)
    tiktok.add_account("bob.dance", videos=2)
    with FakeTelegram(TOKEN) as telegram:
        values = {"instagram_session_file": session, "download_retries": 0, "schedule_min_interval": 1}
        settings = make_settings(
            data_dir, net=net, telegram=telegram, **(values | {"sync_schedule": "off"} | overrides)
        )
        async with running_bot(settings) as app:
            yield World(telegram, instagram, tiktok, app)


@pytest.fixture
async def world(request, net, data_dir, tmp_path):
    """The bot with every-second schedules allowed; settings overridable via indirect parametrize."""
    async with bot_world(net, data_dir, tmp_path, **getattr(request, "param", {})) as world:
        yield world


async def until(check, timeout: float = 30, what: str = "condition"):
    """Poll an async or plain check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def track(world: World, *names: str) -> None:
    for name in names:
        assert "Now tracking" in await world.reply(f"/add {name}")


async def schedule(world: World, args: str = "") -> str:
    """Send /schedule; return its answer, not a scheduled run's message that came first."""
    mark = world.say(f"/schedule {args}".strip())

    def answers(call) -> bool:
        return any(word in call.params["text"] for word in ("Quiet mode", "Usage: /schedule"))

    call = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark, predicate=answers)
    return call.params["text"]


async def syncalls() -> list[Job]:
    return await Job.filter(kind="syncall").order_by("id")


def skips(caplog) -> int:
    return sum(SKIPPED in r.getMessage() for r in caplog.records if r.name == "handlers.schedule")


async def test_scheduled_runs_post_their_summary_in_the_notify_chat(world, data_dir):
    await track(world, "alice", "bob.dance tiktok")
    await Account.create(platform="instagram", username="ghost_user", tracked=True)  # vanished since
    shown = await schedule(world, "every 2s")
    assert "Scheduled sync: every 2s — next run" in shown
    first = await world.message_with("Completed: 9 new items from 3 accounts, 1 with problems")
    assert first.plain.startswith("Scheduled sync · 3/3 accounts")
    assert "@alice: 7 new" in first.plain and "@bob.dance (TikTok): 2 new" in first.plain
    assert "@ghost_user" in first.plain and "does not exist" in first.plain
    # The next run finds nothing new, but the problem is worth a message again; nothing is doubled.
    again = await world.message_with("Completed: 0 new items from 3 accounts, 1 with problems")
    assert again.message_id != first.message_id
    files = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(files) == await MediaItem.all().count() == 9
    assert "Scheduled sync: off\n" in await schedule(world, "off")
    runs = await syncalls()
    assert len(runs) >= 2 and all(run.chat_id == OWNER and run.phases == [] for run in runs)
    assert world.telegram.rate_limited == 0


async def test_trigger_during_a_running_syncall_is_skipped_and_logged(world, caplog):
    caplog.set_level(logging.INFO, logger="handlers.schedule")
    await track(world, "alice", "bob.dance tiktok")
    gate = world.instagram.media_gate
    gate.hold_after(0)  # the manual sync-all waits mid-file until a trigger was skipped
    await world.reply("/syncall")
    await world.message_with("Sync all · 0/2 accounts")
    await schedule(world, "every 1s")
    await until(lambda: skips(caplog) >= 1, what="a skipped trigger")
    assert len(await syncalls()) == 1  # only the manual one
    gate.open()
    await world.message_with("Completed: 9 new items")
    # Once it is done the schedule carries on: the next run finds nothing new.
    await world.message_with("Scheduled sync: nothing new in 2 accounts.")
    await schedule(world, "off")
    await world.app.bot_data.board.flush()
    runs = await syncalls()
    assert len(runs) >= 2
    for earlier, later in itertools.pairwise(runs):  # never two at once
        assert earlier.finished_at is not None and earlier.finished_at <= later.created_at


@pytest.mark.parametrize("world", [{"notify_chat_id": GROUP}], indirect=True)
async def test_quiet_mode_silences_runs_that_find_nothing(world):
    await track(world, "alice", "bob.dance tiktok")
    await world.reply("/syncall")
    await world.message_with("Completed: 9 new items")
    await schedule(world, "every 1s")
    line = await world.message_with("Scheduled sync: nothing new in 2 accounts.", chat=GROUP)
    assert line.plain == "Scheduled sync: nothing new in 2 accounts." and line.edits == 0
    assert all(m.plain == line.plain for m in world.bot_messages(GROUP))  # no status messages
    assert await schedule(world, "quiet ON") == "Quiet mode on."
    last = (await syncalls())[-1].id  # runs created after this read quiet mode on

    async def finished_after_quiet(count: int) -> bool:
        return await Job.filter(kind="syncall", id__gt=last, state="completed").count() >= count

    await until(lambda: finished_after_quiet(1), what="a run in quiet mode")
    await world.app.bot_data.board.flush()
    before = len(world.bot_messages(GROUP))
    await until(lambda: finished_after_quiet(3), what="two more runs in quiet mode")
    await world.app.bot_data.board.flush()
    assert len(world.bot_messages(GROUP)) == before
    assert world.bot_messages(OWNER)[-1].plain == "Quiet mode on."  # the owner's chat stayed quiet too
    assert "Quiet mode: on" in await schedule(world)


async def test_stories_schedule_runs_only_the_stories_phase(world, data_dir):
    await track(world, "alice", "bob.dance tiktok")
    shown = await schedule(world, "stories every 1s")
    assert "Scheduled stories sync: every 1s — next run" in shown and "Scheduled sync: off" in shown
    summary = await world.message_with("Completed: 2 new items from 1 account")
    assert summary.plain.startswith("Scheduled stories sync") and "@alice: 2 new" in summary.plain
    assert "bob.dance" not in summary.plain
    assert "Scheduled stories sync: off" in await schedule(world, "stories off")
    runs = await syncalls()
    assert runs and all(run.phases == ["stories"] for run in runs)
    children = await Job.filter(parent_id__in=[r.id for r in runs]).prefetch_related("account")
    assert {(c.account.platform, c.account.username) for c in children} == {("instagram", "alice")}
    assert all(child.phases == ["stories"] for child in children)
    alice = data_dir / "downloads" / "instagram" / "alice"
    assert len([p for p in (alice / "stories").iterdir() if p.suffix != ".json"]) == 2
    assert not (alice / "posts").exists() and not (data_dir / "downloads" / "tiktok").exists()
    assert world.tiktok.count_listing() == 0


@pytest.mark.parametrize("world", [{"schedule_min_interval": 600}], indirect=True)
async def test_bad_schedule_input_answers_with_usage_and_changes_nothing(world):
    before = await schedule(world, "every 2h")
    assert "Scheduled sync: every 2h — next run" in before
    stored = await queries.get_setting("schedule")
    reasons = {
        "every banana": "Write the interval like 30m, 6h or 1d.",
        "every 5m": "That is too often: at least every 10m.",  # SCHEDULE_MIN_INTERVAL
        "every 6h now": "I did not understand that schedule.",
        "daily 25:00": "Write the time as HH:MM",
        "daily 03:00 Mars/Olympus": "Unknown time zone 'Mars/Olympus'",
        "daily 03:00 ../../etc/passwd": "Unknown time zone",
        "quiet maybe": "Quiet mode is on or off.",
        "stories every 0s": "That is too often",
    }
    for bad, reason in reasons.items():
        answer = await schedule(world, bad)
        assert answer.startswith(reason) and "\nUsage: /schedule" in answer, (bad, answer)
    assert await queries.get_setting("schedule") == stored
    assert await queries.get_setting("stories_schedule") is None
    assert await queries.get_setting("quiet") is None
    assert await schedule(world) == before  # same schedule, same next run
    assert await Job.all().count() == 0


@pytest.mark.parametrize("world", [{"sync_schedule": "daily 03:00"}], indirect=True)
async def test_show_schedule_and_daily_in_a_time_zone(world):
    def next_at(hour: int, minute: int, tz: str) -> str:
        now = datetime.now(ZoneInfo(tz))
        when = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        when += timedelta(days=1) if when <= now else timedelta(0)
        return f"{when:%Y-%m-%d %H:%M %Z}"

    shown = await schedule(world)  # SYNC_SCHEDULE's default until changed in chat
    assert shown == (
        f"Scheduled sync: daily 03:00 UTC — next run {next_at(3, 0, 'UTC')}\n"
        "Scheduled stories sync: off\nScheduled check for deleted posts: off\nQuiet mode: off"
    )
    berlin = next_at(3, 0, "Europe/Berlin")
    changed = await schedule(world, "Daily 3:00 Europe/Berlin")
    assert changed.startswith(f"Scheduled sync: daily 03:00 Europe/Berlin — next run {berlin}\n")
    assert await schedule(world) == changed
    assert f"Next scheduled sync: {berlin}" in await world.reply("/status")
    assert await queries.get_setting("schedule") == {
        "kind": "daily",
        "seconds": 0,
        "at": "03:00",
        "tz": "Europe/Berlin",
    }
    assert "Scheduled sync: every 6h — next run" in await schedule(world, "EVERY 6H")


async def test_after_downtime_one_catch_up_run_and_no_overlap(net, data_dir, tmp_path, caplog):
    """Both schedules overdue at start-up: one catch-up each is due at once; only one sync-all runs."""
    caplog.set_level(logging.INFO, logger="handlers.schedule")
    await open_database(f"sqlite://{data_dir / 'archive.sqlite3'}")
    long_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    daily = {"kind": "daily", "seconds": 0, "at": "00:00", "tz": "UTC"}
    await queries.set_setting("schedule", daily)
    hourly = {"kind": "every", "seconds": 3600, "at": "03:00", "tz": "UTC"}
    await queries.set_setting("stories_schedule", hourly)
    await queries.set_setting("last_run:sync", long_ago)
    await queries.set_setting("last_run:stories", long_ago)
    await Account.create(platform="instagram", username="alice", tracked=True)
    await close_database()
    async with bot_world(net, data_dir, tmp_path) as world:
        world.instagram.media_delay = 0.0001
        await world.message_with("Completed: ", timeout=45)
        await until(lambda: skips(caplog) == 1, timeout=20, what="the second catch-up to be skipped")
        runs = await syncalls()
        assert len(runs) == 1 and runs[0].state == "completed"
        shown = await schedule(world)
        assert "Scheduled sync: daily 00:00 UTC — next run" in shown
        assert "Scheduled stories sync: every 1h — next run" in shown
        await world.app.bot_data.board.flush()
        assert len(await syncalls()) == 1 and skips(caplog) == 1


def test_schedule_survives_a_restart_of_the_bot_process(tmp_path):
    """The real `python bot.py`: set a schedule, SIGTERM, start again, the same schedule and next run."""
    with FakeTelegram(TOKEN) as telegram:
        env = bot_env(
            tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url, ALLOWED_USER_IDS=str(OWNER)
        )

        def run_bot_and_say(text: str) -> str:
            reply, code, output = answer_then_stop(tmp_path, env, telegram, text)
            assert code == 0 and "Traceback" not in output, output
            return reply

        before = run_bot_and_say("/schedule every 1h")
        after = run_bot_and_say("/schedule")
    assert before.startswith("Scheduled sync: every 1h — next run ")
    assert after == before  # the next run kept its time: a restart does not postpone it


def test_bad_sync_schedule_setting_is_one_sentence(tmp_path):
    with FakeTelegram(TOKEN) as telegram:
        env = bot_env(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=telegram.url,
            ALLOWED_USER_IDS=str(OWNER),
            SYNC_SCHEDULE="every banana",
        )
        done = subprocess.run(
            [sys.executable, str(BOT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert "SYNC_SCHEDULE is invalid" in done.stderr and "Traceback" not in done.stderr
