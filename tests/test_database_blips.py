"""PostgreSQL going away for a few seconds: mid-job, at the finish, and at start-up.

A TCP relay (tests/fakes/outage.py) stands between the bot and the real PostgreSQL
server: while down it refuses connections and cuts the open ones, as a restarting
database server or a broken network would.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from db import close_database, open_database, queries
from db.models import Account, Job, MediaItem, Process
from db.patience import connection_lost
from downloader.events import PhaseFinished
from downloader.leases import LEASE, ProcessRegistry
from handlers.errors import NO_DATABASE
from tests.chat import World
from tests.conftest import pg_skip_reason
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.outage import Relay
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import TOKEN, files_under, is_profile_picture, make_settings, running_bot
from tests.postgres import PG_URL, own_database, with_database
from tests.process import BOT, BotProcess, bot_env

pytestmark = pytest.mark.timeout(180)
START_LINE = "lost the connection to the database"
END_LINE = "the database answers again"


def through(url: str, port: int) -> str:
    """The database URL with its port replaced by the relay's."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}"))


@pytest.fixture
async def pg_gate():
    """A database of this test's own, reached through a relay that is up; yields (url, relay)."""
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    async with own_database(migrated=True) as url:
        with Relay(urlsplit(PG_URL).port or 5432) as gate:
            gate.up()
            yield through(url, gate.port), gate


def fake_instagram(net, tmp_path):
    """A fake Instagram with alice (24 posts, 36 files) and a session file for it."""
    instagram = FakeInstagram(net)
    instagram.add_profile(
        make_profile("alice", 1001, posts=24, stories=0, highlights=(), image_size=30_000, video_size=30_000)
    )
    return instagram, write_session_file(tmp_path / "session-archivebot", instagram.login())


def bot_settings(data_dir, net, telegram, session, url):
    return make_settings(
        data_dir,
        net=net,
        telegram=telegram,
        instagram_session_file=session,
        status_edit_interval=0.5,
        download_retries=0,
        download_concurrency=2,
        database_url=url,
    )


@pytest.fixture
async def world(pg_gate, net, data_dir, tmp_path, caplog):
    """The bot on PostgreSQL through the relay, logged in to a fake Instagram with alice."""
    url, gate = pg_gate
    caplog.set_level(logging.INFO)
    instagram, session = fake_instagram(net, tmp_path)
    with FakeTelegram(TOKEN) as telegram:
        async with running_bot(bot_settings(data_dir, net, telegram, session, url)) as app:
            yield World(telegram, instagram, FakeTikTok(net), app), gate


async def until(check, timeout: float = 60, what: str = "condition") -> None:
    """Wait until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def tracebacks(caplog) -> list[str]:
    """Log records of the bot's loop that carry a traceback (the fakes' threads aside)."""
    return [r.getMessage() for r in caplog.records if r.exc_info and r.threadName == "MainThread"]


def media_files(data_dir) -> list[str]:
    root = data_dir / "downloads" / "instagram" / "alice"
    if not root.exists():
        return []
    return [name for name in files_under(root) if not name.endswith(".json") and not is_profile_picture(name)]


async def assert_nothing_stranded(world: World, data_dir, caplog, *, refetched: bool = False) -> None:
    """Every file once, nothing partial, no job running, the lease free, no traceback.

    ``refetched``: a job that stopped may fetch again the files it could not record."""
    names = media_files(data_dir)
    assert not [n for n in names if n.endswith(".part")], names
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 36
    fetched = [r.path for r in world.instagram.cdn_requests()]
    assert refetched or len(fetched) == len(set(fetched)), "a file was fetched twice"
    assert await Job.filter(state__in=("running", "queued")).count() == 0
    alice = await Account.get(username="alice")
    assert alice.lease_owner is None and alice.lease_until is None
    assert tracebacks(caplog) == []
    assert "Task exception was never retrieved" not in caplog.text
    assert caplog.text.count(START_LINE) == 1 and caplog.text.count(END_LINE) == 1, caplog.text


async def test_the_database_away_mid_job_is_waited_out(world, data_dir, caplog):
    world, gate = world
    world.instagram.media_delay = 0.00001  # 0.3 s per file, two at a time: running when cut
    await world.reply("/download alice")
    await until(lambda: len(media_files(data_dir)) >= 6, what="the first files")
    gate.down()
    cut_at = time.monotonic()
    await until(lambda: START_LINE in caplog.text, what="the outage line")
    assert await world.reply("/status") == NO_DATABASE  # chat answers meanwhile, in one sentence
    await asyncio.sleep(max(0.0, 8 - (time.monotonic() - cut_at)))
    gate.up()
    world.instagram.media_delay = 0
    final = await world.message_with("Completed:", timeout=90)
    assert "posts: 24 new (36 files)" in final.plain
    await assert_nothing_stranded(world, data_dir, caplog)
    shown = [c.params.get("text", "") for c in world.telegram.calls if c.method == "editMessageText"]
    assert any("The database is not reachable" in text for text in shown)  # the wait was shown


async def test_the_database_away_at_the_finish_still_ends_the_job_and_frees_the_account(
    world, data_dir, caplog
):
    world, gate = world
    service = world.app.bot_data.service
    cut: list[float] = []

    def cut_after_the_last_phase(event) -> None:
        if isinstance(event, PhaseFinished) and event.result.phase == "highlights" and not cut:
            gate.down()  # before the counts, the lease release and the final state are stored
            cut.append(time.monotonic())

    service.subscribe(cut_after_the_last_phase)
    await world.reply("/download alice")
    await until(lambda: START_LINE in caplog.text, what="the outage line")
    await asyncio.sleep(max(0.0, 4 - (time.monotonic() - cut[0])))
    assert await_nothing(world)  # still no final state while the database is away
    gate.up()
    final = await world.message_with("Completed:", timeout=60)
    assert "posts: 24 new (36 files)" in final.plain and world.buttons(final) == {}
    await assert_nothing_stranded(world, data_dir, caplog)
    # The account is free at once: the next download runs (nothing new).
    await world.reply("/download alice")
    await until(lambda: len([m for m in world.bot_messages() if "Completed:" in m.plain]) == 2)
    assert await Job.filter(state="completed").count() == 2


async def test_a_file_row_cut_after_the_server_stored_it_is_neither_doubled_nor_fatal(
    world, data_dir, caplog
):
    world, gate = world
    world.instagram.media_delay = 0.00001
    await world.reply("/download alice")
    await until(lambda: len(media_files(data_dir)) >= 4, what="the first files")
    gate.cut_reply_to(b'INSERT INTO "media_items"')  # stored, but the reply never arrives
    await until(lambda: gate.cut_replies == 1, what="the cut reply")
    world.instagram.media_delay = 0
    final = await world.message_with("Completed:", timeout=60)
    assert "posts: 24 new (36 files)" in final.plain and "failed" not in final.plain
    await assert_nothing_stranded(world, data_dir, caplog)  # 36 rows: the second try found the first


async def test_a_job_row_cut_mid_statement_ends_the_job_resumable(world, data_dir, caplog):
    world, gate = world
    gate.cut_reply_to(b'INSERT INTO "profile_changes"')  # the first sync records alice's profile
    await world.reply("/download alice")
    stopped = await world.message_with("press Resume or send /resume", timeout=60)
    assert gate.cut_replies == 1
    assert "The connection to the database was cut while saving" in stopped.plain
    assert (await Job.get(id=1)).state == "interrupted"
    await world.press(stopped, "Resume")
    final = await world.message_with("Completed:", timeout=60)
    assert "failed" not in final.plain
    await assert_nothing_stranded(world, data_dir, caplog)


async def test_a_longer_outage_ends_the_job_interrupted_and_resume_finishes_it(world, data_dir, caplog):
    world, gate = world
    world.app.bot_data.service.database_wait = 2.0  # stands for the 10 minutes a real job waits
    world.instagram.media_delay = 0.00001
    await world.reply("/download alice")
    await until(lambda: len(media_files(data_dir)) >= 6, what="the first files")
    gate.down()
    await until(lambda: "job 1 stops: The database was not reachable for" in caplog.text, what="the give-up")
    gate.up()
    world.instagram.media_delay = 0
    stopped = await world.message_with("press Resume or send /resume", timeout=60)
    assert "The database was not reachable for" in stopped.plain
    assert "The download stopped and can be resumed." in stopped.plain
    assert "▶️ Resume" in world.buttons(stopped)
    assert (await Job.get(id=1)).state == "interrupted"
    alice = await Account.get(username="alice")
    # Not given back while the database was away, and no longer renewed: it expires.
    assert alice.lease_owner is None or alice.lease_until <= queries.now() + LEASE
    await world.press(stopped, "Resume")
    final = await world.message_with("Completed:", timeout=60)
    # Files written while their rows could not be stored are found on disk, not fetched again.
    assert "Completed: " in final.plain and "failed" not in final.plain
    await assert_nothing_stranded(world, data_dir, caplog, refetched=True)


async def test_a_lease_whose_release_failed_is_not_renewed_and_expires(pg_gate, caplog):
    url, gate = pg_gate
    await open_database(url)
    registry = ProcessRegistry("bot", beat=0.2)
    try:
        await registry.start()
        alice = await queries.get_or_create_account("instagram", "alice")
        bob = await queries.get_or_create_account("instagram", "bob")
        assert await registry.acquire(alice) is None and await registry.acquire(bob) is None
        gate.down()
        with pytest.raises(Exception) as lost:
            await registry.release(alice)  # outside a job nothing waits: the release is lost
        assert connection_lost(lost.value)
        gate.up()
        before = {a.username: a.lease_until for a in await Account.all()}
        seen = (await Process.get(token=registry.token)).seen_at
        await until_async(lambda: _beat_after(registry.token, seen), what="a heartbeat")
        after = {a.username: a for a in await Account.all()}
        assert after["bob"].lease_until > before["bob"]  # still downloading: renewed
        assert after["alice"].lease_until == before["alice"]  # released (lost): left to expire
        other = ProcessRegistry("cli")
        await Account.filter(id=alice.id).update(lease_until=queries.now())  # 90 s later
        assert await other.acquire(alice) is None  # free again
        assert (await other.acquire(bob)).kind == "bot"
    finally:
        await registry.stop()
        await close_database()
    assert caplog.text.count(START_LINE) == 1 and tracebacks(caplog) == []


async def _beat_after(token: str, moment) -> bool:
    return (await Process.get(token=token)).seen_at > moment


async def until_async(check, timeout: float = 30, what: str = "condition") -> None:
    """Wait until ``await check()`` is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def await_nothing(world: World) -> bool:
    return not [m for m in world.bot_messages() if "Completed:" in (m.plain or "")]


async def test_the_bot_started_before_postgresql_waits_for_it(pg_gate, net, data_dir, tmp_path, caplog):
    url, gate = pg_gate
    caplog.set_level(logging.INFO)
    gate.down()  # the machine is booting: PostgreSQL not up yet
    instagram, session = fake_instagram(net, tmp_path)
    with FakeTelegram(TOKEN) as telegram:
        starting = asyncio.ensure_future(_start(bot_settings(data_dir, net, telegram, session, url)))
        await until(lambda: "is not reachable" in caplog.text, what="the first attempt")
        assert not starting.done()
        gate.up()
        bot = await asyncio.wait_for(starting, 60)
        try:
            world = World(telegram, instagram, FakeTikTok(net), bot)
            await world.reply("/download alice")
            final = await world.message_with("Completed:", timeout=60)
            assert "posts: 24 new (36 files)" in final.plain
        finally:
            await _stop(bot)
    lines = [r.getMessage() for r in caplog.records if "PostgreSQL at 127.0.0.1:" in r.getMessage()]
    assert lines and all("is not reachable (" in line and "next try at" in line for line in lines)
    assert "PostgreSQL answered on attempt" in caplog.text
    assert START_LINE not in caplog.text  # the attempts are the start-up's lines, not an outage's
    assert tracebacks(caplog) == []


async def _start(settings):
    """running_bot's start half: returns the started Application."""
    context = running_bot(settings)
    app = await context.__aenter__()
    app.bot_data.extras["context"] = context
    return app


async def _stop(app) -> None:
    await app.bot_data.extras["context"].__aexit__(None, None, None)


async def test_a_database_that_does_not_exist_is_one_sentence(tmp_path):
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    url = with_database(PG_URL, "archive_no_such_db")
    with FakeTelegram(TOKEN) as telegram:
        for args in ([], ["download", "alice"], ["worker"]):
            done = subprocess.run(
                [sys.executable, str(BOT), *args],
                cwd=tmp_path,
                env=bot_env(
                    tmp_path,
                    TELEGRAM_BOT_TOKEN=TOKEN,
                    TELEGRAM_API_URL=telegram.url,
                    DATABASE_URL=url,
                    **({"QUEUE_URL": "redis://127.0.0.1:1"} if args == ["worker"] else {}),
                ),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2, done.stderr
            assert done.stderr.strip().splitlines() == [
                "DATABASE_URL names the PostgreSQL database 'archive_no_such_db', which does not exist on "
                "127.0.0.1:5432; create it with: createdb -h 127.0.0.1 -p 5432 -U postgres archive_no_such_db"
            ], (args, done.stderr)


def test_sigterm_while_the_bot_waits_for_postgresql_exits_cleanly(tmp_path):
    with Relay(5432) as nobody, FakeTelegram(TOKEN) as telegram:  # PostgreSQL not up yet
        env = bot_env(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=telegram.url,
            ALLOWED_USER_IDS="4242",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{nobody.port}/archive",
        )
        bot = BotProcess(tmp_path, env)
        try:
            bot.wait_for_output("attempt 2 failed, next try at")
            bot.signal(signal.SIGTERM)
        finally:
            code = bot.wait(timeout=30)
    assert code == 0, bot.output
    assert f"PostgreSQL at 127.0.0.1:{nobody.port} is not reachable (" in bot.output
    assert "attempt 1 failed" in bot.output and "(in 2 s)" in bot.output and "(in 4 s)" in bot.output
    assert "Traceback" not in bot.output and START_LINE not in bot.output


def test_the_command_line_without_postgresql_says_so(tmp_path):
    with Relay(5432) as nobody:  # down: nothing listens on its port
        url = f"postgres://postgres@127.0.0.1:{nobody.port}/archive"
        done = subprocess.run(
            [sys.executable, str(BOT), "download", "alice"],
            cwd=tmp_path,
            env=bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"PostgreSQL at 127.0.0.1:{nobody.port} is not reachable ("
    ), lines
