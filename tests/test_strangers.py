"""Strangers cost the owner nothing: one refusal per hour, no chat messages for buttons, no stall."""

from __future__ import annotations

import time

import pytest

from handlers.access import Refusals
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, STRANGER, TOKEN, make_settings, running_bot

GROUP = -100123


@pytest.fixture
def telegram():
    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(telegram, data_dir):
    async with running_bot(make_settings(data_dir, telegram=telegram)) as app:
        yield app


async def _owner_help(telegram: FakeTelegram) -> float:
    """Send /help as the owner; return the seconds until the answer reached Telegram."""
    mark = len(telegram.calls)
    sent = time.time()
    telegram.send_message(OWNER, "/help")
    reply = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
    assert "/download" in reply.params["text"]
    return reply.time - sent


def _sent(telegram: FakeTelegram, after: int, method: str = "sendMessage", chat_id: int | None = None):
    return [
        call
        for call in telegram.calls[after:]
        if call.method == method and (chat_id is None or call.params.get("chat_id") == chat_id)
    ]


async def test_a_stranger_is_told_their_id_once(bot, telegram, data_dir):
    mark = len(telegram.calls)
    telegram.send_message(STRANGER, "/download alice")
    reply = await telegram.await_for("sendMessage", chat_id=STRANGER, after=mark)
    assert str(STRANGER) in reply.params["text"] and "ALLOWED_USER_IDS" in reply.params["text"]
    telegram.send_message(STRANGER, "/start")
    telegram.send_message(STRANGER, "hello?")
    await _owner_help(telegram)  # a marker: the stranger's updates are handled by now
    assert len(_sent(telegram, mark, chat_id=STRANGER)) == 1  # silent for the rest of the hour
    assert not (data_dir / "downloads").exists()


async def test_two_hundred_messages_from_a_stranger_do_not_delay_the_owner(bot, telegram):
    mark = len(telegram.calls)
    for index in range(200):
        telegram.send_message(STRANGER, f"/download spam{index}")
    waited = await _owner_help(telegram)
    assert waited < 2.0, f"the owner waited {waited:.2f} s behind a stranger's flood"
    await _owner_help(telegram)  # every flood update has been handled by now
    assert len(_sent(telegram, mark, chat_id=STRANGER)) == 1
    assert telegram.rate_limited == 0  # no 429 from the strict fake


async def test_a_stranger_pressing_buttons_gets_no_message(bot, telegram):
    mark = len(telegram.calls)
    await _owner_help(telegram)
    help_message = _sent(telegram, mark, chat_id=OWNER)[0].result["message_id"]
    mark = len(telegram.calls)
    for data in ("job:cancel:1", "acct:remove:1", "forged:../../x"):
        telegram.press_button(STRANGER, help_message, data, chat_id=OWNER)
    answers, after = [], mark
    for _ in range(3):
        answers.append(await telegram.await_for("answerCallbackQuery", after=after, timeout=20))
        after = telegram.calls.index(answers[-1]) + 1
    assert all("text" not in answer.params for answer in answers)  # answered, silently
    assert all(not answer.params.get("show_alert") for answer in answers)
    await _owner_help(telegram)
    quiet = ("getUpdates", "answerCallbackQuery")
    methods = [c.method for c in telegram.calls[mark:] if c.method not in quiet]
    assert methods == ["sendMessage"]  # only the owner's /help answer: no message, no edit, anywhere


async def test_a_button_flood_does_not_delay_the_owner(bot, telegram):
    mark = len(telegram.calls)
    await _owner_help(telegram)
    help_message = _sent(telegram, mark, chat_id=OWNER)[0].result["message_id"]
    mark = len(telegram.calls)
    for _ in range(200):
        telegram.press_button(STRANGER, help_message, "job:cancel:1", chat_id=OWNER)
    waited = await _owner_help(telegram)
    assert waited < 2.0, f"the owner waited {waited:.2f} s behind a stranger's button flood"
    assert telegram.rate_limited == 0
    assert not _sent(telegram, mark, "editMessageText") and len(_sent(telegram, mark)) == 1


async def test_in_a_group_only_a_strangers_command_is_answered(bot, telegram):
    mark = len(telegram.calls)
    telegram.send_message(STRANGER, "nice pictures", chat_id=GROUP, chat_type="group")
    telegram.send_message(STRANGER, "/list", chat_id=GROUP, chat_type="group")
    reply = await telegram.await_for("sendMessage", chat_id=GROUP, after=mark)
    assert str(STRANGER) in reply.params["text"]
    telegram.send_message(STRANGER, "/status", chat_id=GROUP, chat_type="group")
    await _owner_help(telegram)
    assert len(_sent(telegram, mark, chat_id=GROUP)) == 1


def test_refusals_once_per_interval_and_bounded_memory():
    now = [0.0]
    refusals = Refusals(interval=3600, max_remembered=3, clock=lambda: now[0])
    assert refusals.due(1) and not refusals.due(1)
    now[0] = 3599
    assert not refusals.due(1)
    now[0] = 3600
    assert refusals.due(1) and not refusals.due(1)  # an hour later: told again, once
    for user in (2, 3, 4):  # remembering a fourth stranger forgets the oldest (1)
        assert refusals.due(user)
    assert refusals.due(1) and not refusals.due(4)
