"""The real `python bot.py` in a subprocess: start, answer, SIGTERM, clean exit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.outage import Relay
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN
from tests.process import BOT, BotProcess, answer_then_stop, bot_env

RETRY_LINE = "Telegram is not reachable"


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
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "Telegram rejected TELEGRAM_BOT_TOKEN: copy the token again from @BotFather "
        "(it looks like 123456789:AA...), and check TELEGRAM_API_URL if you set it."
    ]
    assert telegram.calls and {call.method for call in telegram.calls} == {"getMe"}
    assert len(telegram.calls) == 1  # rejected once is final: no retries


def test_wrong_api_url_path_is_a_rejected_token(tmp_path):
    """Telegram answers 404 for a token it does not know; so does a wrong path."""
    with FakeTelegram(TOKEN) as telegram:
        done = run(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url + "/nothing-here")
    assert done.returncode == 2 and "Telegram rejected TELEGRAM_BOT_TOKEN" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _owner_env(tmp_path: Path, api_url: str) -> dict[str, str]:
    return bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api_url, ALLOWED_USER_IDS=str(OWNER))


def _help_answered(telegram: FakeTelegram) -> str:
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/help")
    return telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30).params["text"]


def test_started_before_telegram_it_waits_then_works(tmp_path):
    """The port refuses at first (network not up yet); the bot retries and then answers."""
    with FakeTelegram(TOKEN) as telegram, Relay(int(telegram.url.rsplit(":", 1)[1])) as relay:
        bot = BotProcess(tmp_path, _owner_env(tmp_path, relay.url))
        try:
            bot.wait_for_output(RETRY_LINE, count=2, timeout=30)  # attempts at 0 s and 5 s
            assert telegram.calls == [] and relay.connections == 0
            relay.up()
            telegram.wait_for("setMyCommands", timeout=30)  # third attempt, 10 s later
            assert "/download" in _help_answered(telegram)
            bot.signal(signal.SIGTERM)
        finally:
            code = bot.wait(timeout=30)
    output = bot.output
    assert code == 0, output
    assert "Traceback" not in output and TOKEN.split(":")[1] not in output
    retries = [line for line in output.splitlines() if RETRY_LINE in line]
    assert len(retries) == 2  # one line per failed attempt, each naming the next try
    assert "attempt 1 failed, next try at" in retries[0] and "(in 5 s)" in retries[0]
    assert "attempt 2 failed" in retries[1] and "(in 10 s)" in retries[1]
    assert "Telegram answered on attempt 3" in output
    assert [c.method for c in telegram.calls].count("getMe") == 1  # initialized once, not twice


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_waiting_for_telegram_exits_cleanly(tmp_path, stop):
    with Relay(1) as relay:  # never up: the port refuses
        bot = BotProcess(tmp_path, _owner_env(tmp_path, relay.url))
        try:
            bot.wait_for_output(RETRY_LINE, timeout=30)
            bot.signal(stop)
        finally:
            code = bot.wait(timeout=15)
    assert code == 0, bot.output
    assert "Traceback" not in bot.output and "stopped while waiting for Telegram" in bot.output


def test_polling_survives_a_network_loss(tmp_path):
    """Telegram goes away while the bot runs and comes back: no traceback, it answers again."""
    with FakeTelegram(TOKEN) as telegram, Relay(int(telegram.url.rsplit(":", 1)[1])) as relay:
        relay.up()
        bot = BotProcess(tmp_path, _owner_env(tmp_path, relay.url))
        try:
            telegram.wait_for("setMyCommands", timeout=30)
            assert "/download" in _help_answered(telegram)
            relay.down()
            bot.wait_for_output("lost the connection to Telegram", timeout=30)
            relay.up()
            bot.wait_for_output("Telegram answers again", timeout=60)
            assert "/download" in _help_answered(telegram)
            bot.signal(signal.SIGTERM)
        finally:
            code = bot.wait(timeout=30)
    output = bot.output
    assert code == 0, output
    assert "Traceback" not in output and output.count("lost the connection to Telegram") == 1
    assert len(output.splitlines()) < 30, output  # a few lines, not a flood


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
