"""Pause and Cancel act at once on a slow link; paused files continue with Range on Resume.

Through the chat (the real bot against the fake Telegram) and the fake CDN throttled
so alice's 12 files take about ten seconds: the status says "Paused" within 2 s of
the button, the CDN sends no byte more, and Resume asks only for the missing bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest

from db.models import MediaItem
from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import TOKEN, make_settings, media_on_disk, running_bot

FILES = 12  # alice: 8 posts (image, video, 3-slide carousel, reel, twice)
SLOW = 2e-5  # seconds per byte: 16 KiB chunks every 0.33 s, about 50 KB/s per transfer


@pytest.fixture
async def world(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram whose alice has 8 posts of large files."""
    instagram = FakeInstagram(net)
    instagram.add_profile(
        make_profile("alice", 1001, posts=8, stories=0, highlights=(), image_size=300_000, video_size=500_000)
    )
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir, net=net, telegram=telegram, instagram_session_file=session, status_edit_interval=0.5
        )
        async with running_bot(settings) as app:
            yield World(telegram, instagram, FakeTikTok(net), app)


def total_bytes(instagram: FakeInstagram) -> int:
    """What alice's archive holds when complete (the files a download fetches)."""
    return sum(len(content) for content in expected_contents(instagram).values())


def expected_contents(instagram: FakeInstagram) -> dict[str, bytes]:
    """sha256 -> bytes of every file a full download of alice fetches."""
    profile = instagram.profiles["alice"]
    urls = []
    for post in profile.posts:
        if post.children:
            urls += [child.video_url or child.image_url for child in post.children]
        else:
            urls.append(post.video_url or post.image_url)
    contents = [instagram.expected_bytes(url) for url in urls]
    return {hashlib.sha256(content).hexdigest(): content for content in contents}


def partial_files(data_dir: Path) -> dict[str, int]:
    """Partial files (not their records) and their sizes."""
    return {
        p.name: p.stat().st_size
        for p in (data_dir / "downloads").rglob("*.part")
        if not p.name.endswith(".resume.part")
    }


def finished_files(data_dir: Path) -> dict[str, int]:
    """Media files under their final names."""
    return {
        n: s
        for n, s in media_on_disk(data_dir).items()
        if not n.endswith(".json") and not Path(n).name.startswith(".")
    }


def leftovers(data_dir: Path) -> list[str]:
    """Every temporary or partial file under downloads/."""
    return sorted(p.name for p in (data_dir / "downloads").rglob("*.part"))


async def until(condition, timeout: float, what: str) -> float:
    """Wait (polling) until ``condition()``; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def start_slow_download(world: World, share: float = 0.2):
    """/download alice on the slow link; return its status message once ``share`` of the
    bytes went out."""
    world.instagram.media_delay = SLOW
    await world.reply("/download alice")
    status = await world.message_with("@alice · Instagram")
    target = share * total_bytes(world.instagram)
    await until(lambda: world.instagram.cdn_bytes_sent >= target, 60, f"{share:.0%} of the bytes")
    return status


async def press_and_time(world: World, status, label: str, shown: str) -> float:
    """Press a status button; the seconds until the status message says ``shown``."""
    pressed = time.monotonic()
    await world.press(status, label)
    current = lambda: world.telegram.message(status.chat_id, status.message_id).plain  # noqa: E731
    try:
        await until(lambda: shown in current(), 10, f"the status saying {shown!r}")
    except AssertionError:
        raise AssertionError(current()) from None
    return time.monotonic() - pressed


async def assert_cdn_quiet(instagram: FakeInstagram) -> None:
    """No transfer is open at the CDN and no byte more goes out."""
    await until(lambda: instagram.cdn_open == 0, 2, "every transfer closed at the CDN")
    sent = instagram.cdn_bytes_sent
    await asyncio.sleep(1.0)  # proving an absence takes a while: bytes would flow every 0.33 s
    assert instagram.cdn_bytes_sent == sent
    assert instagram.cdn_open == 0


async def assert_archive_right(world: World, data_dir: Path) -> None:
    """Every file once, with the right bytes, recorded once; no temporary file left."""
    expected = expected_contents(world.instagram)
    files = [p for p in (data_dir / "downloads" / "instagram" / "alice" / "posts").iterdir()]
    media = [p for p in files if not p.name.endswith(".json") and not p.name.startswith(".")]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in media]
    assert sorted(digests) == sorted(expected)  # each expected file exactly once, byte for byte
    assert await MediaItem.all().count() == FILES
    assert leftovers(data_dir) == []


async def test_pause_stops_transfers_within_2s_and_resume_continues_with_range(world, data_dir):
    status = await start_slow_download(world)
    took = await press_and_time(world, status, "Pause", "⏸ Paused")
    assert took < 2.0, f"paused after {took:.1f} s"
    await assert_cdn_quiet(world.instagram)
    partial = partial_files(data_dir)
    done = finished_files(data_dir)
    assert partial and len(done) + len(partial) <= FILES
    assert all(size > 0 for size in partial.values())
    assert world.instagram.range_requests() == []  # nothing was continued yet
    sent_before = world.instagram.cdn_bytes_sent

    world.instagram.media_delay = 0
    paused = world.telegram.message(status.chat_id, status.message_id)
    await world.press(paused, "Resume")
    await world.message_with("Completed: 8 posts (12 files)")
    asked = sorted(
        int(value.removeprefix("bytes=").rstrip("-")) for _, value in world.instagram.range_requests()
    )
    assert asked == sorted(partial.values())  # each partial file continued from where it stopped
    # The CDN sent only what was missing: no file twice, no partial file again from the start.
    missing = total_bytes(world.instagram) - sum(done.values()) - sum(partial.values())
    assert world.instagram.cdn_bytes_sent - sent_before == missing
    await assert_archive_right(world, data_dir)


async def test_cancel_stops_within_2s_and_removes_partial_files(world, data_dir):
    status = await start_slow_download(world)
    took = await press_and_time(world, status, "Cancel", "Cancelled")
    assert took < 2.0, f"cancelled after {took:.1f} s"
    await assert_cdn_quiet(world.instagram)
    assert leftovers(data_dir) == []  # partial files and their records are gone
    kept = set(finished_files(data_dir))
    assert len(kept) == await MediaItem.all().count() < FILES  # what finished stays archived
    world.instagram.media_delay = 0
    await world.reply("/download alice")
    await world.message_with("Completed: 8 posts")
    assert world.instagram.range_requests() == []  # nothing left to continue: whole files
    await assert_archive_right(world, data_dir)


async def test_a_cdn_that_ignores_range_sends_the_file_again_and_it_is_still_right(world, data_dir):
    world.instagram.honour_range = False
    status = await start_slow_download(world)
    await press_and_time(world, status, "Pause", "⏸ Paused")
    await assert_cdn_quiet(world.instagram)
    partial = partial_files(data_dir)
    done = finished_files(data_dir)
    sent_before = world.instagram.cdn_bytes_sent
    world.instagram.media_delay = 0
    await world.press(world.telegram.message(status.chat_id, status.message_id), "Resume")
    await world.message_with("Completed: 8 posts (12 files)")
    assert len(world.instagram.range_requests()) == len(partial)  # asked, answered 200
    assert all(r.status == 200 for r in world.instagram.cdn_requests())
    missing = total_bytes(world.instagram) - sum(done.values())  # partial files came again whole
    assert world.instagram.cdn_bytes_sent - sent_before == missing
    await assert_archive_right(world, data_dir)


async def test_pause_stops_ytdlp_tiktok_downloads_and_resume_continues_them(world, data_dir):
    account = world.tiktok.add_account("bob.dance", videos=4, size=400_000)
    world.tiktok.media_delay = 0.25  # 64 KB/s per video
    await world.reply("/download tiktok.com/@bob.dance")
    status = await world.message_with("@bob.dance · TikTok")
    await until(lambda: world.tiktok.cdn_bytes_sent >= 0.2 * 4 * 400_000, 60, "a fifth of the bytes")
    took = await press_and_time(world, status, "Pause", "⏸ Paused")
    assert took < 2.0, f"paused after {took:.1f} s"
    await until(lambda: world.tiktok.cdn_open == 0, 2, "every transfer closed at the CDN")
    sent = world.tiktok.cdn_bytes_sent
    await asyncio.sleep(1.0)  # bytes would flow every 0.25 s
    assert world.tiktok.cdn_bytes_sent == sent
    videos = data_dir / "downloads" / "tiktok" / "bob.dance" / "videos"
    partial = {p.name: p.stat().st_size for p in videos.glob(".*.part.part")}  # yt-dlp's own
    assert partial and all(size > 0 for size in partial.values())
    assert len(list(videos.glob(".*.resume.part"))) == len(partial)

    world.tiktok.media_delay = 0
    await world.press(world.telegram.message(status.chat_id, status.message_id), "Resume")
    await world.message_with("Completed: 4 videos")
    asked = sorted(int(v.removeprefix("bytes=").rstrip("-")) for _, v in world.tiktok.range_requests())
    assert asked == sorted(partial.values())
    digests = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in videos.glob("*.mp4"))
    assert digests == sorted(hashlib.sha256(post.content()).hexdigest() for post in account.posts)
    assert sorted(p.name for p in videos.glob(".*")) == []  # nothing partial left


async def test_cancel_of_a_paused_download_removes_its_partial_files(world, data_dir):
    status = await start_slow_download(world)
    await press_and_time(world, status, "Pause", "⏸ Paused")
    assert partial_files(data_dir)
    world.instagram.media_delay = 0
    requests = world.instagram.cdn_count()
    await press_and_time(world, status, "Cancel", "Cancelled")
    assert leftovers(data_dir) == []
    assert world.instagram.cdn_count() == requests  # nothing was fetched to cancel it
    assert len(finished_files(data_dir)) == await MediaItem.all().count() < FILES
