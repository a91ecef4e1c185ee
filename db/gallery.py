"""Read-only queries of the web gallery: accounts, pages of items, an item's files, search."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q
from tortoise.filters import escape_like
from tortoise.functions import Count, Max, Min

from db.models import Account, Highlight, HighlightItem, Job, MediaItem

POST_KINDS = ("post", "reel")
# TikTok's tab holds videos and photo posts (slides; the sound is shown on the post's page).
TAB_KINDS = {"posts": POST_KINDS, "stories": ("story",), "videos": ("video", "photo")}


async def accounts() -> list[Account]:
    """Tracked accounts and every account with archived files, by platform and name."""
    with_media = (
        await MediaItem.filter(account_id__not_isnull=True).distinct().values_list("account_id", flat=True)
    )
    return await Account.filter(Q(tracked=True) | Q(id__in=list(with_media) or [0])).order_by(
        "platform", "username"
    )


async def post_counts(account_ids: list[int]) -> dict[int, int]:
    """Posts (not files: a carousel is one post) per account."""
    rows = (
        await MediaItem.filter(account_id__in=account_ids or [0], kind__in=POST_KINDS)
        .annotate(n=Count("group_id", distinct=True))
        .group_by("account_id")
        .values_list("account_id", "n")
    )
    return dict(rows)


async def highlight_counts(account_ids: list[int]) -> dict[int, int]:
    """Highlight items per account (an item in two highlights counts twice, as they show)."""
    rows = (
        await HighlightItem.filter(highlight__account_id__in=account_ids or [0])
        .annotate(n=Count("id"))
        .group_by("highlight__account_id")
        .values_list("highlight__account_id", "n")
    )
    return dict(rows)


async def post_covers(account: Account, kinds: tuple[str, ...], page: int, size: int) -> list[MediaItem]:
    """One file per post (its first), newest post first; ``size + 1`` rows tell a next page."""
    groups = (
        await MediaItem.filter(account=account, kind__in=kinds)
        .annotate(newest=Max("taken_at"), first=Min("media_id"))
        .group_by("group_id")
        .order_by("-newest", "-first")
        .offset(page * size)
        .limit(size + 1)
        .values_list("first", flat=True)
    )
    rows = {
        row.media_id: row for row in await MediaItem.filter(platform=account.platform, media_id__in=groups)
    }
    return [rows[media_id] for media_id in groups if media_id in rows]


async def group_sizes(platform: str, group_ids: list[str]) -> dict[str, int]:
    """Archived files per post (a carousel shows a badge)."""
    rows = (
        await MediaItem.filter(platform=platform, group_id__in=group_ids or [""])
        .annotate(n=Count("id"))
        .group_by("group_id")
        .values_list("group_id", "n")
    )
    return dict(rows)


async def newest_items(account: Account, kinds: tuple[str, ...], page: int, size: int) -> list[MediaItem]:
    """Files of some kinds, newest first; ``size + 1`` rows tell a next page."""
    return (
        await MediaItem.filter(account=account, kind__in=kinds)
        .order_by("-taken_at", "-id")
        .offset(page * size)
        .limit(size + 1)
    )


async def highlights(account: Account) -> list[tuple[Highlight, int]]:
    """The account's highlights by title, with how many archived items each holds."""
    rows = await Highlight.filter(account=account).order_by("title")
    counts = dict(
        await HighlightItem.filter(highlight_id__in=[h.id for h in rows] or [0])
        .annotate(n=Count("id"))
        .group_by("highlight_id")
        .values_list("highlight_id", "n")
    )
    return [(h, counts.get(h.id, 0)) for h in rows]


async def highlight_items(highlight: Highlight, page: int, size: int) -> list[MediaItem]:
    """A highlight's archived items in the order they were added; ``size + 1`` tell a next page."""
    media_ids = (
        await HighlightItem.filter(highlight=highlight)
        .order_by("added_at", "id")
        .offset(page * size)
        .limit(size + 1)
        .values_list("media_id", flat=True)
    )
    rows = {
        r.media_id: r for r in await MediaItem.filter(platform=highlight.platform, media_id__in=media_ids)
    }
    return [rows[m] for m in media_ids if m in rows]


async def removed_members(highlight: Highlight) -> dict[str, object]:
    """Media id -> when it was taken out of the highlight on the platform (removed items only)."""
    rows = await HighlightItem.filter(highlight=highlight, removed_at__not_isnull=True).values_list(
        "media_id", "removed_at"
    )
    return dict(rows)


def slide_order(item: MediaItem) -> tuple[int, str]:
    """Carousel files are named <post id>_<slide>: order by the slide number."""
    head, _, tail = item.media_id.rpartition("_")
    return (int(tail), item.media_id) if head and tail.isdigit() else (0, item.media_id)


async def post_files(item: MediaItem) -> list[MediaItem]:
    """Every archived file of the item's post, in slide order."""
    if not item.group_id:
        return [item]
    rows = await MediaItem.filter(platform=item.platform, group_id=item.group_id)
    # A photo post's sound (kind "audio", no slide number) comes after its slides.
    return sorted(rows, key=lambda row: (row.kind == "audio", slide_order(row))) or [item]


async def neighbours(item: MediaItem) -> tuple[MediaItem | None, MediaItem | None]:
    """The newer and the older post (or file) of the same account and kind, for arrows."""
    kinds = POST_KINDS if item.kind in POST_KINDS else (item.kind,)
    base = MediaItem.filter(account_id=item.account_id, kind__in=kinds)
    if item.group_id:
        base = base.exclude(group_id=item.group_id)
    newer = await base.filter(taken_at__gt=item.taken_at).order_by("taken_at", "id").first()
    older = await base.filter(taken_at__lt=item.taken_at).order_by("-taken_at", "-id").first()
    return newer, older


async def search(text: str, limit: int = 60) -> tuple[list[Account], list[MediaItem]]:
    """Accounts whose name holds ``text``, and files whose caption does (one per post)."""
    found = await Account.filter(username__icontains=text).order_by("username").limit(limit)
    named = await Account.filter(display_name__icontains=text).order_by("username").limit(limit)
    accounts_found = list(OrderedDict((a.id, a) for a in [*found, *named]).values())[:limit]
    rows = await MediaItem.filter(id__in=await _caption_matches(text, limit * 4))
    posts: OrderedDict[str, MediaItem] = OrderedDict()
    for row in sorted(rows, key=lambda r: (r.group_id or r.media_id, slide_order(r))):
        posts.setdefault(f"{row.platform}:{row.group_id or row.media_id}", row)
    items = sorted(posts.values(), key=lambda r: (r.taken_at is not None, r.taken_at), reverse=True)
    return accounts_found, items[:limit]


async def _caption_matches(text: str, limit: int) -> list[int]:
    """Ids of the newest files whose caption holds ``text``, ignoring case.

    Not tortoise's ``icontains``: its UPPER(CAST(caption)) costs SQLite three times the
    plain scan, and PostgreSQL's trigram index (migration 0011) serves ILIKE only.
    SQLite's LIKE ignores case (ASCII, as its UPPER does) and scans a narrow index."""
    client = MediaItem._meta.db
    pattern = f"%{escape_like(text)}%"
    if client.capabilities.dialect == "postgres":
        where, slots = "caption ILIKE $1", "$2"  # backslash is PostgreSQL's escape already
    else:
        where, slots = "caption LIKE ? ESCAPE '\\'", "?"
    sql = f"SELECT id FROM media_items WHERE {where} ORDER BY taken_at DESC, id DESC LIMIT {slots}"
    return [row["id"] for row in await client.execute_query_dict(sql, [pattern, limit])]


async def jobs_to_refresh(seconds: float = 120, limit: int = 50) -> list[int]:
    """Jobs a page opened just now may show out of date: unfinished ones, and any that changed in
    the last ``seconds`` (a page rendered a moment before a job paused or ended)."""
    since = datetime.now(UTC) - timedelta(seconds=seconds)
    rows = (
        await Job.filter(Q(state__in=("queued", "running", "paused")) | Q(updated_at__gte=since))
        .order_by("-updated_at")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return list(rows)
