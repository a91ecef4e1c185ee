"""The real `python bot.py` in a subprocess: start, answer, SIGTERM, clean exit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN
from tests.process import BOT, answer_then_stop, bot_env


def run(tmp_path: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BOT), *args],
        cwd=tmp_path,
        env=bot_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_missing_token_is_one_clear_sentence(tmp_path):
    done = run(tmp_path)
    assert done.returncode != 0
    assert "TELEGRAM_BOT_TOKEN" in done.stderr and "@BotFather" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_rejected_token_is_explained(tmp_path):
    with FakeTelegram(TOKEN) as telegram:
        done = run(
            tmp_path,
            TELEGRAM_BOT_TOKEN="999:WRONG-TOKEN-abcdefghijklmnopqrstu",
            TELEGRAM_API_URL=telegram.url,
        )
    assert done.returncode != 0
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr and "WRONG-TOKEN" not in done.stderr


def test_help_lists_sub_commands(tmp_path):
    done = run(tmp_path, "--help")
    assert done.returncode == 0 and "download" in done.stdout and "run" in done.stdout


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_runs_answers_and_stops_cleanly(tmp_path, stop):
    with FakeTelegram(TOKEN) as telegram:
        env = bot_env(
            tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url, ALLOWED_USER_IDS=str(OWNER)
        )
        reply, code, output = answer_then_stop(tmp_path, env, telegram, "/start", stop)
    assert "/help" in reply
    assert code == 0, output
    assert TOKEN not in output and TOKEN.split(":")[1] not in output
    assert "Traceback" not in output
    assert (tmp_path / "data" / "archive.sqlite3").exists()
