"""/start, /help, and the answer to a command the bot does not have."""

from __future__ import annotations

import difflib

from telegram import Update
from telegram.constants import ParseMode

from handlers.commands import COMMANDS, help_text
from handlers.context import Context

KNOWN = [name for name, _, _ in COMMANDS] + ["start"]

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


async def unknown_command(update: Update, context: Context) -> None:
    """A /command no other handler took (registered last): one sentence pointing at /help.

    Only allowed users get here (access control runs first); a command addressed to another
    bot in a group (/cmd@other_bot) is none of this bot's business."""
    message = update.effective_message
    entity = message.entities[0]  # filters.COMMAND: a bot_command at offset 0
    name, _, addressee = message.text[1 : entity.length].partition("@")
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return
    await message.reply_text(unknown_text(name))


def unknown_text(name: str) -> str:
    """ "Unknown command /downlaod. Did you mean /download? Send /help for the list." """
    close = difflib.get_close_matches(name.lower(), KNOWN, n=1, cutoff=0.6)
    hint = f" Did you mean /{close[0]}?" if close else ""
    return f"Unknown command /{name[:32]}.{hint} Send /help for the list."
