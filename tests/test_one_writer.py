"""One writer per account across chat, sync-all and the command line; the archive folder check
as the owner meets it in chat and on the terminal."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from db.models import Job, MediaItem
from tests.chat import World
from tests.fakes.instagram import NEWEST, FakeInstagram, FakePost, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.harness import (
    BOT,
    OWNER,
    TOKEN,
    files_under,
    make_settings,
    media_on_disk,
    process_env,
    running_bot,
)


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=30))
    fake.add_profile(make_profile("carol", 3003, posts=3, stories=0, highlights=()))
    return fake


@pytest.fixture
def session(instagram, tmp_path) -> Path:
    return write_session_file(tmp_path / "session-archivebot", instagram.login())


@pytest.fixture
async def world(net, data_dir, instagram, session):
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir, net=net, telegram=telegram, instagram_session_file=session, download_retries=0
        )
        async with running_bot(settings) as app:
            yield World(telegram, instagram, None, app)


def cli(tmp_path: Path, net, session: Path, *args: str) -> subprocess.Popen:
    """`python bot.py download ...` with the same DATA_DIR as the bot under test."""
    env = process_env(tmp_path / "data", net, INSTAGRAM_SESSION_FILE=str(session))
    return subprocess.Popen(
        [sys.executable, str(BOT), "download", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_syncall_leaves_an_account_that_is_downloading_alone(world, data_dir):
    await world.reply("/add alice")
    await world.reply("/add carol")
    gate = world.instagram.media_gate
    gate.hold_after(0)  # alice's download is surely still running when /syncall comes
    await world.reply("/download alice")
    await world.message_with("Downloading @alice posts")
    await gate.until_held()
    await world.reply("/syncall")
    sync = await world.message_with("Sync all")
    assert "@alice: already downloading" in sync.plain
    gate.open()
    final = await world.message_with("Completed: ", timeout=90)
    await world.message_with("1/1 accounts")
    assert "@carol" in world.telegram.message(OWNER, sync.message_id).plain
    assert await Job.filter(kind="download", account__username="alice").count() == 1
    names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(names) == len(set(names)) == await MediaItem.all().count()
    assert "Completed" in final.plain and world.telegram.rate_limited == 0


async def test_a_missing_archive_folder_is_one_sentence_in_chat(world, data_dir):
    await world.reply("/add carol")
    await world.reply("/download carol")
    await world.message_with("Completed:")
    (data_dir / "downloads").rename(data_dir / "elsewhere")
    calls = world.instagram.api_count()
    answer = await world.reply("/download carol")
    root = (data_dir / "downloads").resolve()
    assert answer == f"The archive folder {root} is missing or not mounted; nothing was downloaded."
    assert await world.reply("/syncall") == answer
    assert world.instagram.api_count() == calls
    assert await MediaItem.all().count() == 5  # forgotten: nothing


async def test_another_archives_folder_mounted_in_its_place_is_refused_until_ours_is_back(world, data_dir):
    await world.reply("/add carol")
    await world.reply("/download carol")
    await world.message_with("Completed:")
    ours = data_dir / "downloads"
    ours.rename(data_dir / "ours")
    (ours / "instagram").mkdir(parents=True)
    (ours / ".archive-id").write_text("0123456789abcdef\n")  # another archive's disk
    calls = world.instagram.api_count()
    answer = await world.reply("/download carol")
    assert answer == (
        f"The archive folder {ours.resolve()} belongs to another archive (its .archive-id does not "
        "match this database); nothing was downloaded."
    )
    assert world.instagram.api_count() == calls
    assert sorted(p.name for p in ours.rglob("*")) == [".archive-id", "instagram"]  # nothing written
    assert await MediaItem.all().count() == 5
    shutil.rmtree(ours)
    (data_dir / "ours").rename(ours)
    world.instagram.profiles["carol"].posts.insert(
        0, FakePost(3_003_000_000_000_000_777, "image", NEWEST + 60)
    )
    mark = world.say("/download carol")
    done = await world.telegram.await_for(
        "editMessageText", after=mark, predicate=lambda c: "Completed:" in str(c.params.get("text"))
    )
    assert "Completed: 1 post" in done.params["text"]
    assert await MediaItem.all().count() == 6


async def test_the_command_line_refuses_an_account_the_bot_is_downloading(world, tmp_path, net, session):
    world.instagram.media_gate.hold_after(0)  # the bot's download is surely running when the command comes
    await world.reply("/download alice")
    await world.message_with("Downloading @alice posts")
    await world.instagram.media_gate.until_held()
    command = cli(tmp_path, net, session, "alice")
    _, stderr = await asyncio.to_thread(command.communicate, timeout=60)
    assert command.returncode == 1
    assert f"@alice is being downloaded by the bot (pid {os.getpid()}" in stderr
    assert "Traceback" not in stderr
    world.instagram.media_gate.open()
    await world.message_with("Completed:", timeout=90)
    names = [n for n in media_on_disk(tmp_path / "data") if not n.endswith(".json")]
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 52


async def test_a_bot_started_during_a_command_line_download_leaves_it_alone(
    instagram, net, data_dir, session, tmp_path
):
    # The command line stops half-way through its files (a .part on disk for each) until the bot
    # has started and answered: no race between the two processes' speeds.
    instagram.media_gate.hold_after(0)
    process = cli(tmp_path, net, session, "alice")
    root = data_dir / "downloads"

    def half_written() -> set[str]:
        # Media partials only: a profile picture's .part is brief (it is not held by the gate).
        return (
            {n for n in files_under(root) if n.endswith(".part") and "/profile/" not in n}
            if root.exists()
            else set()
        )

    await wait_for(lambda: half_written() or process.poll() is not None, "a half-written file")
    assert process.poll() is None, process.communicate()[1]
    parts = half_written()
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(data_dir, net=net, telegram=telegram, instagram_session_file=session)
        async with running_bot(settings) as app:
            world = World(telegram, instagram, None, app)
            answer = await world.reply("/download alice")
            assert "@alice is being downloaded by the command line (pid" in answer
            assert parts <= set(files_under(root))  # the command line's half-written files are left alone
            instagram.media_gate.open()
            stdout, stderr = await asyncio.to_thread(process.communicate, timeout=90)
            assert process.returncode == 0, stderr
            assert "interrupted" not in " ".join(m.plain for m in telegram.messages(OWNER))
    assert stdout.strip().splitlines()[-1].startswith("Completed: 30 posts (44 files)")
    names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(names) == 52 and not [n for n in files_under(root) if n.endswith(".part")]


def temporary_files(root: Path) -> list[str]:
    """Unfinished downloads under ``root``: ours (.part) and yt-dlp's (.part, .ytdl, -Frag)."""
    if not root.exists():
        return []
    return [n for n in files_under(root) if n.endswith((".part", ".ytdl")) or ".part-Frag" in n]


async def test_the_bot_clears_what_a_killed_command_line_left_before_downloading_the_account(
    world, tmp_path, net, session, data_dir
):
    world.instagram.media_delay = 0.0003
    process = cli(tmp_path, net, session, "alice")
    root = data_dir / "downloads"
    posts = lambda: [n for n in temporary_files(root) if n.startswith("instagram/alice/posts/")]  # noqa: E731
    await wait_for(posts, "a post's .part")
    process.kill()  # kill -9: no chance to clean up
    await asyncio.to_thread(process.wait, timeout=30)
    left = temporary_files(root)  # posts' partials, perhaps the profile picture's too
    assert posts() and all(n.startswith(("instagram/alice/posts/", "instagram/alice/profile/")) for n in left)
    world.instagram.media_delay = 0
    await world.reply("/download alice")
    await world.message_with("Completed:", timeout=90)
    assert temporary_files(root) == []
    names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 52
