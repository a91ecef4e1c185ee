"""/start and /help."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from handlers.commands import help_text
from handlers.context import Context

WELCOME = (
    "Hi! I keep an archive of the Instagram and TikTok accounts you track: posts, reels, "
    "stories, highlights and videos, saved on this server.\n\n"
    "Try <code>/download natgeo</code> or <code>/add natgeo</code>, then /syncall. "
    "Everything I can do: /help"
)


async def start(update: Update, context: Context) -> None:
    """Greet the owner and point at /help."""
    await update.effective_message.reply_text(WELCOME, parse_mode=ParseMode.HTML)


async def help_command(update: Update, context: Context) -> None:
    """List every command with one line each."""
    await update.effective_message.reply_text(help_text(), parse_mode=ParseMode.HTML)
