"""PostgreSQL going away for a few seconds: mid-job, at the finish, and at start-up.

A TCP relay (tests/fakes/outage.py) stands between the bot and the real PostgreSQL
server: while down it refuses connections and cuts the open ones, as a restarting
database server or a broken network would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from db.models import Account, Job, MediaItem
from downloader.events import PhaseFinished
from tests.chat import World
from tests.conftest import pg_skip_reason
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.outage import Relay
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import TOKEN, files_under, make_settings, running_bot
from tests.postgres import PG_URL, own_database

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
    async with own_database() as url:
        with Relay(urlsplit(PG_URL).port or 5432) as gate:
            gate.up()
            yield through(url, gate.port), gate


@pytest.fixture
async def world(pg_gate, net, data_dir, tmp_path, caplog):
    """The bot on PostgreSQL through the relay, logged in to a fake Instagram with alice."""
    url, gate = pg_gate
    caplog.set_level(logging.INFO)
    instagram = FakeInstagram(net)
    instagram.add_profile(
        make_profile("alice", 1001, posts=24, stories=0, highlights=(), image_size=30_000, video_size=30_000)
    )
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir,
            net=net,
            telegram=telegram,
            instagram_session_file=session,
            status_edit_interval=0.5,
            download_retries=0,
            download_concurrency=2,
            database_url=url,
        )
        async with running_bot(settings) as app:
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
    return [name for name in files_under(root) if not name.endswith(".json")] if root.exists() else []


async def assert_nothing_stranded(world: World, data_dir, caplog) -> None:
    """Every file once, nothing partial, no job running, the lease free, no traceback."""
    names = media_files(data_dir)
    assert not [n for n in names if n.endswith(".part")], names
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 36
    fetched = [r.path for r in world.instagram.cdn_requests()]
    assert len(fetched) == len(set(fetched)), "a file was fetched twice"
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
    await asyncio.sleep(max(0.0, 8 - (time.monotonic() - cut_at)))
    gate.up()
    world.instagram.media_delay = 0
    final = await world.message_with("Completed:", timeout=90)
    assert "posts: 24 new (36 files)" in final.plain
    await assert_nothing_stranded(world, data_dir, caplog)
