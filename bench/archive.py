"""Figure 5: the archive check (db.queries.archived_paths) of many media ids against a large archive.

Half of the ids asked about are archived, half are new, as in a sync that finds some
new posts. Measured on SQLite and, when it answers, on PostgreSQL (in a database of
its own, created and dropped by the benchmark).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tortoise import connections

from bench.sizes import Size
from bench.table import Row, Section, seconds
from db import close_database, connection_name, open_database, queries
from db.models import Account, MediaItem
from tests.postgres import PG_URL, own_database, postgres_unavailable, where

SQLITE_TARGET = 0.1
INSERT_BATCH = 5_000
FIRST_ID = 3_100_000_000_000_000_000


def run(size: Size) -> Section:
    """Measure both backends; a missing PostgreSQL becomes a row that says why."""
    label = f"5. Archive check of {size.archive_ids:,} ids vs {size.archive_rows:,} rows"
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        fresh, sqlite = asyncio.run(_measure(f"sqlite://{Path(tmp) / 'archive.sqlite3'}", size))
    rows.append(
        Row(
            f"{label}, SQLite",
            seconds(sqlite.median),
            target=f"< {SQLITE_TARGET:g} s",
            met=sqlite.median < SQLITE_TARGET,
        )
    )
    notes.append(f"Archive, SQLite: {sqlite}; before ANALYZE: median {seconds(fresh.median)}.")
    reason = asyncio.run(postgres_unavailable())
    if reason:
        rows.append(Row(f"{label}, PostgreSQL", f"skipped: {reason}"))
    else:
        fresh, postgres = asyncio.run(_measure_postgres(size))
        rows.append(Row(f"{label}, PostgreSQL", seconds(postgres.median)))
        notes.append(
            f"Archive, PostgreSQL (a database of its own beside {where(PG_URL)}): {postgres}; "
            "right after the bulk insert, before "
            f"ANALYZE (planner statistics not yet collected): median {seconds(fresh.median)}."
        )
    return Section(rows, notes)


class Timing:
    """Repeated look-ups of the same ids: median, best, worst, and how many were found."""

    def __init__(self, runs: list[float], found: int, asked: int):
        self.runs, self.found, self.asked = runs, found, asked
        self.median = statistics.median(runs)

    def __str__(self) -> str:
        return (
            f"median {seconds(self.median)} of {len(self.runs)} runs (best {seconds(min(self.runs))}, "
            f"worst {seconds(max(self.runs))}), {self.found:,} of {self.asked:,} ids found archived"
        )


async def _measure_postgres(size: Size) -> tuple[Timing, Timing]:
    """_measure in a database of its own on the PostgreSQL server, dropped afterwards."""
    async with own_database() as url:
        return await _measure(url, size)


async def _measure(url: str, size: Size) -> tuple[Timing, Timing]:
    """Fill an archive of ``archive_rows`` rows; time the look-up before and after ANALYZE."""
    await open_database(url)
    try:
        await _fill(size.archive_rows)
        asked = _asked_ids(size.archive_rows, size.archive_ids)
        fresh = await _time_lookups(asked, size.archive_repeats)
        # A long-lived database has planner statistics (autovacuum, or SQLite's optimize);
        # a table filled a moment ago does not, and PostgreSQL then picks a poor plan.
        await connections.get(connection_name(url)).execute_script("ANALYZE")
        analyzed = await _time_lookups(asked, size.archive_repeats)
    finally:
        await close_database()
    return fresh, analyzed


async def _time_lookups(asked: list[str], repeats: int) -> Timing:
    runs, found = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = len(await queries.archived_paths("instagram", asked))
        runs.append(time.perf_counter() - start)
    return Timing(runs, found, len(asked))


def _media_id(index: int) -> str:
    return str(FIRST_ID + index * 10)


async def _fill(rows: int) -> None:
    """``rows`` archived files of one account (bulk inserts; not timed)."""
    account = await Account.create(platform="instagram", username="archived", tracked=True)
    for start in range(0, rows, INSERT_BATCH):
        batch = [
            MediaItem(
                platform="instagram",
                media_id=_media_id(index),
                kind="post",
                account=account,
                path=f"downloads/instagram/archived/posts/2025-06-15_{_media_id(index)}.jpg",
                size=200_000,
            )
            for index in range(start, min(start + INSERT_BATCH, rows))
        ]
        await MediaItem.bulk_create(batch)


def _asked_ids(rows: int, count: int) -> list[str]:
    """``count`` ids: every other one archived (spread over the table), the rest new."""
    step = max(1, rows // max(1, count // 2))
    archived = [_media_id(i * step % rows) for i in range(count // 2)]
    new = [_media_id(rows + i) for i in range(count - len(archived))]
    return [media_id for pair in zip(archived, new, strict=False) for media_id in pair] + new[len(archived) :]
