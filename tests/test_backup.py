"""`bot.py backup` while the bot runs, then `bot.py restore` after the database was lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.fakes.instagram import FakeInstagram, make_profile, write_cookies_txt
from tests.fakes.telegram import FakeTelegram
from tests.harness import BOT, OWNER, TOKEN, process_env
from tests.postgres import create_test_database, drop_test_database, postgres_unavailable
from tests.process import BotProcess


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """None (SQLite in DATA_DIR) or a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        yield None
        return
    reason = asyncio.run(postgres_unavailable())
    if reason:
        pytest.skip(reason)
    url = asyncio.run(create_test_database())
    yield url
    asyncio.run(drop_test_database(url))


class Setup:
    """One user's install: DATA_DIR, the fakes, and how to run `bot.py` commands there."""

    def __init__(self, tmp_path: Path, net, telegram: FakeTelegram, database_url: str | None):
        self.tmp_path, self.data = tmp_path, tmp_path / "data"
        self.telegram = telegram
        extra = {"DATABASE_URL": database_url} if database_url else {}
        self.env = process_env(
            self.data, net, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url,
            ALLOWED_USER_IDS=str(OWNER), **extra,
        )  # fmt: skip

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(BOT), *args],
            cwd=self.tmp_path,
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, name: str) -> BotProcess:
        mark = len(self.telegram.calls)
        bot = BotProcess(self.tmp_path, self.env, name=name)
        self.telegram.wait_for("setMyCommands", after=mark, timeout=60)
        return bot

    def reply(self, text: str) -> str:
        mark = len(self.telegram.calls)
        self.telegram.send_message(OWNER, text)
        return self.telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30).params["text"]

    def send_login(self, data: bytes) -> str:
        mark = len(self.telegram.calls)
        self.telegram.send_document(OWNER, "cookies.txt", data)
        return self.telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30).params["text"]


def stop(bot: BotProcess) -> None:
    bot.signal(signal.SIGTERM)
    assert bot.wait(timeout=60) == 0, bot.output[-2000:]


def wipe(setup: Setup, database_url: str | None) -> None:
    """The database and the login files are lost; the media stay on their disk."""
    if database_url is None:
        for path in setup.data.glob("archive.sqlite3*"):
            path.unlink()
    else:
        subprocess.run(
            ["psql", database_url, "-q", "-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"],
            check=True,
            capture_output=True,
        )
    for path in (setup.data / "sessions").iterdir():
        path.unlink()
    (setup.data / "sessions").rmdir()


def media_files(data: Path) -> dict[str, int]:
    return {
        str(p.relative_to(data)): p.stat().st_ino
        for p in (data / "downloads").rglob("*")
        if p.is_file() and p.suffix != ".json"
    }


def test_backup_while_running_then_restore_loses_nothing(tmp_path, net, database_url):
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=6, stories=2, highlights=("Trips",)))
    cookies = write_cookies_txt(tmp_path / "cookies.txt", instagram.login("newbot", 555)).read_bytes()
    with FakeTelegram(TOKEN) as telegram:
        setup = Setup(tmp_path, net, telegram, database_url)
        bot = setup.start("bot-1")
        try:
            assert setup.send_login(cookies).startswith("Logged in to Instagram as @newbot")
            assert setup.reply("/add alice").startswith("Now tracking <b>@alice</b>")
            archived = setup.run("download", "alice")  # the terminal archives while the bot runs
            assert archived.returncode == 0, archived.stderr
            # logged in (the chat login): stories and the highlight too
            assert archived.stdout.strip() == "Completed: 6 posts (8 files) + 4 stories/highlights"
            listed = setup.reply("/list")
            backup = setup.run("backup", str(tmp_path / "backup"))  # the bot is running
            assert backup.returncode == 0, backup.stderr
            assert backup.stdout.startswith(f"Backup written to {tmp_path / 'backup'}: ")
        finally:
            stop(bot)
        files = media_files(setup.data)
        manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
        assert manifest["version"] == setup.run("--version").stdout.split()[-1]
        [login] = [name for name in manifest["files"] if name.startswith("sessions/")]
        assert manifest["files"][login]["mode"] == "0o600" and "archive-id" in manifest["files"]
        assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == sorted(
            ["archive-id", "manifest.json", "sessions"]
            + (["database.sqlite3"] if database_url is None else ["database.pgdump"])
        )
        assert stat.S_IMODE((tmp_path / "backup" / login).stat().st_mode) == 0o600

        wipe(setup, database_url)
        restored = setup.run("restore", str(tmp_path / "backup"))
        assert restored.returncode == 0, restored.stderr
        assert restored.stdout.startswith("Restored the backup of ")
        assert stat.S_IMODE((setup.data / login).stat().st_mode) == 0o600
        assert stat.S_IMODE((setup.data / "sessions").stat().st_mode) == 0o700

        bot = setup.start("bot-2")
        try:
            assert setup.reply("/list") == listed
            running = setup.run("restore", "--force", str(tmp_path / "backup"))  # not under a running bot
            assert running.returncode == 1
            assert running.stderr.strip() == (
                f"The bot (pid {bot.process.pid} on {socket.gethostname()}) is using the database: stop it "
                "and every other bot and worker first; nothing was restored."
            )
        finally:
            stop(bot)
        before = instagram.cdn_count()
        again = setup.run("download", "alice")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1] == "Completed: 0 posts + 0 stories/highlights"
        assert "skipped" not in again.stderr  # still logged in: the login file came back
        assert instagram.cdn_count() == before  # not one file fetched again
        assert media_files(setup.data) == files  # the same files, hard links of highlights too

        # A second restore would replace a database that has accounts: refused, nothing changes.
        refused = setup.run("restore", str(tmp_path / "backup"))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert refused.stderr.strip().splitlines() == [
            "The database already holds 1 tracked account(s) and 12 archived file(s); "
            "nothing was restored. To replace it, stop the bot and its workers, then run restore "
            "again with --force."
        ]
        assert media_files(setup.data) == files and setup.run("download", "alice").returncode == 0
        assert instagram.cdn_count() == before


def run_bot(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`bot.py ARGS` with DATA_DIR in ``tmp_path`` and no network needed."""
    ours = ("TELEGRAM_", "INSTAGRAM_", "DATABASE_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return subprocess.run(
        [sys.executable, str(BOT), *args],
        cwd=tmp_path,
        env=clean | {"DATA_DIR": str(tmp_path / "data")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def made_backup(tmp_path: Path) -> Path:
    """A backup of an SQLite archive with empty tables of accounts and archived files."""
    data = tmp_path / "data"
    data.mkdir()
    with closing(sqlite3.connect(data / "archive.sqlite3")) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
        conn.execute("CREATE TABLE media_items (id INTEGER)")
        conn.commit()
    done = run_bot(tmp_path, "backup", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    return tmp_path / "backup"


def test_without_pg_dump_the_backup_prints_the_command_without_the_password(tmp_path):
    (tmp_path / "data" / "sessions").mkdir(parents=True)
    (tmp_path / "data" / "sessions" / "login.txt").write_text("cookies")
    done = run_bot(
        tmp_path,
        "backup",
        str(tmp_path / "backup"),
        DATABASE_URL="postgres://archive:s3cret-pw@db.example:5433/archive",
        PATH=str(tmp_path / "empty-path"),
    )
    assert done.returncode == 1 and "s3cret-pw" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines() == [
        "pg_dump is not installed (Debian: apt install postgresql-client), so the backup has no database; "
        "run this to add it (password from DATABASE_URL in PGPASSWORD): pg_dump -h db.example -p 5433 "
        f"-U archive --format=custom --no-owner -f {tmp_path}/backup/database.pgdump archive"
    ]
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["database"]["file"] is None and list(manifest["files"]) == ["sessions/login.txt"]


def test_a_backup_never_goes_into_a_folder_that_holds_something(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "mine.txt").write_text("keep")
    done = run_bot(tmp_path, "backup", str(tmp_path / "backup"))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{tmp_path}/backup already exists and is not an empty folder; choose a new one."
    )
    assert [p.name for p in (tmp_path / "backup").iterdir()] == ["mine.txt"]


def test_a_damaged_backup_restores_nothing(tmp_path):
    backup = made_backup(tmp_path)
    (tmp_path / "data" / "archive.sqlite3").unlink()
    with open(backup / "database.sqlite3", "r+b") as file:  # one flipped byte on the backup disk
        file.seek(200)
        byte = file.read(1)
        file.seek(200)
        file.write(bytes([byte[0] ^ 1]))
    done = run_bot(tmp_path, "restore", str(backup))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"The backup in {backup} is damaged: database.sqlite3 is missing or changed; nothing was restored."
    )
    assert not (tmp_path / "data" / "archive.sqlite3").exists()
    assert run_bot(tmp_path, "restore", str(tmp_path)).stderr.strip() == (
        f"{tmp_path} is not a backup of this bot: it has no manifest.json."
    )


def test_an_sqlite_backup_is_not_restored_into_postgresql(tmp_path):
    backup = made_backup(tmp_path)
    done = run_bot(tmp_path, "restore", str(backup), DATABASE_URL="postgres://archive@127.0.0.1:1/archive")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "This backup holds a sqlite database but DATABASE_URL is postgres; nothing was restored."
    )
