"""Queries for what keeps the archive right over many runs: failed items, highlights, boundaries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count, Max

from db.models import Account, FailedItem, Highlight, HighlightItem, MediaItem

BATCH = 500


async def record_failure(
    account: Account, *, media_id: str, phase: str, kind: str, reason: str, recipe: dict
) -> int:
    """Remember a file that could not be written; return how many times it has failed."""
    row = await FailedItem.get_or_none(platform=account.platform, media_id=media_id)
    if row is None:
        try:
            await FailedItem.create(
                platform=account.platform,
                media_id=media_id,
                account=account,
                phase=phase,
                kind=kind,
                reason=reason,
                recipe=recipe,
            )
            return 1
        except IntegrityError:  # another job recorded it a moment ago
            row = await FailedItem.get(platform=account.platform, media_id=media_id)
    row.attempts += 1
    row.reason, row.recipe, row.phase = reason, recipe, phase
    await row.save(update_fields=["attempts", "reason", "recipe", "phase", "last_failed_at"])
    return row.attempts


async def clear_failure(platform: str, media_id: str, failing: set[str] | None = None) -> None:
    """The file is written now: forget that it ever failed. ``failing``: the ids known to have
    failed (``failing_ids``); an id not among them costs no statement."""
    if failing is not None and media_id not in failing:
        return
    await FailedItem.filter(platform=platform, media_id=media_id).delete()
    if failing is not None:
        failing.discard(media_id)


async def failing_ids(platform: str) -> set[str]:
    """Media ids (and metadata keys) of the platform's files that failed and are not written yet
    (of every account: a collaboration post is listed by two)."""
    return set(await FailedItem.filter(platform=platform).values_list("media_id", flat=True))


async def failures_of(account: Account, phase: str) -> list[FailedItem]:
    """Failed items of one account and phase, oldest first."""
    return await FailedItem.filter(account=account, phase=phase).order_by("id")


async def group_times(platform: str, groups: Iterable[str]) -> dict[str, datetime]:
    """The newest archived time of each post (group id) that the archive has."""
    ids = list(dict.fromkeys(groups))
    found: dict[str, datetime] = {}
    for start in range(0, len(ids), BATCH):
        rows = await MediaItem.filter(platform=platform, group_id__in=ids[start : start + BATCH]).values_list(
            "group_id", "taken_at"
        )
        for group, taken_at in rows:
            if taken_at is not None and (group not in found or taken_at > found[group]):
                found[group] = taken_at
    return found


async def archived_groups(account: Account) -> set[str]:
    """Posts of an account (group ids) whose files are all archived and none failed."""
    rows = (
        await MediaItem.filter(account=account, group_id__not_isnull=True)
        .annotate(files=Count("id"), size=Max("group_size"))
        .group_by("group_id")
        .values_list("group_id", "files", "size")
    )
    groups = {group for group, files, size in rows if files >= (size or 1)}
    failed = await FailedItem.filter(account=account, phase="posts").values_list("recipe", flat=True)
    return groups - {recipe.get("group_id") for recipe in failed}


async def save_boundary(account: Account, phase: str, top: int) -> None:
    """Move the clean boundary of a phase (it never moves back)."""
    boundaries = dict(account.boundaries or {})
    boundaries[phase] = max(int(boundaries.get(phase) or 0), int(top))
    account.boundaries = boundaries
    await account.save(update_fields=["boundaries", "updated_at"])


async def save_stamps(account: Account, stamps: dict[str, int]) -> None:
    """Store what a clean run saw, for the next run's "has anything changed" checks."""
    account.stamps = dict(account.stamps or {}) | stamps
    await account.save(update_fields=["stamps", "updated_at"])


async def forget_progress(account: Account, phases: Iterable[str]) -> None:
    """List these phases in full again (files went missing)."""
    account.boundaries = {k: v for k, v in (account.boundaries or {}).items() if k not in set(phases)}
    account.stamps = {}
    await account.save(update_fields=["boundaries", "stamps", "updated_at"])


# ----- highlights ---------------------------------------------------------------------


async def highlight_of(platform: str, highlight_id: str) -> Highlight | None:
    """The stored highlight, if it was seen before."""
    return await Highlight.get_or_none(platform=platform, highlight_id=highlight_id)


async def highlight_folders(account: Account) -> dict[str, str]:
    """Folder name -> highlight id of every highlight of the account."""
    rows = await Highlight.filter(account=account).values_list("folder", "highlight_id")
    return dict(rows)


async def highlight_labels(account: Account) -> list[tuple[str, str, str]]:
    """(folder, highlight id, title) of every highlight of the account."""
    return await Highlight.filter(account=account).values_list("folder", "highlight_id", "title")


async def add_highlight(account: Account, highlight_id: str, title: str, folder: str) -> Highlight:
    """Store a highlight seen for the first time."""
    return await Highlight.create(
        platform=account.platform, highlight_id=highlight_id, account=account, title=title, folder=folder
    )


async def add_members(highlight: Highlight, media_ids: Iterable[str]) -> None:
    """Record that these media belong to the highlight (known ones are kept once)."""
    have = set(await HighlightItem.filter(highlight=highlight).values_list("media_id", flat=True))
    new = [HighlightItem(highlight=highlight, media_id=m) for m in dict.fromkeys(media_ids) if m not in have]
    if new:
        await HighlightItem.bulk_create(new)


async def members_with_paths(account: Account) -> list[tuple[str, str, str, datetime | None]]:
    """(highlight folder, media id, archived path, taken_at) of every highlight item archived."""
    rows = await HighlightItem.filter(highlight__account=account).values_list("highlight__folder", "media_id")
    ids = list(dict.fromkeys(media_id for _, media_id in rows))
    paths: dict[str, tuple[str, datetime | None]] = {}
    for start in range(0, len(ids), BATCH):  # years of highlights: never one IN (...) of them all
        found = await MediaItem.filter(
            platform=account.platform, media_id__in=ids[start : start + BATCH]
        ).values_list("media_id", "path", "taken_at")
        paths.update({media_id: (path, taken_at) for media_id, path, taken_at in found})
    return [(folder, mid, *paths[mid]) for folder, mid in rows if mid in paths]


async def move_paths(account: Account, old_prefix: str, new_prefix: str) -> None:
    """Archive rows under a renamed folder follow it."""
    rows = await MediaItem.filter(account=account, path__startswith=old_prefix).values_list("id", "path")
    for row_id, path in rows:
        await MediaItem.filter(id=row_id).update(path=new_prefix + path[len(old_prefix) :])


async def mark_tray(account: Account, tray: Iterable[str], moment: datetime) -> None:
    """A complete tray: stored highlights missing from it are removed (first time), listed ones back."""
    ids = list(dict.fromkeys(str(i) for i in tray))
    await (
        Highlight.filter(account=account, removed_at__isnull=True)
        .exclude(highlight_id__in=ids)
        .update(removed_at=moment)
    )
    if ids:
        await Highlight.filter(account=account, highlight_id__in=ids, removed_at__not_isnull=True).update(
            removed_at=None
        )


async def mark_members(highlight: Highlight, listed: Iterable[str], moment: datetime) -> None:
    """A highlight listed in full: members missing are taken out (first time), listed ones back."""
    ids = list(dict.fromkeys(listed))
    await (
        HighlightItem.filter(highlight=highlight, removed_at__isnull=True)
        .exclude(media_id__in=ids)
        .update(removed_at=moment)
    )
    await HighlightItem.filter(highlight=highlight, media_id__in=ids, removed_at__not_isnull=True).update(
        removed_at=None
    )
