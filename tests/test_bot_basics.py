"""The foundation through the real PTB stack and a strict fake Telegram."""

from __future__ import annotations

import pytest

from handlers.commands import COMMANDS
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN, make_settings, running_bot


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


async def test_unknown_button_is_answered(bot, telegram):
    mark = len(telegram.calls)
    telegram.send_message(OWNER, "/help")
    message = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    telegram.press_button(OWNER, message.result["message_id"], "job:explode:../../1", chat_id=OWNER)
    answer = await telegram.await_for("answerCallbackQuery", after=mark)
    assert "not valid" in answer.params["text"]
