"""Versions and upgrades: --version, /status, and a database newer than the code refused at start."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from db import applied_migrations, close_database, known_migrations, open_database, tortoise_config
from tests.conftest import pg_skip_reason
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN
from tests.postgres import own_database
from tests.process import BOT, BotProcess, bot_env
from version import VERSION

ROOT = Path(__file__).resolve().parent.parent
FUTURE = "0099_from_a_newer_version"
REFUSAL = (
    f"The database was upgraded by a newer version of the bot (its migration {FUTURE} is unknown to "
    "this one): run the newer version again, or restore a backup made with this one."
)


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BOT), *args],
        cwd=tmp_path,
        env=bot_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_is_printed_and_matches_the_project():
    done = subprocess.run([sys.executable, str(BOT), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"archive-bot {VERSION}\n"
    assert re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1] == VERSION


def test_status_ends_with_the_version(tmp_path):
    with FakeTelegram(TOKEN) as telegram:
        env = bot_env(
            tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url, ALLOWED_USER_IDS=str(OWNER)
        )
        bot = BotProcess(tmp_path, env)
        try:
            telegram.wait_for("setMyCommands", timeout=60)
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/status")
            text = telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30).params["text"]
            bot.signal(signal.SIGTERM)
        finally:
            assert bot.wait(timeout=60) == 0
    assert text.splitlines()[-1] == f"archive-bot {VERSION}"


async def add_future_migration(url: str) -> list[str]:
    """A database as a newer version leaves it: one migration more than this code knows."""
    await open_database(url)
    await close_database()
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.split("://", 1)[1])) as conn:
            conn.execute(
                "INSERT INTO tortoise_migrations (app, name, applied_at) VALUES ('archive', ?, '2030-01-01')",
                (FUTURE,),
            )
            conn.commit()
    else:
        subprocess.run(
            ["psql", url, "-q", "-c", f"INSERT INTO tortoise_migrations (app, name, applied_at) "
             f"VALUES ('archive', '{FUTURE}', now())"],
            check=True, capture_output=True,
        )  # fmt: skip
    return await applied_migrations(tortoise_config(url))


async def refused_everywhere(tmp_path: Path, url: str) -> None:
    before = await add_future_migration(url)
    assert before == sorted([*known_migrations(), FUTURE])
    with FakeTelegram(TOKEN) as telegram:
        for args in ([], ["download", "alice"]):
            done = run(
                tmp_path, *args, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url, DATABASE_URL=url
            )
            assert done.returncode == 2, done.stderr
            assert done.stderr.strip().splitlines() == [REFUSAL], args
    assert await applied_migrations(tortoise_config(url)) == before  # nothing was run on it


async def test_a_database_newer_than_the_code_is_refused_sqlite(tmp_path):
    await refused_everywhere(tmp_path, f"sqlite://{tmp_path / 'archive.sqlite3'}")


async def test_a_database_newer_than_the_code_is_refused_postgres(tmp_path):
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    async with own_database() as url:
        await refused_everywhere(tmp_path, url)
