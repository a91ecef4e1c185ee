"""Tracked accounts: /add, /remove (confirmed with buttons), /list (paged)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from db import queries
from db.models import Account, MediaItem
from downloader.errors import DownloadError, InvalidInput
from downloader.paths import downloads_root, inside
from handlers.context import Context
from handlers.delivery.commands import apply_mode, split_mode
from handlers.downloads import parse_args, reply

log = logging.getLogger(__name__)
PAGE_SIZE = 10
WHAT = {
    "instagram": "posts, reels, stories and highlights",
    "tiktok": "videos",
}


async def add(update: Update, context: Context) -> None:
    """/add <user or URL> [platform]: confirm the account exists, then track it."""
    words, mode = split_mode(context.args)  # /add alice media: also how this chat hears of it
    try:
        target = parse_args(words, "add")
    except InvalidInput as exc:
        await reply(update, exc.sentence)
        return
    existing = await queries.find_account(target.platform, target.username)
    if existing is not None and existing.tracked:
        note = await apply_mode(update.effective_chat.id, existing, mode)
        await reply(update, f"{target.label} is already tracked.{note}")
        return
    try:
        info = await context.bot_data.service.lookup(target.platform, target.username)
    except DownloadError as exc:
        await reply(update, f"Could not add {target.label}: {exc.sentence}")
        return
    account = existing or await queries.get_or_create_account(
        target.platform, target.username, added_by=update.effective_user.id
    )
    account.tracked = True
    account.platform_user_id = info.user_id
    account.display_name = info.display_name or ""
    await account.save()
    name = f" ({escape(info.display_name)})" if info.display_name else ""
    private = " It is private: only what the bot's login can see will be saved." if info.is_private else ""
    note = escape(await apply_mode(update.effective_chat.id, account, mode))
    await reply(
        update,
        f"Now tracking <b>{escape(target.label)}</b>{name}: its {WHAT[target.platform]} will be "
        f"downloaded by /syncall and the scheduled sync.{private}{note}",
        parse_mode=ParseMode.HTML,
    )


async def remove(update: Update, context: Context) -> None:
    """/remove <user>: ask for confirmation with buttons."""
    try:
        target = parse_args(context.args, "remove")
    except InvalidInput as exc:
        await reply(update, exc.sentence)
        return
    account = await queries.find_account(target.platform, target.username)
    if account is None or not account.tracked:
        await reply(update, f"{target.label} is not tracked.")
        return
    rows = [
        [InlineKeyboardButton("Stop tracking (keep files)", callback_data=f"acct:untrack:{account.id}")],
        [InlineKeyboardButton("Remove files too", callback_data=f"acct:purge:{account.id}")],
        [InlineKeyboardButton("Keep tracking", callback_data=f"acct:keep:{account.id}")],
    ]
    await reply(update, f"Stop tracking {target.label}?", reply_markup=InlineKeyboardMarkup(rows))


async def list_accounts(update: Update, context: Context) -> None:
    """/list: tracked accounts, 10 per page."""
    if context.args:
        await reply(update, "Usage: /list (no arguments)")
        return
    text, markup = await render_page(0)
    await reply(update, text, parse_mode=ParseMode.HTML, reply_markup=markup)


async def render_page(page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """One page of the account list with Previous/Next buttons."""
    accounts = await queries.tracked_accounts()
    if not accounts:
        return "No tracked accounts yet: /add &lt;user&gt; to start.", None
    pages = (len(accounts) + PAGE_SIZE - 1) // PAGE_SIZE
    page = max(0, min(page, pages - 1))
    lines = [f"<b>Tracked accounts</b> ({len(accounts)}) — page {page + 1}/{pages}"]
    for account in accounts[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]:
        lines.append(await _account_line(account))
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀ Previous", callback_data=f"list:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton("Next ▶", callback_data=f"list:{page + 1}"))
    return "\n".join(lines), InlineKeyboardMarkup([nav]) if nav else None


async def _account_line(account: Account) -> str:
    counts = await queries.media_counts(account)
    summary = ", ".join(f"{n} {kind}s" for kind, n in sorted(counts.items())) or "nothing yet"
    synced = f"{account.last_sync_at:%Y-%m-%d %H:%M}" if account.last_sync_at else "never"
    platform = "IG" if account.platform == "instagram" else "TT"
    line = f"• {platform} <b>@{escape(account.username)}</b> — synced {synced}; {summary}"
    if account.last_error:
        line += f"\n   ⚠️ {escape(account.last_error[:200])}"
    return line


async def button(update: Update, context: Context) -> None:
    """Buttons of /remove and /list."""
    query = update.callback_query
    parts = (query.data or "").split(":")
    if len(parts) == 2 and parts[0] == "list" and parts[1].isdigit():
        text, markup = await render_page(int(parts[1]))
        try:
            await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
        except BadRequest as exc:  # a double tap: the page is already shown
            if "not modified" not in exc.message.lower():
                raise
        await query.answer()
        return
    if len(parts) != 3 or parts[1] not in ("untrack", "purge", "keep") or not parts[2].isdigit():
        await query.answer("This button is not valid any more.")
        return
    account = await Account.get_or_none(id=int(parts[2]))
    if account is None or not account.tracked:
        await query.answer("That account is not tracked any more.")
        return
    text = await _removal(context, account, parts[1])
    await query.edit_message_text(text)
    await query.answer()


async def _removal(context: Context, account: Account, action: str) -> str:
    """Carry out a /remove choice; return what to show."""
    label = f"@{account.username}"
    if action == "keep":
        return f"{label} stays tracked."
    if action == "purge" and await queries.active_job_for(account) is not None:
        return f"{label} is downloading right now: /cancel it first, then remove its files."
    account.tracked = False
    await account.save(update_fields=["tracked", "updated_at"])
    if action == "untrack":
        return f"Stopped tracking {label}; its files are kept."
    data_dir = context.bot_data.service.data_dir
    folder = inside(downloads_root(data_dir), account.platform, account.username)
    await asyncio.to_thread(shutil.rmtree, folder, True)
    await MediaItem.filter(account=account).delete()
    log.info("removed %s %s and its files", account.platform, account.username)
    return f"Stopped tracking {label} and removed its files."
