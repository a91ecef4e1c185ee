"""Queries the rest of the program uses; models stay plain tables."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Subquery
from tortoise.functions import Coalesce, Count

from db.models import Account, AccountRename, Job, MediaItem, ProfileChange, RequestCount, Setting
from db.patience import insert_once

BATCH = 500  # ids per IN (...) query: well under SQLite's and PostgreSQL's parameter limits
PRUNE_BATCH = 5_000  # old jobs deleted per statement (chosen by date, never by a list of ids)
FINISHED_STATES = ("completed", "failed", "cancelled")
ACTIVE_STATES = ("queued", "running")
RESUMABLE_STATES = ("paused", "interrupted")


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


async def archived_paths(platform: str, media_ids: Iterable[str]) -> dict[str, str]:
    """Map each already-archived media id to its path, checking in batches."""
    ids = list(dict.fromkeys(media_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), BATCH):
        rows = await MediaItem.filter(platform=platform, media_id__in=ids[start : start + BATCH]).values_list(
            "media_id", "path"
        )
        found.update(rows)
    return found


async def archived_by_job(platform: str, media_ids: Iterable[str]) -> dict[str, int | None]:
    """Map each already-archived media id to the job that downloaded it, in batches."""
    ids = list(dict.fromkeys(media_ids))
    found: dict[str, int | None] = {}
    for start in range(0, len(ids), BATCH):
        rows = await MediaItem.filter(platform=platform, media_id__in=ids[start : start + BATCH]).values_list(
            "media_id", "job_id"
        )
        found.update(rows)
    return found


async def record_media(
    *,
    platform: str,
    media_id: str,
    kind: str,
    account: Account,
    taken_at: datetime | None,
    path: str,
    size: int,
    job_id: int | None = None,
    group_id: str | None = None,
    group_size: int | None = None,
    caption: str | None = None,
    link: str | None = None,
) -> None:
    """Record one finished file; a row that already exists is updated, never doubled."""
    create = lambda: MediaItem.create(  # noqa: E731
        platform=platform,
        media_id=media_id,
        kind=kind,
        account=account,
        taken_at=taken_at,
        path=path,
        size=size,
        job_id=job_id,
        group_id=group_id,
        group_size=group_size,
        caption=caption,
        link=link,
    )
    update = lambda: MediaItem.filter(platform=platform, media_id=media_id).update(  # noqa: E731
        path=path, size=size, kind=kind, account_id=account.id
    )
    await insert_once(create, update)


async def count_job_media(job_id: int, kinds: Iterable[str]) -> int:
    """Files of these kinds that a job has downloaded so far (survives crashes)."""
    return await MediaItem.filter(job_id=job_id, kind__in=list(kinds)).count()


async def count_job_posts(job_id: int) -> int:
    """Posts (a carousel counts once) a job has downloaded files of.

    Carousel slides are stored as "<post id>_<n>" (see downloader/sources/base.py)."""
    ids = await MediaItem.filter(job_id=job_id, kind__in=["post", "reel"]).values_list("media_id", flat=True)
    return len({media_id.split("_", 1)[0] for media_id in ids})


async def job_files(job_id: int, kinds: Iterable[str]) -> list[tuple[str, str | None, str]]:
    """(kind, group id, media id) of the files of these kinds a job has downloaded."""
    rows = MediaItem.filter(job_id=job_id, kind__in=list(kinds))
    return await rows.values_list("kind", "group_id", "media_id")


async def forget_media(platform: str, media_ids: Iterable[str]) -> int:
    """Drop archive rows (their files vanished from disk); return how many."""
    ids = list(media_ids)
    deleted = 0
    for start in range(0, len(ids), BATCH):
        deleted += await MediaItem.filter(platform=platform, media_id__in=ids[start : start + BATCH]).delete()
    return deleted


async def account_media_rows(account: Account) -> list[tuple[str, str, str]]:
    """(media_id, path, kind) of every archived file of an account."""
    return await MediaItem.filter(account=account).values_list("media_id", "path", "kind")


async def media_counts_of(account_ids: list[int]) -> dict[int, dict[str, tuple[int, int]]]:
    """Per account and kind: (posts, files) archived, one grouped query per BATCH accounts.

    A carousel's files share a group id (its post), so it counts as one post; a file
    without a group id counts as a post of its own."""
    counts: dict[int, dict[str, tuple[int, int]]] = {}
    for start in range(0, len(account_ids), BATCH):
        rows = (
            await MediaItem.filter(account_id__in=account_ids[start : start + BATCH])
            .annotate(units=Count(Coalesce("group_id", "media_id"), distinct=True), files=Count("id"))
            .group_by("account_id", "kind")
            .values_list("account_id", "kind", "units", "files")
        )
        for account_id, kind, units, files in rows:
            counts.setdefault(account_id, {})[kind] = (units, files)
    return counts


async def prune_jobs(days: int) -> int:
    """Delete finished jobs older than ``days`` (archive rows are kept forever); return how many.

    PRUNE_BATCH jobs per statement, chosen by a range of ids and never by a list of them (a
    year of history is more than PostgreSQL's 32,767 query arguments); each batch starts
    after the last, so no batch scans the rows deleted before it, and SQLite's write lock
    is given back between batches."""
    if days <= 0:
        return 0
    cutoff = now() - timedelta(days=days)
    old = Job.filter(parent=None, state__in=FINISHED_STATES, finished_at__lt=cutoff)
    deleted, after = 0, 0
    while True:
        rest = old.filter(id__gt=after)
        last = await rest.order_by("id").offset(PRUNE_BATCH - 1).limit(1).values_list("id", flat=True)
        batch = rest.filter(id__lte=last[0]) if last else rest
        await Job.filter(parent_id__in=Subquery(batch.values("id"))).delete()  # a sync-all's jobs
        deleted += await batch.delete()
        if not last:
            return deleted
        after = last[0]


async def prune_request_counts(days: int) -> int:
    """Delete Instagram request counts older than ``days`` (0 keeps all; the budget needs one day)."""
    if days <= 0:
        return 0
    return await RequestCount.filter(hour__lt=now() - timedelta(days=max(days, 2))).delete()


async def get_or_create_account(platform: str, username: str, added_by: int | None = None):
    """The account row for a target (found by a former name too), created (untracked) when new."""
    found = await find_account(platform, username)
    if found is not None:
        return found
    account, _ = await Account.get_or_create(
        platform=platform, username=username, defaults={"tracked": False, "added_by": added_by}
    )
    return account


async def find_account(platform: str, username: str) -> Account | None:
    """The account row by its name, else by a name it had before a rename; or None."""
    account = await Account.get_or_none(platform=platform, username=username)
    return account if account is not None else await renamed_from(platform, username)


async def renamed_from(platform: str, username: str) -> Account | None:
    """The account that was called ``username`` before a rename the archive followed."""
    move = (
        await AccountRename.filter(platform=platform, old_username=username, state="done")
        .order_by("-id")
        .prefetch_related("account")
        .first()
    )
    return move.account if move is not None else None


async def former_names(account: Account) -> list[str]:
    """The account's earlier names, oldest first."""
    rows = AccountRename.filter(account=account, state="done").order_by("id")
    return list(await rows.values_list("old_username", flat=True))


async def tracked_count() -> int:
    """How many accounts are tracked."""
    return await Account.filter(tracked=True).count()


async def tracked_page(page: int, size: int) -> list[Account]:
    """One page of the tracked accounts, in the order of tracked_accounts()."""
    return await Account.filter(tracked=True).order_by("platform", "username").offset(page * size).limit(size)


async def tracked_accounts() -> list[Account]:
    """Tracked accounts, Instagram first, then by name."""
    return await Account.filter(tracked=True).order_by("platform", "username")


async def active_job_for(account: Account) -> Job | None:
    """A queued or running download of this account, if any."""
    return await Job.filter(account=account, state__in=ACTIVE_STATES, kind="download").order_by("-id").first()


async def running_downloads(platform: str) -> list[Job]:
    """Downloads of a platform that are running now (they hold its slots), oldest first."""
    return (
        await Job.filter(kind="download", state="running", account__platform=platform)
        .order_by("id")
        .prefetch_related("account")
    )


async def resumable_job_for(account: Account) -> Job | None:
    """The newest paused or interrupted download of this account, if any."""
    return (
        await Job.filter(account=account, state__in=RESUMABLE_STATES, kind="download").order_by("-id").first()
    )


async def unfinished_folders(exclude_job: int | None = None) -> set[tuple[str, str]]:
    """(platform, username) of accounts with a download that may still continue (their partial
    files are worth keeping)."""
    states = (*ACTIVE_STATES, *RESUMABLE_STATES)
    rows = Job.filter(kind="download", state__in=states)
    if exclude_job is not None:
        rows = rows.exclude(id=exclude_job)
    pairs = await rows.values_list("account__platform", "account__username")
    return {(platform, username) for platform, username in pairs}


async def resumable_jobs() -> list[Job]:
    """Paused and interrupted top-level jobs, oldest first."""
    return (
        await Job.filter(state__in=RESUMABLE_STATES, parent=None).order_by("id").prefetch_related("account")
    )


async def mark_interrupted(live_owners: set[str] | frozenset[str] = frozenset()) -> list[Job]:
    """Jobs left running or queued by a dead process become `interrupted`; return them.

    Jobs of processes that still run (``live_owners``: a command-line download while the
    bot restarts) are theirs and left alone."""
    jobs = await Job.filter(state__in=ACTIVE_STATES).prefetch_related("account")
    jobs = [job for job in jobs if job.owner is None or job.owner not in live_owners]
    for job in jobs:
        job.state = "interrupted"
        await job.save(update_fields=["state", "updated_at"])
    return jobs


async def get_setting(key: str, default=None):
    """A value stored with set_setting, or ``default``."""
    row = await Setting.get_or_none(key=key)
    return default if row is None else row.value["v"]


async def set_setting(key: str, value) -> None:
    """Store a JSON-able value under ``key``."""
    # Wrapped: tortoise's JSONField would read a bare string as JSON text.
    await Setting.update_or_create(key=key, defaults={"value": {"v": value}})


async def newest_pictures(account_ids: list[int]) -> dict[int, str]:
    """The newest kept profile picture (its path below DATA_DIR) of each account that has one."""
    rows = await ProfileChange.filter(account_id__in=account_ids or [0], field="picture").order_by("id")
    return {row.account_id: row.path for row in rows if row.path}
