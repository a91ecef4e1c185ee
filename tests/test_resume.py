"""Jobs survive pauses, kill -9, SIGTERM and restarts; /resume finishes them exactly once."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import pytest

from db import close_database, open_database
from db.models import Job, MediaItem
from downloader.events import ItemDone
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, TOKEN, make_settings, run_download, services_for
from tests.harness import media_on_disk as harness_media
from tests.process import BotProcess, bot_env

POSTS = 14  # 20 post files + 2 stories + 6 highlight items
EXPECTED_FILES = 28


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=POSTS))
    return fake


@pytest.fixture
def telegram():
    with FakeTelegram(TOKEN) as fake:
        yield fake


def start_bot(tmp_path: Path, net, telegram, session: Path, **extra: str) -> BotProcess:
    env = bot_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.url,
        ALLOWED_USER_IDS=str(OWNER),
        HTTPS_PROXY=net.proxy_url,
        NO_PROXY="127.0.0.1,localhost",
        CA_BUNDLE=net.ca_path,
        INSTAGRAM_SESSION_FILE=str(session),
        STATUS_EDIT_INTERVAL="1",
        DOWNLOAD_RETRIES="0",
        SYNC_SCHEDULE="off",
        **extra,
    )
    bot = BotProcess(tmp_path, env, name=f"bot-{time.monotonic_ns()}")
    telegram.wait_for("setMyCommands", after=len(telegram.calls), timeout=30)
    return bot


def wait_until(condition, timeout: float = 60, what: str = "condition") -> None:
    """Poll (the fakes and the disk) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def media_on_disk(data_dir: Path) -> dict[str, int]:
    """Media files in the archive (no metadata files, no marker, no partial files)."""
    return {
        name: size
        for name, size in harness_media(data_dir).items()
        if not name.endswith(".json") and not Path(name).name.startswith(".")
    }


def last_text(telegram, needle: str) -> str | None:
    """The newest bot message containing ``needle``."""
    for message in reversed(telegram.messages(OWNER)):
        if needle in message.plain:
            return message.plain
    return None


async def assert_archive_matches_disk(instagram, data_dir: Path) -> None:
    """Every expected file exactly once, complete, and recorded exactly once."""
    on_disk = media_on_disk(data_dir)
    assert len(on_disk) == EXPECTED_FILES, sorted(on_disk)
    assert not [p for p in (data_dir / "downloads").rglob("*") if p.name.endswith(".part")]
    sizes = set(instagram.profiles["alice"].media().values())
    assert all(size in sizes for size in on_disk.values())
    await open_database(f"sqlite://{data_dir / 'archive.sqlite3'}")
    try:
        rows = await MediaItem.all().values_list("path", flat=True)
        assert len(rows) == len(set(rows)) == EXPECTED_FILES
        assert {str(Path(p).relative_to("downloads")) for p in rows} == set(on_disk)
    finally:
        await close_database()


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
def test_interrupted_download_resumes_after_restart(tmp_path, net, instagram, telegram, stop):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    data_dir = tmp_path / "data"
    instagram.media_delay = 0.0002  # ~0.6 s per image: the download is still running when stopped
    bot = start_bot(tmp_path, net, telegram, session)
    telegram.send_message(OWNER, "/download alice")
    wait_until(lambda: len(media_on_disk(data_dir)) >= 3, what="a few files")
    if stop == "kill -9":
        bot.kill()
    else:
        bot.signal(signal.SIGTERM)
        started = time.monotonic()
        assert bot.wait(timeout=20) == 0, bot.output
        assert time.monotonic() - started < 10  # pauses and saves within a few seconds
    assert 3 <= len(media_on_disk(data_dir)) < EXPECTED_FILES
    status = next(m for m in telegram.messages(OWNER) if "@alice · Instagram" in m.plain)
    status_id = status.message_id
    if stop == "SIGTERM":  # the owner saw the final state before the bot went away
        assert "Interrupted" in status.plain and "Resume" in str(status.reply_markup)

    instagram.media_delay = 0
    mark = len(telegram.calls)
    bot = start_bot(tmp_path, net, telegram, session)
    notice = telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30)
    assert notice.params["text"] == "1 download was interrupted by a restart — /resume"
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/resume")
    answer = telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30)
    assert answer.params["text"] == "Resuming."  # the only interrupted download: continued at once
    wait_until(lambda: "Completed:" in telegram.message(OWNER, status_id).plain, what="Completed")
    final = telegram.message(OWNER, status_id).plain
    # Files the killed bot wrote but could not record are found on disk (already archived).
    found = re.search(r"posts: (\d+) new(?: \((\d+) files\))?(?:, (\d+) already archived)?", final)
    assert found and int(found[2] or found[1]) + int(found[3] or 0) == 20, final
    assert "+ 8 stories/highlights" in final
    bot.signal(signal.SIGTERM)
    assert bot.wait() == 0
    asyncio.run(assert_archive_matches_disk(instagram, data_dir))


def test_auto_resume_setting_finishes_without_asking(tmp_path, net, instagram, telegram):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    data_dir = tmp_path / "data"
    instagram.media_delay = 0.0002
    bot = start_bot(tmp_path, net, telegram, session)
    telegram.send_message(OWNER, "/download alice")
    wait_until(lambda: len(media_on_disk(data_dir)) >= 2, what="a few files")
    bot.kill()
    instagram.media_delay = 0
    bot = start_bot(tmp_path, net, telegram, session, AUTO_RESUME="true")
    wait_until(lambda: last_text(telegram, "Completed:") is not None, what="Completed")
    bot.signal(signal.SIGTERM)
    assert bot.wait() == 0
    assert not [m for m in telegram.messages(OWNER) if "/resume" in m.plain]
    asyncio.run(assert_archive_matches_disk(instagram, data_dir))


async def test_pause_and_resume_tiktok_videos(net, data_dir):
    fake = FakeTikTok(net, page_size=3)
    account = fake.add_account("bob.dance", videos=8)
    fake.media_delay = 0.01
    # Fewer download slots (4) than listed videos, so the stop lands with some not yet started.
    services = await services_for(make_settings(data_dir, net=net, download_concurrency=4))
    try:
        from db import queries

        row = await queries.get_or_create_account("tiktok", "bob.dance")
        job = await services.service.create_job(row)

        def pause_once(event):
            if isinstance(event, ItemDone) and event.job_id == job.id:
                services.service.pause(job.id)
                unsubscribe()

        unsubscribe = services.service.subscribe(pause_once)
        first = await services.service.run(job)
        assert first.state == "paused" and 1 <= first.phases[0].downloaded < 8
        stored = await Job.get(id=job.id)
        assert stored.state == "paused" and stored.phase == "videos"
        fake.media_delay = 0
        done = await services.service.run(stored)
        assert done.state == "completed" and done.phases[0].downloaded == 8
        videos = data_dir / "downloads" / "tiktok" / "bob.dance" / "videos"
        sizes = sorted(p.stat().st_size for p in videos.glob("*.mp4"))
        assert sizes == sorted(post.size for post in account.videos)
        assert await MediaItem.filter(platform="tiktok").count() == 8
        again = await run_download(services, "tiktok", "bob.dance")
        assert again.new_items == 0
    finally:
        await services.close()
