"""/notify (per chat and account: media, summary or off, with buttons) and /latest."""

from __future__ import annotations

import logging
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from db import delivery_queries as dq
from db import queries
from db.models import Account
from downloader.errors import InvalidInput
from downloader.targets import PLATFORMS, Target, parse_target
from handlers.context import Context
from handlers.delivery.plan import units_of
from handlers.delivery.sender import Sender

log = logging.getLogger(__name__)
MODES = dq.MODES
NOTIFY_USAGE = (
    "Usage: /notify <user or profile URL> [instagram|tiktok] media|summary|off\n"
    "/notify alone lists this chat's settings."
)
LATEST_USAGE = "Usage: /latest <user or profile URL> [instagram|tiktok] [how many, 1-10]"
LATEST_DEFAULT, LATEST_MAX = 3, 10
PAGE = 8
DONE = {
    "media": "New files of {label} will be sent to this chat as they are archived.",
    "summary": "After each run that finds something new, this chat gets one line about {label}.",
    "off": "No more messages about {label} in this chat.",
}


def split_mode(args: list[str] | None) -> tuple[list[str], str | None]:
    """Take a media|summary|off word off the arguments (after the account): (rest, mode)."""
    words = list(args or [])
    found = [i for i, word in enumerate(words) if i > 0 and word.lower() in MODES]
    if len(found) != 1:
        return words, None
    mode = words.pop(found[0]).lower()
    return words, mode


async def apply_mode(chat_id: int, account: Account, mode: str | None) -> str:
    """Set a chat's mode for an account (from /add); the sentence to add to the reply, or ""."""
    if mode is None:
        return ""
    await dq.set_notify_mode(chat_id, account, mode)
    return " " + DONE[mode].format(label=_label(account))


def _label(account: Account) -> str:
    return Target(account.platform, account.username).label


async def _reply(update: Update, text: str, **kwargs) -> None:
    await update.effective_message.reply_text(text, **kwargs)


def _target(words: list[str], usage: str) -> Target:
    """`<user or URL> [platform]` -> Target, or InvalidInput with a reason and the usage."""
    if not words or len(words) > 2:
        raise InvalidInput(usage)
    if len(words) == 2 and words[1].lower() not in PLATFORMS:
        raise InvalidInput(f"Unknown option {words[1][:20]!r}: use media, summary or off.\n{usage}")
    try:
        return parse_target(words[0], words[1] if len(words) == 2 else None)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.sentence}\n{usage}") from None


async def _tracked(update: Update, target: Target) -> Account | None:
    """The tracked account, or None after saying how to track it."""
    account = await queries.find_account(target.platform, target.username)
    if account is None or not account.tracked:
        add = f"/add {target.username}" + (" tiktok" if target.platform == "tiktok" else "")
        text = f"{target.label} is not tracked: {add} media tracks it and sends its new files here."
        await _reply(update, text)
        return None
    return account


async def notify(update: Update, context: Context) -> None:
    """/notify [<user> [platform] media|summary|off]: how this chat hears about new content."""
    chat_id = update.effective_chat.id
    if not context.args:
        text, markup = await render_settings(chat_id, 0)
        await _reply(update, text, parse_mode=ParseMode.HTML, reply_markup=markup)
        return
    words, mode = split_mode(context.args)
    try:
        if words[0].lower() in MODES:  # "/notify media": which account?
            raise InvalidInput(NOTIFY_USAGE)
        target = _target(words, NOTIFY_USAGE)
    except InvalidInput as exc:
        await _reply(update, exc.sentence)
        return
    account = await _tracked(update, target)
    if account is None:
        return
    if mode is None:
        current = await dq.notify_mode(chat_id, account)
        rows = [_mode_buttons(account, current, 0)]
        await _reply(
            update, f"{target.label} in this chat: {current}.", reply_markup=InlineKeyboardMarkup(rows)
        )
        return
    changed = await dq.set_notify_mode(chat_id, account, mode)
    log.info("chat %s: %s notify %s", chat_id, target.label, mode)
    text = DONE[mode].format(label=target.label)
    await _reply(update, text if changed else f"Already so. {text}")


def _mode_buttons(account: Account, current: str, page: int) -> list[InlineKeyboardButton]:
    """media / summary / off for one account, the current one ticked."""
    buttons = []
    for mode in MODES:
        name = f"@{account.username} {mode}" if mode == "media" else mode
        text = ("✓ " if mode == current else "") + name
        buttons.append(InlineKeyboardButton(text, callback_data=f"notify:{account.id}:{mode}:{page}"))
    return buttons


async def render_settings(chat_id: int, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """This chat's settings for every tracked account, PAGE per page, with buttons."""
    accounts = await queries.tracked_accounts()
    if not accounts:
        return "No tracked accounts yet: /add &lt;user&gt; media to start.", None
    modes = await dq.chat_modes(chat_id)
    pages = (len(accounts) + PAGE - 1) // PAGE
    page = max(0, min(page, pages - 1))
    shown = accounts[page * PAGE : (page + 1) * PAGE]
    lines = [f"<b>New content in this chat</b> — page {page + 1}/{pages}"]
    lines += [f"• {escape(_label(a))}: {modes.get(a.id, 'off')}" for a in shown]
    lines.append("media: every new file; summary: one line per run; off: nothing.")
    rows = [_mode_buttons(a, modes.get(a.id, "off"), page) for a in shown]
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀ Previous", callback_data=f"notify:page:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton("Next ▶", callback_data=f"notify:page:{page + 1}"))
    if nav:
        rows.append(nav)
    return "\n".join(lines), InlineKeyboardMarkup(rows)


async def button(update: Update, context: Context) -> None:
    """Buttons of /notify: change one account's mode in this chat, or turn the page."""
    query = update.callback_query
    parts = (query.data or "").split(":")
    chat_id = update.effective_chat.id
    answer = ""
    if len(parts) == 3 and parts[1] == "page" and parts[2].isdigit():
        page = int(parts[2])
    elif len(parts) == 4 and parts[1].isdigit() and parts[2] in MODES and parts[3].isdigit():
        account = await Account.get_or_none(id=int(parts[1]))
        if account is None or not account.tracked:
            await query.answer("That account is not tracked any more.")
            return
        await dq.set_notify_mode(chat_id, account, parts[2])
        answer, page = DONE[parts[2]].format(label=_label(account)), int(parts[3])
    else:
        await query.answer("This button is not valid any more.")
        return
    text, markup = await render_settings(chat_id, page)
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:  # a double tap: the page already shows this
        if "not modified" not in exc.message.lower():
            raise
    await query.answer(answer[:200])


async def latest(update: Update, context: Context) -> None:
    """/latest <user> [n]: the n newest posts, stories or videos of an account, from the archive."""
    words = list(context.args or [])
    count = LATEST_DEFAULT
    if len(words) >= 2 and words[-1].isdigit():
        count = int(words.pop())
        if not 1 <= count <= LATEST_MAX:
            await _reply(update, f"Choose between 1 and {LATEST_MAX}, e.g. /latest {words[0][:30]} 3.")
            return
    try:
        if len(words) == 2 and words[1].lower() not in PLATFORMS:
            raise InvalidInput(f"{words[1][:20]!r} is not a number of items.\n{LATEST_USAGE}")
        target = _target(words, LATEST_USAGE)
    except InvalidInput as exc:
        await _reply(update, exc.sentence)
        return
    account = await queries.find_account(target.platform, target.username)
    items = await dq.latest_items(account, count) if account else []
    if not items:
        text = f"Nothing of {target.label} is in the archive yet: /download {target.username} first."
        await _reply(update, text)
        return
    sender: Sender = context.bot_data.delivery.sender
    chat_id, problems = update.effective_chat.id, []
    for unit in units_of(items):
        outcome = await sender.send_unit(chat_id, account.platform, account.username, unit, urgent=True)
        problems += [reason for _, reason in outcome.failed]
        if outcome.stop:
            log.warning("/latest in chat %s stopped: %s", chat_id, outcome.stop)
            return
    if problems:
        await _reply(update, f"{len(problems)} file(s) could not be sent ({problems[-1]}).")
