"""PTB's AIORateLimiter plus a per-chat limit, so busy chats are never flooded.

Telegram allows about one message per second in a private chat (short bursts
are tolerated) and 20 per minute in a group. AIORateLimiter covers the overall
and group limits only; without a per-chat limit, a burst of replies and status
edits in one private chat earns 429 answers.
"""

from __future__ import annotations

from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

# Methods that post or change something in a chat (answers to button presses do not count).
_CHAT_METHODS = {
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendPhoto",
    "sendVideo",
    "sendDocument",
    "sendMediaGroup",
    "sendAnimation",
    "sendAudio",
}


class ChatRateLimiter(AIORateLimiter):
    """AIORateLimiter with a leaky bucket per chat: ``burst`` messages, refilled at ``per_second``.

    Slightly under one per second: the server measures arrival times, which jitter.
    """

    def __init__(self, per_second: float = 0.9, burst: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        self._per_second = per_second
        self._burst = burst
        self._chats: dict[int, AsyncLimiter] = {}

    def _limiter(self, chat_id: int) -> AsyncLimiter:
        if chat_id not in self._chats:
            self._chats[chat_id] = AsyncLimiter(self._burst, self._burst / self._per_second)
        return self._chats[chat_id]

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        """Wait for the chat's bucket, then let AIORateLimiter apply its limits and retries."""
        chat_id = data.get("chat_id")
        if endpoint in _CHAT_METHODS and isinstance(chat_id, int) and chat_id > 0:
            async with self._limiter(chat_id):
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
