"""A chat-level test world: strict fake Telegram, fake Instagram and TikTok, the real bot."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tests.fakes.instagram import FakeInstagram
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER


@dataclass
class World:
    """Everything a chat test talks to."""

    telegram: FakeTelegram
    instagram: FakeInstagram
    tiktok: FakeTikTok
    app: object

    def say(self, text: str, user: int = OWNER) -> int:
        """Send a message as ``user``; returns a mark for waiting on what follows."""
        mark = len(self.telegram.calls)
        self.telegram.send_message(user, text)
        return mark

    async def reply(self, text: str, user: int = OWNER) -> str:
        """Send ``text``; return the bot's next message to that chat as the user reads it."""
        mark = self.say(text, user)
        call = await self.telegram.await_for("sendMessage", chat_id=user, after=mark, timeout=20)
        return self.telegram.message(user, call.result["message_id"]).plain

    def bot_messages(self, chat: int = OWNER) -> list:
        """The bot's messages in a chat, as they stand now."""
        return self.telegram.messages(chat)

    async def message_with(self, needle: str, chat: int = OWNER, timeout: float = 60):
        """Wait until one of the bot's messages contains ``needle``; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.bot_messages(chat):
                if needle in (message.plain or message.text or ""):
                    return message
            await asyncio.sleep(0.05)
        texts = [m.plain for m in self.bot_messages(chat)]
        raise AssertionError(f"no message with {needle!r} in chat {chat}: {texts}")

    def buttons(self, message) -> dict[str, str]:
        """Button text -> callback data of a message's inline keyboard."""
        rows = (message.reply_markup or {}).get("inline_keyboard", [])
        return {b["text"]: b["callback_data"] for row in rows for b in row}

    async def press(self, message, label: str, user: int = OWNER) -> str:
        """Press the button whose text contains ``label``; return the callback answer text."""
        current = self.telegram.message(message.chat_id, message.message_id)
        data = next(d for text, d in self.buttons(current).items() if label in text)
        return await self.press_data(message, data, user)

    async def press_data(self, message, data: str, user: int = OWNER) -> str:
        """Press a button with this callback data (also a stale or forged one)."""
        mark = len(self.telegram.calls)
        self.telegram.press_button(user, message.message_id, data, chat_id=message.chat_id)
        answer = await self.telegram.await_for("answerCallbackQuery", after=mark, timeout=20)
        return answer.params.get("text", "")
