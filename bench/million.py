"""Figure 7: the database after years: queries on the hot path against a million archived rows (SQLite).

The archive is spread over 1,000 accounts. Timed, each as the bot runs it:
- /list: the tracked accounts and the archived counts per kind of one page of ten;
- a job start: create the job, take the account's lease, count what the job already has,
  and build what the source may skip (newest story, archived posts), then give the lease back;
- an archive check of one page of twelve ids (half archived).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.sizes import Size
from bench.table import Row, Section, seconds
from db import close_database, open_database, queries
from db.models import Account, MediaItem
from downloader.knowledge import known_about
from downloader.leases import ProcessRegistry
from downloader.service import DownloadService

TARGET = 0.050
ACCOUNTS = 1_000
INSERT_BATCH = 10_000
KINDS = ("post", "post", "post", "reel", "story", "highlight")


def run(size: Size) -> Section:
    """Fill, then time each query; one row per query."""
    with tempfile.TemporaryDirectory(prefix="bench-million-") as tmp:
        timings = asyncio.run(_measure(Path(tmp), size.million_rows, size.archive_repeats))
    label = f"7. With {size.million_rows:,} archived rows (SQLite)"
    rows = [
        Row(
            f"{label}: {name}",
            seconds(statistics.median(runs)),
            target=f"< {TARGET * 1000:g} ms",
            met=statistics.median(runs) < TARGET,
        )
        for name, runs in timings.items()
    ]
    notes = [
        f"Figure 7: medians of {size.archive_repeats} runs; worst: "
        + ", ".join(f"{name} {seconds(max(runs))}" for name, runs in timings.items())
        + "."
    ]
    return Section(rows, notes)


async def _measure(folder: Path, total: int, repeats: int) -> dict[str, list[float]]:
    await open_database(f"sqlite://{folder / 'archive.sqlite3'}")
    registry = ProcessRegistry("bench")
    try:
        accounts = await _fill(total)
        await registry.start()
        service = DownloadService(
            data_dir=folder, sources={"instagram": _Phases()}, fetcher=None, registry=registry
        )
        middle = accounts[len(accounts) // 2]
        ids = [_media_id(middle.id, i) for i in range(6)] + [
            _media_id(middle.id, 10**6 + i) for i in range(6)
        ]
        timings: dict[str, list[float]] = {"/list page": [], "job start": [], "archive check of a page": []}
        for _ in range(repeats):
            timings["/list page"].append(await _timed(_list_page()))
            timings["job start"].append(await _timed(_job_start(service, registry, middle)))
            timings["archive check of a page"].append(await _timed(queries.archived_by_job("instagram", ids)))
        return timings
    finally:
        await registry.stop()
        await close_database()


async def _timed(awaitable) -> float:
    start = time.perf_counter()
    await awaitable
    return time.perf_counter() - start


async def _list_page() -> None:
    """What /list asks the database for one page (handlers.accounts.render_page)."""
    await queries.tracked_count()
    accounts = await queries.tracked_page(50, 10)
    await queries.media_counts_of([a.id for a in accounts])


async def _job_start(service: DownloadService, registry: ProcessRegistry, account: Account) -> None:
    job = await service.create_job(account)
    await registry.acquire(account)
    await queries.count_job_media(job.id, ("post", "reel"))
    await known_about(account)
    await registry.release(account)


class _Phases:
    """Enough of a source for create_job (which phases the platform has)."""

    phases = ("posts", "stories", "highlights")


def _media_id(account_id: int, index: int) -> str:
    return f"{account_id:04d}{index:012d}"


async def _fill(total: int) -> list[Account]:
    """``total`` rows over ACCOUNTS accounts (bulk inserts; not timed)."""
    accounts = [Account(platform="instagram", username=f"user{i:04d}", tracked=True) for i in range(ACCOUNTS)]
    await Account.bulk_create(accounts)
    accounts = await Account.all().order_by("id")
    per_account = max(1, total // ACCOUNTS)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    batch: list[MediaItem] = []
    for account in accounts:
        for index in range(per_account):
            kind = KINDS[index % len(KINDS)]
            batch.append(
                MediaItem(
                    platform="instagram",
                    media_id=_media_id(account.id, index),
                    kind=kind,
                    account=account,
                    taken_at=start + timedelta(hours=index),
                    path=f"downloads/instagram/{account.username}/posts/{index}.jpg",
                    size=200_000,
                    group_id=f"g{account.id}_{index // 2}" if kind == "post" else None,
                )
            )
            if len(batch) >= INSERT_BATCH:
                await MediaItem.bulk_create(batch)
                batch = []
    if batch:
        await MediaItem.bulk_create(batch)
    return accounts
