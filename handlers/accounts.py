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
from downloader.gone import state_words
from downloader.paths import downloads_root, inside
from downloader.targets import PHASES
from handlers.arguments import parse_args, parse_request
from handlers.context import Context
from handlers.delivery.commands import apply_mode, split_mode
from handlers.downloads import reply
from handlers.status_view import plural

log = logging.getLogger(__name__)
PAGE_SIZE = 10
KIND_NOUNS = {"highlight": "highlight item"}  # archive kinds as /list names them
WHAT = {
    "instagram": "posts, reels, stories and highlights",
    "tiktok": "videos and photo posts",
}


async def add(update: Update, context: Context) -> None:
    """/add <user or URL> [platform] [phases] [media|summary|off]: confirm the account exists, track it."""
    words, mode = split_mode(context.args)  # /add alice media: also how this chat hears of it
    try:
        request = parse_request(words, "add", many=True)
    except InvalidInput as exc:
        await reply(update, exc.sentence)
        return
    target = request.target
    existing = await queries.find_account(target.platform, target.username)
    if existing is not None and existing.tracked:
        note = await apply_mode(update.effective_chat.id, existing, mode)
        if request.phases is None:
            await reply(update, f"{target.label} is already tracked.{note}")
            return
        await set_phases(existing, request.phases)
        await reply(
            update, f"{target.label} is already tracked; it now syncs {_phase_words(existing)}.{note}"
        )
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
    account.phases = _stored(target.platform, request.phases)
    await account.save()
    name = f" ({escape(info.display_name)})" if info.display_name else ""
    private = " It is private: only what the bot's login can see will be saved." if info.is_private else ""
    what = _phase_words(account) if account.phases else WHAT[target.platform]
    note = escape(await apply_mode(update.effective_chat.id, account, mode))
    await reply(
        update,
        f"Now tracking <b>{escape(target.label)}</b>{name}: its {what} will be "
        f"downloaded by /syncall and the scheduled sync.{private}{note}",
        parse_mode=ParseMode.HTML,
    )


def _stored(platform: str, phases: tuple[str, ...] | None) -> list[str]:
    """What Account.phases holds: [] for all of the platform's phases."""
    return [] if not phases or tuple(phases) == PHASES[platform] else list(phases)


def account_phases(account: Account) -> tuple[str, ...]:
    """The phases /syncall and the schedules run for an account."""
    own = PHASES[account.platform]
    return tuple(p for p in own if p in (account.phases or own))


async def set_phases(account: Account, phases: tuple[str, ...]) -> None:
    """Store the owner's choice of phases for an account."""
    account.phases = _stored(account.platform, phases)
    await account.save(update_fields=["phases", "updated_at"])


def _phase_words(account: Account) -> str:
    """ "posts, stories and highlights", "stories and highlights", "posts"."""
    phases = account_phases(account)
    return phases[0] if len(phases) == 1 else f"{', '.join(phases[:-1])} and {phases[-1]}"


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
    total = await queries.tracked_count()
    if not total:
        return "No tracked accounts yet: /add &lt;user&gt; to start.", None
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    page = max(0, min(page, pages - 1))
    shown = await queries.tracked_page(page, PAGE_SIZE)
    ids = [a.id for a in shown]
    counts = await queries.media_counts_of(ids)  # grouped queries, one per page
    lines = [f"<b>Tracked accounts</b> ({total}) — page {page + 1}/{pages}"]
    lines += [_account_line(a, counts.get(a.id, {})) for a in shown]
    choose = [
        InlineKeyboardButton(f"⚙️ @{a.username}", callback_data=f"acct:phases:{a.id}:{page}")
        for a in shown
        if len(PHASES[a.platform]) > 1
    ]
    rows = [choose[i : i + 2] for i in range(0, len(choose), 2)]
    nav = []
    if page > 0:
        nav.append(InlineKeyboardButton("◀ Previous", callback_data=f"list:{page - 1}"))
    if page < pages - 1:
        nav.append(InlineKeyboardButton("Next ▶", callback_data=f"list:{page + 1}"))
    if choose:
        lines.append("\n⚙️ buttons: choose what an Instagram account syncs.")
    rows += [nav] if nav else []
    return "\n".join(lines), InlineKeyboardMarkup(rows) if rows else None


def _account_line(account: Account, counts: dict[str, tuple[int, int]]) -> str:
    summary = _archived(counts) or "nothing yet"
    synced = f"{account.last_sync_at:%Y-%m-%d %H:%M}" if account.last_sync_at else "never"
    platform = "IG" if account.platform == "instagram" else "TT"
    line = f"• {platform} <b>@{escape(account.username)}</b> — synced {synced}; {summary}"
    if len(PHASES[account.platform]) > 1:
        line += f"\n   syncs {_phase_words(account)}"
    gone = state_words(account)
    if gone:  # its last error is the same news: say it once
        line += f"\n   🚫 {escape(gone)}; the archive keeps its files"
    elif account.last_error:
        line += f"\n   ⚠️ {escape(account.last_error[:200])}"
    return line


def _archived(counts: dict[str, tuple[int, int]]) -> str:
    """ "30 posts (44 files), 2 stories, 6 highlight items" or "4 videos, 1 photo post (3 images)":
    posts (reels among them) counted as the status message counts them, a carousel once; a
    TikTok photo post's slides and sound as one post."""
    counts = dict(counts)
    reels = counts.pop("reel", (0, 0))
    posts = tuple(a + b for a, b in zip(counts.pop("post", (0, 0)), reels, strict=True))
    photos = counts.pop("photo", (0, 0))
    counts.pop("audio", None)  # a photo post's sound belongs to it
    parts = []
    if posts[1]:
        parts.append(_posts(*posts))
    order = {kind: index for index, kind in enumerate(("story", "highlight", "video"))}
    for kind, (_, files) in sorted(counts.items(), key=lambda pair: (order.get(pair[0], 9), pair[0])):
        parts.append(plural(files, KIND_NOUNS.get(kind, kind)))
    if photos[1]:
        parts.append(f"{plural(photos[0], 'photo post')} ({plural(photos[1], 'image')})")
    return ", ".join(parts)


def _posts(units: int, files: int) -> str:
    return plural(units, "post") if units == files else f"{plural(units, 'post')} ({plural(files, 'file')})"


async def button(update: Update, context: Context) -> None:
    """Buttons of /remove and /list (pages, and the phases an account syncs)."""
    query = update.callback_query
    parts = (query.data or "").split(":")
    if len(parts) == 2 and parts[0] == "list" and parts[1].isdigit():
        await _show(query, *await render_page(int(parts[1])))
        await query.answer()
        return
    if parts[:2] in (["acct", "phases"], ["acct", "toggle"]):
        await _phase_button(query, parts)
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


async def _show(query, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the list message in place; a double tap (same content) is not an error."""
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


async def _phase_button(query, parts: list[str]) -> None:
    """acct:phases:<id>:<page> opens the chooser; acct:toggle:<id>:<phase>:<page> flips one phase."""
    toggle = parts[1] == "toggle"
    valid = len(parts) == (5 if toggle else 4) and parts[2].isdigit() and parts[-1].isdigit()
    account = await Account.get_or_none(id=int(parts[2])) if valid else None
    if account is None or not account.tracked or len(PHASES[account.platform]) < 2:
        await query.answer("That account is not tracked any more." if valid else "This button is not valid.")
        return
    answer = None
    if toggle:
        phase = parts[3]
        current = account_phases(account)
        if phase not in PHASES[account.platform]:
            await query.answer("This button is not valid.")
            return
        chosen = tuple(p for p in current if p != phase) if phase in current else (*current, phase)
        if not chosen:
            await query.answer("At least one phase stays on; /remove stops tracking.", show_alert=True)
            return
        await set_phases(account, chosen)
        answer = f"@{account.username} now syncs {_phase_words(account)}."
    await _show(query, *phase_chooser(account, int(parts[-1])))
    await query.answer(answer)


def phase_chooser(account: Account, page: int) -> tuple[str, InlineKeyboardMarkup]:
    """The message that lets the owner switch an account's phases on and off."""
    chosen = account_phases(account)
    rows = [
        [
            InlineKeyboardButton(
                f"{'✅' if phase in chosen else '▫️'} {phase}",
                callback_data=f"acct:toggle:{account.id}:{phase}:{page}",
            )
        ]
        for phase in PHASES[account.platform]
    ]
    rows.append([InlineKeyboardButton("◀ Back to the list", callback_data=f"list:{page}")])
    text = (
        f"<b>@{escape(account.username)}</b>: /syncall and the scheduled syncs download its "
        f"{_phase_words(account)}. Tap a phase to switch it on or off "
        f"(/download @{escape(account.username)} still gets everything)."
    )
    return text, InlineKeyboardMarkup(rows)


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
