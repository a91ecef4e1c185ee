"""Logging the bot in to Instagram from chat: /login explains, a sent file switches the login."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from downloader.errors import DownloadError
from downloader.login_file import MAX_SIZE, BadLoginFile, too_large_sentence
from handlers.context import Context

log = logging.getLogger(__name__)
LOGIN_HELP = (
    "<b>Log the bot in to Instagram</b> (use a separate account: the one logged in is at stake).\n"
    "Send me one of these files here, as a file (📎 → File):\n"
    "1. <b>cookies.txt</b>: in a browser logged in to instagram.com, export the cookies in "
    "Netscape format (for example with a “cookies.txt” browser add-on).\n"
    "2. <b>A session file</b>: on a computer run <code>instaloader --login YOURBOTACCOUNT</code>; "
    "it writes <code>session-YOURBOTACCOUNT</code> (in ~/.config/instaloader/).\n"
    "I check it with one request to Instagram, keep it on the server (readable by the bot only), "
    "delete your message holding it, and use it from then on, also after a restart. "
    "If it does not work, the current login stays."
)


async def login_command(update: Update, context: Context) -> None:
    """/login: the two ways to give the bot an Instagram login."""
    await update.effective_message.reply_text(LOGIN_HELP, parse_mode=ParseMode.HTML)


async def document(update: Update, context: Context) -> None:
    """A file in a private chat: try it as the Instagram login (size checked before any download)."""
    message = update.effective_message
    size = message.document.file_size or 0
    if size > MAX_SIZE:
        await message.reply_text(too_large_sentence(size))
        return
    try:
        telegram_file = await message.document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("could not fetch a login file: %s", exc)
        await message.reply_text("I could not fetch that file from Telegram; please send it again.")
        return
    try:
        username = await context.bot_data.logins.use_file(data)
    except BadLoginFile as exc:
        note = await _delete(message) if exc.held_cookies else ""
        await message.reply_text(exc.sentence + note)
        return
    except DownloadError as exc:
        note = await _delete(message)
        await message.reply_text(
            f"That login did not work: {exc.sentence} I keep using the current login.{note}"
        )
        return
    note = await _delete(message)
    await message.reply_text(
        f"Logged in to Instagram as @{username}: downloads use this login from now on, "
        f"also after a restart.{note}"
    )


async def _delete(message: Message) -> str:
    """Delete the owner's message holding cookies; say whether that worked."""
    try:
        await message.delete()
    except (BadRequest, Forbidden) as exc:
        log.info("could not delete the message holding a login file: %s", exc)
        return " I could not delete your message holding the file: please delete it yourself."
    return " I deleted your message holding the file from this chat."
