"""Logging the bot in to Instagram from chat: /login explains, a sent file switches the login."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from tortoise.exceptions import BaseORMException

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
    """A file in a private chat: try it as the Instagram login (size checked before any download).

    The message holding the file is deleted whatever the outcome (where Telegram allows):
    a refused or failed file may hold secrets too."""
    message = update.effective_message
    reply = "I could not use that file; nothing changed."
    try:
        reply = await _use_document(message, context)
    except (OSError, BaseORMException) as exc:  # disk or database: say so, the bot goes on
        log.warning("could not store a login file sent in chat: %s", type(exc).__name__)
        reply = "I could not store that login on the server (see the log); please send it again later."
    finally:
        note = await _delete(message)
    await message.reply_text(reply + note)


async def _use_document(message: Message, context: Context) -> str:
    """Fetch, check and switch to the login file; the sentence to answer with."""
    size = message.document.file_size or 0
    if size > MAX_SIZE:
        return too_large_sentence(size)
    try:
        telegram_file = await message.document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        log.warning("could not fetch a login file: %s", exc)
        return "I could not fetch that file from Telegram; please send it again."
    try:
        username = await context.bot_data.logins.use_file(data)
    except BadLoginFile as exc:
        return exc.sentence
    except DownloadError as exc:
        return f"That login did not work: {exc.sentence} I keep using the current login."
    return (
        f"Logged in to Instagram as @{username}: downloads use this login from now on, also after a restart."
    )


async def document_in_group(update: Update, context: Context) -> None:
    """A login file sent in a group: never downloaded; deleted where the bot may, and the sender
    is told to send it in a private chat (everyone in the group could read it)."""
    message = update.effective_message
    if not looks_like_login_file(message.document.file_name):
        return  # the group's own files are none of the bot's business
    note = await _delete(message)
    await message.reply_text(f"Send login files to me in a private chat only, never in a group.{note}")


def looks_like_login_file(name: str | None) -> bool:
    """cookies.txt exports and instaloader session files, by the names they are written with."""
    name = (name or "").lower()
    return "cookie" in name or "instagram" in name or name.startswith("session")


async def _delete(message: Message) -> str:
    """Delete the owner's message holding the file; say whether that worked."""
    try:
        await message.delete()
    except TelegramError as exc:  # too old, not an admin in a group, network trouble
        log.info("could not delete the message holding a login file: %s", exc)
        return " I could not delete your message holding the file: please delete it yourself."
    return " I deleted your message holding the file from this chat."
