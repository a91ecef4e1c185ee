"""Access control: only ALLOWED_USER_IDS may use commands and buttons."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from handlers.context import Context

log = logging.getLogger(__name__)


def not_allowed_text(user_id: int) -> str:
    """What a stranger is told: their id and how the owner can allow it."""
    return (
        f"Sorry, you are not allowed to use this bot. Your Telegram user id is {user_id}. "
        f"If this is your bot, add {user_id} to ALLOWED_USER_IDS and restart it."
    )


async def gatekeeper(update: Update, context: Context) -> None:
    """Runs before every other handler; stops updates from users who are not allowed."""
    user = update.effective_user
    if user is not None and user.id in context.bot_data.allowed_user_ids:
        _log_command(update, user.id)
        return
    user_id = user.id if user else 0
    log.warning("refused update %s from user %s", update.update_id, user_id)
    message = update.effective_message
    if update.callback_query is not None:
        await update.callback_query.answer(not_allowed_text(user_id), show_alert=True)
    elif message is not None and _addressed_to_bot(update):
        await message.reply_text(not_allowed_text(user_id))
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
