"""Pure text of deliveries: captions (within Telegram's 1024 UTF-16 units), summary lines, sizes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from downloader.words import site_name

MAX_CAPTION = 1024  # Telegram counts UTF-16 code units of the caption after entity parsing
KIND_WORDS = {
    "post": "post",
    "reel": "reel",
    "story": "story",
    "highlight": "highlight",
    "video": "video",
    "photo": "photo post",  # a TikTok photo post's slides
    "audio": "photo post",  # ...and its sound
}
# Summary nouns, in the order they are listed.
SUMMARY_NOUNS = (
    ("post", "post", "posts"),
    ("reel", "reel", "reels"),
    ("story", "story", "stories"),
    ("highlight", "highlight item", "highlight items"),
    ("video", "video", "videos"),
    ("photo", "photo post", "photo posts"),
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def trim_utf16(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` UTF-16 units, ending in "…" when cut; never splits a character."""
    if utf16_len(text) <= budget:
        return text
    if budget <= 0:
        return ""
    out, used = [], 1  # room for the ellipsis
    for char in text:
        cost = 2 if ord(char) > 0xFFFF else 1
        if used + cost > budget:
            break
        out.append(char)
        used += cost
    return "".join(out).rstrip() + "…"


def account_label(platform: str, username: str) -> str:
    """ "@alice" or "@bob (TikTok)"."""
    return f"@{username}" + (" (TikTok)" if platform == "tiktok" else "")


def caption(
    *,
    platform: str,
    username: str,
    kind: str,
    taken_at: datetime | None,
    text: str | None,
    link: str | None,
) -> str:
    """The HTML caption of one post, story or video: who, what, when, its text and a link."""
    when = f" · {taken_at:%Y-%m-%d}" if taken_at else ""
    head_plain = f"{account_label(platform, username)} · {KIND_WORDS.get(kind, kind)}{when}"
    head = f"<b>{escape(head_plain)}</b>"
    foot_plain = f"Open on {site_name(platform)}" if link else ""
    foot = f'<a href="{escape(link, quote=True)}">{escape(foot_plain)}</a>' if link else ""
    # What the caption text may use once the fixed parts and their line breaks are counted.
    budget = MAX_CAPTION - utf16_len(head_plain) - utf16_len(foot_plain) - 2
    body = escape(trim_utf16((text or "").strip(), budget))
    return "\n".join(part for part in (head, body, foot) if part)


def human_size(size: int) -> str:
    """Bytes as "60.0 MB"."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def too_large_line(names_sizes: Iterable[tuple[str, int]], limit: int) -> str:
    """The text sent instead of files Telegram would refuse (HTML-escaped)."""
    files = ", ".join(f"{escape(name)} ({human_size(size)})" for name, size in names_sizes)
    return f"Too large to send here (limit {human_size(limit)}): {files}. It is in the archive."


def summary_counts(rows: Iterable[tuple[str, str | None, str]]) -> str:
    """ "2 new posts, 3 new stories" from (kind, group id, media id) rows; "" when none."""
    units: dict[str, set[str]] = {}
    for kind, group_id, media_id in rows:
        # A post counts once however many files it has (as the progress counts it).
        key = group_id if kind in ("post", "reel", "photo", "audio") and group_id else media_id
        # A photo post is its slides and its sound: counted once, as a photo post.
        units.setdefault("photo" if kind == "audio" else kind, set()).add(key)
    parts = []
    for kind, one, many in SUMMARY_NOUNS:
        count = len(units.get(kind, ()))
        if count:
            parts.append(f"{count} new {one if count == 1 else many}")
    return ", ".join(parts)


def backlog_line(platform: str, username: str, count: int) -> str:
    """What the files over NOTIFY_BACKLOG_LIMIT become."""
    noun = "file" if count == 1 else "files"
    return f"…and {count} more {noun} of {account_label(platform, username)} in the archive."


def given_up_line(platform: str, username: str, count: int, attempts: int, reason: str) -> str:
    """The one report of files that could not be sent."""
    noun = "file" if count == 1 else "files"
    return (
        f"Could not send {count} {noun} of {account_label(platform, username)} after {attempts} tries "
        f"({reason}). They are in the archive; /latest shows the newest."
    )


def unconfirmed_line(platform: str, username: str, count: int) -> str:
    """What a chat is told about files whose send got no answer from Telegram."""
    noun, they = ("file", "it is") if count == 1 else ("files", "they are")
    return (
        f"{count} {noun} of {account_label(platform, username)} may not have arrived: the connection "
        f"to Telegram broke before it confirmed the send. To avoid duplicates {they} not sent again; "
        "everything is in the archive (/latest shows the newest)."
    )
