"""`bot.py doctor` as a user runs it: one table, a fix for each problem, exit 0 only when all works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from db import close_database, open_database
from tests.conftest import pg_skip_reason
from tests.fakes.instagram import HASH_TEST_LOGIN, FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.harness import BOT, TOKEN, process_env
from tests.postgres import PG_URL, with_database


def doctor(
    tmp_path: Path, net, telegram: FakeTelegram, prefix: tuple[str, ...] = (), **env: str
) -> tuple[int, dict[str, tuple[str, str]]]:
    """Run `bot.py doctor` (after ``prefix``); its exit code and its rows by name: (state, detail)."""
    settings = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": telegram.url} | env
    done = subprocess.run(
        [*prefix, sys.executable, str(BOT), "doctor"],
        cwd=tmp_path,
        env=process_env(tmp_path / "data", net, **settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr and TOKEN not in done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split() == ["check", "result"]
    rows = {}
    for line in lines[1 : lines.index("")]:
        name, state, detail = (part.strip() for part in (line[:20], line[22:26], line[28:]))
        rows[name] = (state, detail)
    assert lines[-1] == ("Everything the bot needs works." if done.returncode == 0 else lines[-1])
    return done.returncode, rows


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=3))
    return fake


@pytest.fixture
async def archive(tmp_path):
    """An SQLite archive this version has migrated."""
    (tmp_path / "data").mkdir()
    await open_database(f"sqlite://{tmp_path / 'data' / 'archive.sqlite3'}")
    await close_database()
    return tmp_path / "data"


async def test_everything_works(tmp_path, net, instagram, archive):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        code, rows = doctor(tmp_path, net, telegram, INSTAGRAM_SESSION_FILE=str(session))
    assert code == 0, rows
    assert rows["Telegram"] == ("ok", f"the token is valid: @archive_test_bot at {telegram.url}")
    assert rows["Database"][0] == "ok" and "reachable and up to date" in rows["Database"][1]
    assert rows["DATA_DIR"][0] == "ok" and rows["Archive folder"][0] == "ok"
    assert rows["Instagram login"] == (
        "ok",
        "logged in as @archivebot (INSTAGRAM_SESSION_FILE; checked with one request to Instagram)",
    )
    assert instagram.calls() == [f"GET /graphql/query {HASH_TEST_LOGIN}"]  # that one request
    assert rows["TikTok impersonation"][0] == "ok" and rows["instaloader"][0] == rows["yt-dlp"][0] == "ok"
    assert [call.method for call in telegram.calls] == ["getMe"]


async def test_a_token_telegram_refuses(tmp_path, net, instagram, archive):
    with FakeTelegram("999:ANOTHER-TOKEN") as telegram:  # answers 401 to ours
        code, rows = doctor(tmp_path, net, telegram)
    assert code == 1
    assert rows["Telegram"] == (
        "FAIL",
        "Telegram rejected TELEGRAM_BOT_TOKEN: copy the token again from @BotFather "
        "(it looks like 123456789:AA...), and check TELEGRAM_API_URL if you set it.",
    )
    assert rows["Instagram login"][0] == "warn"  # no login is not a failure: public posts work


async def test_an_expired_instagram_session(tmp_path, net, instagram, archive):
    session = instagram.login()
    path = write_session_file(tmp_path / "session-archivebot", session)
    instagram.expire_session(session)
    with FakeTelegram(TOKEN) as telegram:
        code, rows = doctor(tmp_path, net, telegram, INSTAGRAM_SESSION_FILE=str(path))
    assert code == 1
    state, detail = rows["Instagram login"]
    assert state == "FAIL" and detail.startswith("The Instagram session")
    assert detail.endswith("(checked INSTAGRAM_SESSION_FILE with one request to Instagram)")
    assert instagram.calls() == [f"GET /graphql/query {HASH_TEST_LOGIN}"]


async def test_a_missing_database(tmp_path, net, instagram):
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    with FakeTelegram(TOKEN) as telegram:
        code, rows = doctor(tmp_path, net, telegram, DATABASE_URL=with_database(PG_URL, "archive_no_such_db"))
        assert code == 1
        state, detail = rows["Database"]
        assert state == "FAIL" and "does not exist" in detail and "createdb" in detail
        assert rows["Archive folder"][0] == "warn"
        # An SQLite file not made yet is made at the first start: a warning, not a failure.
        code, rows = doctor(tmp_path, net, telegram)
    assert code == 0, rows
    assert rows["Database"] == (
        "warn",
        f"no database at {tmp_path}/data/archive.sqlite3 yet: the bot creates it.",
    )
    assert not (tmp_path / "data" / "archive.sqlite3").exists()  # the doctor only looks


def test_a_full_disk(tmp_path, net, instagram):
    """DATA_DIR on a 1 MB tmpfs, mounted in a namespace of the doctor's own (no root needed)."""
    data = tmp_path / "data"
    data.mkdir()
    mount = ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size=1m tmpfs "{data}" && exec "$0" "$@"']
    if subprocess.run([*mount, "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs in a user namespace here (unshare -rm)")
    with FakeTelegram(TOKEN) as telegram:
        code, rows = doctor(tmp_path, net, telegram, prefix=tuple(mount))
    assert code == 1
    assert rows["DATA_DIR"] == (
        "FAIL",
        f"{data}: 1 MB free; free space there or move DATA_DIR to a bigger disk.",
    )
    assert rows["Telegram"][0] == "ok"
