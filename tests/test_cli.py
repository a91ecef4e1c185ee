"""`python bot.py download ...` as a user runs it, against the fake Instagram and TikTok."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.tiktok import FakeTikTok
from tests.harness import BOT, process_env


def download(tmp_path: Path, net, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the download sub-command with settings pointing at the fakes."""
    clean = process_env(tmp_path / "data", net)
    return subprocess.run(
        [sys.executable, str(BOT), "download", *args],
        cwd=tmp_path,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=14))
    return fake


def test_anonymous_download_completes_with_skipped_phases(tmp_path, net, instagram):
    done = download(tmp_path, net, "https://www.instagram.com/alice/?hl=en")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "Completed: 14 posts (20 files) + 0 stories/highlights"
    assert "stories skipped: Instagram login required" in done.stderr
    assert "Traceback" not in done.stderr
    posts = tmp_path / "data" / "downloads" / "instagram" / "alice" / "posts"
    assert len([p for p in posts.iterdir() if p.suffix != ".json"]) == 20
    again = download(tmp_path, net, "alice")
    assert again.stdout.strip().splitlines()[-1] == "Completed: 0 posts + 0 stories/highlights"


def test_logged_in_download_gets_all_phases(tmp_path, net, instagram):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    done = download(tmp_path, net, "@alice", INSTAGRAM_SESSION_FILE=str(session))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "Completed: 14 posts (20 files) + 8 stories/highlights"
    assert instagram.login().sessionid not in done.stderr + done.stdout


def test_tiktok_url_downloads_videos(tmp_path, net):
    FakeTikTok(net, page_size=3).add_account("bob.dance", videos=4)
    done = download(tmp_path, net, "https://www.tiktok.com/@bob.dance")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "Completed: 4 videos"


def test_missing_account_exits_non_zero_with_the_sentence(tmp_path, net, instagram):
    done = download(tmp_path, net, "nobody_here")
    assert done.returncode == 1
    assert "does not exist" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("bad", ["../../etc", "alice;id", "https://evil.example/alice", "a" * 40])
def test_bad_name_makes_no_request_and_writes_nothing(tmp_path, net, instagram, bad):
    done = download(tmp_path, net, bad)
    assert done.returncode == 2
    assert done.stderr.strip() and "Traceback" not in done.stderr
    assert net.count() == 0 and net.connects == []
    assert not (tmp_path / "data").exists()


def test_platform_flag_checks_the_name(tmp_path, net):
    done = download(tmp_path, net, "x", "--platform", "tiktok")  # TikTok names have 2+ characters
    assert done.returncode == 2 and "not a valid tiktok name" in done.stderr
    assert net.count() == 0
