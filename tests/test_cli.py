"""`python bot.py download ...` as a user runs it, against the fake Instagram and TikTok."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.outage import free_port
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


def request_counts(data_dir: Path) -> int:
    """Instagram requests stored in the archive's database (every session, every kind)."""
    with sqlite3.connect(data_dir / "archive.sqlite3") as db:
        return db.execute("SELECT COALESCE(SUM(count), 0) FROM request_counts").fetchone()[0]


def test_without_network_it_gives_up_after_wait_minutes_with_one_line_per_retry(tmp_path, net, instagram):
    started = time.monotonic()
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: no network at all
    done = download(tmp_path, net, "alice", "--wait", "0.1", HTTPS_PROXY=nowhere, https_proxy=nowhere)
    took = time.monotonic() - started
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert took < 45  # 6 s of waiting, not the bot's 23 minutes
    retries = [line for line in done.stderr.splitlines() if "trying again" in line]
    assert retries == ["Network trouble reaching Instagram for @alice; trying again in 6 s."]
    assert not [line for line in done.stderr.splitlines() if "waits" in line or "Transient" in line]
    assert done.stderr.strip().splitlines()[-1] == (
        "Gave up after waiting 0.1 minutes; run it again later, or wait longer with --wait MINUTES."
    )
    assert done.stdout.strip().splitlines()[-1].startswith("Interrupted: ")
    assert "Network trouble reaching Instagram for @alice" in done.stdout
    # No connection reached Instagram: none is a request of the budget.
    assert "Instagram requests (no login): 0 last hour, 0 last 24 h" in done.stderr
    assert request_counts(tmp_path / "data") == 0
    assert net.count() == 0

    again = download(tmp_path, net, "alice")  # the network is back: the next run completes
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "Completed: 14 posts (20 files) + 0 stories/highlights"
    assert request_counts(tmp_path / "data") == instagram.api_count() > 0


def test_a_proxy_refusing_instagram_costs_a_logged_in_session_no_request(tmp_path, net, instagram):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    net.remove_host("www.instagram.com")  # the proxy refuses the tunnel, as a filtered network would
    done = download(tmp_path, net, "alice", "--wait", "0", INSTAGRAM_SESSION_FILE=str(session))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Network trouble reaching Instagram for @alice" in done.stdout
    assert "trying again" not in done.stderr  # --wait 0: gives up at the first trouble
    assert net.connects.count("www.instagram.com:443") == 3  # instaloader tried three times
    assert "Instagram requests (session archivebot): 0 last hour, 0 last 24 h" in done.stderr
    assert request_counts(tmp_path / "data") == 0 and instagram.api_count() == 0


@pytest.mark.parametrize("bad", ["-1", "soon", "100000"])
def test_a_bad_wait_is_one_sentence_and_no_request(tmp_path, net, instagram, bad):
    done = download(tmp_path, net, "alice", "--wait", bad)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--wait: " in done.stderr and "is not a number of minutes from 0 to 1440" in done.stderr
    assert net.count() == 0 and not (tmp_path / "data").exists()
