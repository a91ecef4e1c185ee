"""The one error handler: log the error, tell the user one plain sentence."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import NetworkError, RetryAfter, TimedOut

from handlers.context import Context

log = logging.getLogger(__name__)
SORRY = "Sorry, something went wrong on my side. It is logged; please try again."


async def on_error(update: object, context: Context) -> None:
    """Log with the traceback; answer the user without one."""
    error = context.error
    if isinstance(error, (NetworkError, TimedOut, RetryAfter)):
        log.warning("Telegram network trouble: %s", error)
        return
    log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, SORRY)
        except Exception:  # the chat may be gone; the log has the story
            log.warning("could not tell the user about the error")
