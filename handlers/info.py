"""/info <user>: an account's current profile and what changed on it over time."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.constants import ParseMode

from db import queries
from db.models import Account, AccountRename, ProfileChange
from downloader.errors import InvalidInput
from downloader.gone import state_words
from downloader.profiles import change_lines
from handlers.arguments import parse_args
from handlers.context import Context
from handlers.downloads import reply

MAX_CHANGES = 15  # newest changes shown; the database keeps them all


async def info(update: Update, context: Context) -> None:
    """/info <user or URL> [platform]: the profile as last seen, former names, changes with dates."""
    try:
        target = parse_args(context.args, "info")
    except InvalidInput as exc:
        await reply(update, exc.sentence)
        return
    account = await queries.find_account(target.platform, target.username)
    if account is None:
        await reply(update, f"{target.label} is not in the archive: /download or /add it first.")
        return
    await reply(update, await render_info(account), parse_mode=ParseMode.HTML)


async def render_info(account: Account) -> str:
    """The /info message of one account (HTML)."""
    rows = await ProfileChange.filter(account=account).order_by("id")
    latest = {row.field: row for row in rows}
    name = f" ({escape(account.display_name)})" if account.display_name else ""
    lines = [f"<b>@{escape(account.username)}</b>{name} — {account.platform.title()}"]
    gone = state_words(account)
    if gone:
        lines.append(f"🚫 {escape(gone)} — the archive keeps its files")
    if not rows:
        lines.append("No profile recorded yet: the next sync with posts records it.")
    facts = []
    if "is_private" in latest:
        facts.append("private" if latest["is_private"].value == "yes" else "public")
    for field, noun in (("followers", "followers"), ("posts", "posts")):
        if field in latest:
            facts.append(f"{latest[field].value} {noun}")
    if facts:
        lines.append(" · ".join(facts))
    if latest.get("biography") and latest["biography"].value:
        lines.append(f"Biography: {escape(latest['biography'].value)}")
    if latest.get("external_url") and latest["external_url"].value:
        lines.append(f"Link: {escape(latest['external_url'].value)}")
    pictures = [row for row in rows if row.field == "picture"]
    if pictures:
        lines.append(f"Profile pictures kept: {len(pictures)} (newest from {pictures[-1].seen_at:%Y-%m-%d})")
    renames = await AccountRename.filter(account=account, state="done").order_by("id")
    if renames:
        former = ", ".join(f"@{escape(r.old_username)} (until {r.finished_at:%Y-%m-%d})" for r in renames)
        lines.append(f"Former names: {former}")
    changes = change_lines(rows) + [
        f"renamed from @{r.old_username} on {r.finished_at:%Y-%m-%d}" for r in renames
    ]
    if changes:
        lines.append("<b>Changes</b>")
        lines += [f"• {escape(line)}" for line in changes[-MAX_CHANGES:]]
    return "\n".join(lines)
