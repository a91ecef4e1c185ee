"""What vanished or changed on an account since a chat last heard: told once in its notify line.

Posts deleted (media_items.deleted_at), highlights removed, the account gone, a new name,
a new profile picture. Each chat's "told up to" moment is kept in the settings table and
moved before the line is sent: a restart never repeats a change (at most once, as the
rest of delivery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from db import queries
from db.models import (
    Account,
    AccountRename,
    Highlight,
    HighlightItem,
    MediaItem,
    NotifySetting,
    ProfileChange,
    Setting,
)
from downloader.words import site_name

GONE_WORDS = {"deleted": "deleted on {site}", "banned": "banned on {site}", "private": "went private"}


@dataclass
class News:
    """The changes of one account a chat has not heard of yet."""

    parts: list[str] = field(default_factory=list)
    picture: str | None = None  # the new profile picture's path (relative to DATA_DIR)


def _key(chat_id: int, account_id: int) -> str:
    return f"told:{chat_id}:{account_id}"


async def _told_until(setting: NotifySetting) -> datetime:
    """Changes up to this moment were told in this chat (or happened before notify was on)."""
    row = await Setting.get_or_none(key=_key(setting.chat_id, setting.account_id))
    told = datetime.fromisoformat(row.value["at"]) if row is not None else None
    return max(told, setting.since) if told is not None else setting.since


async def take_news(setting: NotifySetting, account: Account) -> News:
    """The untold changes, marked told now (before they are sent: never told twice)."""
    since, until = await _told_until(setting), queries.now()
    window = {"gt": since, "lte": until}
    news = News()
    deleted = await _count_posts(account, window)
    if deleted:
        news.parts.append(f"{deleted} post{'s' if deleted != 1 else ''} deleted")
    removed = await Highlight.filter(account=account, **_in("removed_at", window)).count()
    if removed:
        news.parts.append(f"{removed} highlight{'s' if removed != 1 else ''} removed")
    taken = await HighlightItem.filter(highlight__account=account, **_in("removed_at", window)).count()
    if taken:
        news.parts.append(f"{taken} highlight item{'s' if taken != 1 else ''} taken out")
    if account.gone and account.gone_since and since < account.gone_since <= until:
        news.parts.append(GONE_WORDS[account.gone].format(site=site_name(account.platform)))
    picture = (
        await ProfileChange.filter(account=account, field="picture", initial=False, **_in("seen_at", window))
        .order_by("-id")
        .first()
    )
    if picture is not None:
        news.parts.append("new profile picture")
        news.picture = picture.path
    rename = (
        await AccountRename.filter(account=account, state="done", **_in("finished_at", window))
        .order_by("-id")
        .first()
    )
    if rename is not None:
        news.parts.append(f"now @{rename.new_username}")
    await Setting.update_or_create(
        defaults={"value": {"at": until.isoformat()}}, key=_key(setting.chat_id, setting.account_id)
    )
    return news


def _in(column: str, window: dict[str, datetime]) -> dict[str, datetime]:
    return {f"{column}__{op}": moment for op, moment in window.items()}


async def _count_posts(account: Account, window: dict[str, datetime]) -> int:
    """Posts (a carousel once) whose files were found deleted on the platform in the window."""
    rows = await MediaItem.filter(account=account, **_in("deleted_at", window)).values_list(
        "group_id", "media_id"
    )
    return len({group or media for group, media in rows})
