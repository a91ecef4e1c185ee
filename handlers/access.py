"""Access control: only ALLOWED_USER_IDS may use commands and buttons.

Strangers cost the owner nothing: updates are handled one at a time, so a
refusal awaited on the update path (behind the per-chat rate limiter) would
hold every later update, the owner's included. A stranger is told their id at
most once per hour, by a background task; their button presses are answered
with no text (the button stops spinning, nothing appears in any chat); and the
number of such tasks pending at once is bounded, so a flood is simply dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop

from handlers.context import Context

log = logging.getLogger(__name__)
REFUSAL_INTERVAL = 3600.0  # seconds between two refusals to the same stranger
MAX_PENDING = 20  # refusals and button answers in flight at once; more are dropped
MAX_REMEMBERED = 10_000  # strangers remembered; the oldest are forgotten first


def not_allowed_text(user_id: int) -> str:
    """What a stranger is told: their id and how the owner can allow it."""
    return (
        f"Sorry, you are not allowed to use this bot. Your Telegram user id is {user_id}. "
        f"If this is your bot, add {user_id} to ALLOWED_USER_IDS and restart it."
    )


class Refusals:
    """When each stranger was last told, and the refusal tasks in flight."""

    def __init__(
        self,
        interval: float = REFUSAL_INTERVAL,
        *,
        max_pending: int = MAX_PENDING,
        max_remembered: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._interval, self._max_pending, self._max_remembered = interval, max_pending, max_remembered
        self._clock = clock
        self._told: dict[int, float] = {}  # insertion order = oldest first
        self._pending = 0

    def due(self, user_id: int) -> bool:
        """True (and remembered) when ``user_id`` was not told within the interval."""
        now = self._clock()
        told = self._told.get(user_id)
        if told is not None and now - told < self._interval:
            return False
        self._told.pop(user_id, None)
        self._told[user_id] = now
        while len(self._told) > self._max_remembered:
            del self._told[next(iter(self._told))]
        return True

    def send(self, app: Application, call: Coroutine) -> bool:
        """Run ``call`` in the background unless too many are in flight; False when dropped."""
        if self._pending >= self._max_pending:
            call.close()
            return False
        self._pending += 1
        app.create_task(self._quietly(call), name="refusal")
        return True

    async def _quietly(self, call: Coroutine) -> None:
        """A stranger who blocked the bot is no error worth a traceback (or a 'sorry')."""
        try:
            await call
        except TelegramError as exc:
            log.info("could not answer a stranger: %s", exc)
        finally:
            self._pending -= 1


async def gatekeeper(update: Update, context: Context) -> None:
    """Runs before every other handler; stops updates from users who are not allowed."""
    user = update.effective_user
    if user is not None and user.id in context.bot_data.allowed_user_ids:
        _log_command(update, user.id)
        return
    user_id = user.id if user else 0
    refusals: Refusals = context.bot_data.extras.setdefault("refusals", Refusals())
    message = update.effective_message
    if update.callback_query is not None:
        # No text: a stranger's (or forged) button press gets no message, only an answer.
        refusals.send(context.application, update.callback_query.answer())
        log.debug("ignored a button from user %s", user_id)
    elif message is not None and _addressed_to_bot(update) and refusals.due(user_id):
        log.warning("refused user %s (told once; silent for an hour)", user_id)
        refusals.send(context.application, message.reply_text(not_allowed_text(user_id)))
    else:
        log.debug("ignored update %s from user %s", update.update_id, user_id)
    raise ApplicationHandlerStop


def _addressed_to_bot(update: Update) -> bool:
    """In groups only commands get an answer; the bot must not reply to every chat message."""
    if update.effective_chat is None:
        return False
    if update.effective_chat.type == "private":
        return True
    return (update.effective_message.text or "").startswith("/")


def _log_command(update: Update, user_id: int) -> None:
    """One log line per command or button handled (arguments included, never secrets)."""
    message = update.effective_message
    if update.callback_query is not None:
        log.info("button %s from user %s", (update.callback_query.data or "")[:64], user_id)
    elif message is not None and (message.text or "").startswith("/"):
        log.info("command %s from user %s", message.text[:120], user_id)
