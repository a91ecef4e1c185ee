"""The real `python bot.py` when Telegram's side misbehaves: a second bot with the same token
(409 Conflict), and an error page that names the Bot API URL (issue 20, item 8)."""

from __future__ import annotations

import itertools
import signal
import time

from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN
from tests.process import BotProcess, bot_env

CONFLICT_LINE = "another bot process is receiving this bot's messages"


def _env(tmp_path, telegram: FakeTelegram) -> dict[str, str]:
    return bot_env(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url, ALLOWED_USER_IDS=str(OWNER)
    )


def _help_answered(telegram: FakeTelegram) -> str:
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/help")
    return telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30).params["text"]


def _conflicts(telegram: FakeTelegram, after: int) -> list[float]:
    return [c.time for c in telegram.calls[after:] if c.method == "getUpdates" and c.status == 409]


def _wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_bot_with_the_same_token_is_one_sentence_and_polls_back_off(tmp_path):
    with FakeTelegram(TOKEN) as telegram:
        bot = BotProcess(tmp_path, _env(tmp_path, telegram))
        try:
            telegram.wait_for("setMyCommands", timeout=30)
            assert "/download" in _help_answered(telegram)
            mark = len(telegram.calls)
            telegram.conflict = True  # another process now polls with the same token
            _wait_until(lambda: len(_conflicts(telegram, mark)) >= 4)
            bot.wait_for_output(CONFLICT_LINE)
            times = _conflicts(telegram, mark)
            telegram.conflict = False  # the other one stopped
            bot.wait_for_output("no other bot process polls with this token any more")
            assert "/download" in _help_answered(telegram)  # messages arrive again
            bot.signal(signal.SIGTERM)
        finally:
            code = bot.wait(timeout=30)
    output = bot.output
    assert code == 0, output
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[-1] > gaps[0] and gaps[-1] >= 2.0, gaps  # it backs off, never a tight loop
    assert "Traceback" not in output and output.count(CONFLICT_LINE) == 1, output
    assert "stop it, only one process may use a bot token" in output
    assert TOKEN.split(":")[1] not in output


def test_the_token_is_redacted_from_tracebacks_too(tmp_path):
    """A proxy's error page names the request URL; PTB's exception quotes the page."""
    with FakeTelegram(TOKEN) as telegram:
        bot = BotProcess(tmp_path, _env(tmp_path, telegram))
        try:
            telegram.wait_for("setMyCommands", timeout=30)
            telegram.proxy_errors["sendMessage"] = 403  # Forbidden: not network trouble, a traceback
            telegram.send_message(OWNER, "/help")
            bot.wait_for_output("could not tell the user about the error")
            bot.signal(signal.SIGTERM)
        finally:
            code = bot.wait(timeout=30)
    output = bot.output
    assert code == 0, output
    assert "error while handling an update" in output and "Traceback" in output  # the traceback stays
    assert "Parsing the server response" in output and "/bot[redacted]/sendMessage" in output
    assert TOKEN not in output and TOKEN.split(":")[1] not in output
