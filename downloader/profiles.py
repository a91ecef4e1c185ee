"""The profile's history: name, biography, link, privacy, counts and picture, kept when they change.

Everything comes from the lookup a sync already makes (no extra API request). The picture
is fetched from the CDN only when its identity (the file name in its URL, which stays the
same while Instagram re-signs the URL) differs from the last one kept, and saved once per
version under ``<account>/profile/``, named by the date it was first seen.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from db import queries
from db.models import Account, ProfileChange
from downloader.errors import DownloadError
from downloader.fetch import Fetcher
from downloader.paths import downloads_root, inside
from downloader.sources.base import Account as SourceAccount

log = logging.getLogger(__name__)
PROFILE_FOLDER = "profile"  # under the account's folder: each profile picture once
FIELDS = ("full_name", "biography", "external_url", "is_private", "followers", "posts")


def observed(info: SourceAccount) -> dict[str, str]:
    """The profile fields this lookup reported, as stored text (absent: not reported)."""
    values = {
        "full_name": info.display_name,
        "biography": info.biography,
        "external_url": info.external_url,
        "is_private": "yes" if info.is_private else "no",
        "followers": None if info.followers is None else str(info.followers),
        "posts": None if info.media_count is None else str(info.media_count),
    }
    return {name: value for name, value in values.items() if value is not None}


async def current(account: Account) -> dict[str, ProfileChange]:
    """The newest row of each profile field (and "picture")."""
    latest: dict[str, ProfileChange] = {}
    for row in await ProfileChange.filter(account=account).order_by("id"):
        latest[row.field] = row
    return latest


async def record_profile(data_dir: Path, account: Account, info: SourceAccount, fetcher: Fetcher) -> None:
    """Store what changed since the last lookup (the first lookup is stored as the start)."""
    latest = await current(account)
    for name, value in observed(info).items():
        before = latest.get(name)
        if before is None or before.value != value:
            await ProfileChange.create(account=account, field=name, value=value, initial=before is None)
    if info.picture_url:
        await _keep_picture(data_dir, account, info.picture_url, latest.get("picture"), fetcher)


def picture_identity(url: str) -> str:
    """The picture's file name in its CDN URL: the same picture keeps it when the URL is re-signed."""
    return urlsplit(url).path.rsplit("/", 1)[-1][:200]


async def _keep_picture(
    data_dir: Path, account: Account, url: str, before: ProfileChange | None, fetcher: Fetcher
) -> None:
    """Download a new profile picture once (one CDN request); a failure is retried next sync."""
    identity = picture_identity(url)
    if before is not None and before.value == identity:
        return
    seen = queries.now()
    folder = inside(downloads_root(data_dir), account.platform, account.username, PROFILE_FOLDER)
    final = folder / _picture_name(seen, identity)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        await fetcher.fetch(url, final)
    except (DownloadError, OSError) as exc:  # the posts still run; the next sync tries again
        log.warning("@%s: the new profile picture could not be saved: %s", account.username, exc)
        return
    await ProfileChange.create(
        account=account,
        field="picture",
        value=identity,
        path=str(final.relative_to(data_dir)),
        initial=before is None,
    )


def _picture_name(seen: datetime, identity: str) -> str:
    """The date first (sorts by time), then the CDN's name of the picture (two in a second never collide)."""
    stem, _, ext = identity.rpartition(".")
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", stem or ext)[:60]
    ext = ext.lower() if re.fullmatch(r"[A-Za-z0-9]{1,5}", ext) and stem != ext else "jpg"
    return f"{seen:%Y-%m-%d_%H-%M-%S}_{stem}.{ext}"


def change_lines(rows: list[ProfileChange]) -> list[str]:
    """Changes in words, oldest first ("went private on 2026-12-03"); first sightings are not changes."""
    lines = []
    for row in rows:
        if row.initial or row.field in ("followers", "posts"):
            continue
        lines.append(f"{_change_words(row)} on {row.seen_at:%Y-%m-%d}")
    return lines


def _change_words(row: ProfileChange) -> str:
    value = row.value or ""
    if row.field == "is_private":
        return "went private" if value == "yes" else "went public"
    if row.field == "picture":
        return "new profile picture"
    if row.field == "full_name":
        return f"name changed to “{value}”" if value else "name removed"
    if row.field == "biography":
        return f"new biography “{_short(value)}”" if value else "biography removed"
    return f"link changed to {value}" if value else "link removed"


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
