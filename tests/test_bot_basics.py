"""The foundation through the real PTB stack and a strict fake Telegram."""

from __future__ import annotations

import pytest

from handlers.commands import COMMANDS
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, STRANGER, TOKEN, make_settings, running_bot


@pytest.fixture
def telegram():
    with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(telegram, data_dir, net):
    settings = make_settings(data_dir, net=net, telegram=telegram)
    async with running_bot(settings) as app:
        yield app


async def test_start_help_and_command_menu(bot, telegram):
    menu = [c["command"] for c in telegram.commands]
    assert menu == [name for name, _, _ in COMMANDS]
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/start")
    reply = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    assert "/help" in reply.params["text"]
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/help")
    reply = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    for name, _, _ in COMMANDS:
        assert f"/{name}" in reply.params["text"]


async def test_stranger_gets_their_id_and_nothing_else(bot, telegram, data_dir):
    mark = len(telegram.calls)
    telegram.send_message(STRANGER, "/download alice")
    reply = await telegram.await_for("sendMessage", chat_id=STRANGER, after=mark)
    assert str(STRANGER) in reply.params["text"] and "not allowed" in reply.params["text"]
    telegram.send_message(OWNER, "/help")  # a marker: the stranger's update is fully handled
    await telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    sent = [c for c in telegram.calls[mark:] if c.method == "sendMessage"]
    assert len(sent) == 2  # one refusal, one /help; no download started
    assert not (data_dir / "downloads").exists()


async def test_stranger_button_press_is_refused(bot, telegram):
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/help")
    message = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    telegram.press_button(STRANGER, message.result["message_id"], "job:cancel:1", chat_id=OWNER)
    answer = await telegram.await_for("answerCallbackQuery", after=mark)
    assert str(STRANGER) in answer.params["text"]
    assert not [c for c in telegram.calls[mark:] if c.method == "editMessageText"]


async def test_unknown_button_is_answered(bot, telegram):
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/help")
    message = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    telegram.press_button(OWNER, message.result["message_id"], "job:explode:../../1", chat_id=OWNER)
    answer = await telegram.await_for("answerCallbackQuery", after=mark)
    assert "not valid" in answer.params["text"]
