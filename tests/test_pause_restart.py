"""After kill -9 or SIGTERM on a slow link, the restarted bot continues partial files with Range.

The real `bot.py` in a subprocess against the fake Telegram and the throttled fake CDN.
"""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import pytest

from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN
from tests.test_pause_now import SLOW, expected_contents, leftovers, partial_files, total_bytes
from tests.test_resume import start_bot, wait_until

STOP_TIMEOUT = 5  # seconds; what the README promises for saving jobs on SIGTERM with files in flight
EXIT_MARGIN = 5  # seconds for the rest of the shutdown (Telegram, database) on a loaded machine


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(
        make_profile("alice", 1001, posts=8, stories=0, highlights=(), image_size=300_000, video_size=500_000)
    )
    return fake


@pytest.fixture
def telegram():
    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
def test_partial_files_survive_a_restart_and_continue_with_range(tmp_path, net, instagram, telegram, stop):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    data_dir = tmp_path / "data"
    instagram.media_delay = SLOW
    bot = start_bot(tmp_path, net, telegram, session)
    telegram.send_message(OWNER, "/download alice")
    target = 0.25 * total_bytes(instagram)
    wait_until(lambda: instagram.cdn_bytes_sent >= target, what="a quarter of the bytes")
    if stop == "kill -9":
        bot.kill()
    else:
        bot.signal(signal.SIGTERM)
        started = time.monotonic()
        assert bot.wait(timeout=20) == 0, bot.output
        took = time.monotonic() - started
        # Waiting for the transfers instead would take minutes on this link (SLOW).
        assert took < STOP_TIMEOUT + EXIT_MARGIN, f"stopped after {took:.1f} s"
        wait_until(lambda: instagram.cdn_open == 0, timeout=2, what="transfers closed")
    partial = {name: size for name, size in partial_files(data_dir).items() if size > 0}
    assert partial, "some files were partly downloaded"
    assert instagram.range_requests() == []

    instagram.media_delay = 0
    mark = len(telegram.calls)
    bot = start_bot(tmp_path, net, telegram, session)
    telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30)  # "interrupted by a restart"
    assert partial_files(data_dir).keys() >= partial.keys()  # start-up kept them for the resume
    telegram.send_message(OWNER, "/resume")
    wait_until(lambda: any("Completed: 8 posts (12 files)" in m.plain for m in telegram.messages(OWNER)))
    bot.signal(signal.SIGTERM)
    assert bot.wait() == 0
    asked = sorted(int(v.removeprefix("bytes=").rstrip("-")) for _, v in instagram.range_requests())
    assert asked == sorted(partial.values())
    posts = data_dir / "downloads" / "instagram" / "alice" / "posts"
    media = [p for p in posts.iterdir() if not p.name.startswith(".") and not p.name.endswith(".json")]
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in media) == sorted(
        expected_contents(instagram)
    )
    assert leftovers(data_dir) == []


def test_start_up_removes_partial_files_no_download_will_continue(tmp_path, net, instagram, telegram):
    """Garbage (a temporary file of a finished account, a part without a record) goes at start."""
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    posts = tmp_path / "data" / "downloads" / "instagram" / "alice" / "posts"
    posts.mkdir(parents=True)
    for name in (".a.jpg.part", ".a.jpg.resume.part", ".b.mp4.1a2b3c4d.part"):
        (posts / name).write_bytes(b"x")
    bot = start_bot(tmp_path, net, telegram, session)
    bot.signal(signal.SIGTERM)
    assert bot.wait() == 0
    assert sorted(p.name for p in posts.iterdir()) == []
    assert Path(posts).is_dir()
