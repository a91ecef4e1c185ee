"""The one error handler: log the error, tell the user one plain sentence."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Conflict, NetworkError, RetryAfter, TimedOut

from db.patience import connection_lost
from handlers.connection import PollingWatch
from handlers.context import Context

log = logging.getLogger(__name__)
SORRY = "Sorry, something went wrong on my side. It is logged; please try again."
NO_DATABASE = "The database is not reachable right now; please try again in a minute."
NETWORK_ERRORS = (NetworkError, TimedOut, RetryAfter)


async def on_error(update: object, context: Context) -> None:
    """Log with the traceback; answer the user without one."""
    error = context.error
    if isinstance(error, NETWORK_ERRORS):
        _network_trouble(update, context)
        return
    if isinstance(error, Conflict) and _polling_failed(update, context):
        return
    lost = connection_lost(error)
    if lost:  # the outage itself is logged once (db/patience.py), not a traceback per update
        log.info("an update found the database unreachable: %s", error)
    else:
        log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, NO_DATABASE if lost else SORRY)
        except Exception:  # the chat may be gone; the log has the story
            log.warning("could not tell the user about the error")


def _network_trouble(update: object, context: Context) -> None:
    """A failed poll goes to the polling watch (a few lines per outage); others, one line each."""
    if not _polling_failed(update, context):
        log.warning("Telegram network trouble: %s", context.error)


def _polling_failed(update: object, context: Context) -> bool:
    """Hand a failed poll (no update, no job) to the polling watch; False for other errors."""
    watch: PollingWatch | None = context.bot_data.extras.get("polling_watch")
    if update is None and context.job is None and watch is not None:
        watch.failed(context.error)
        return True
    return False
