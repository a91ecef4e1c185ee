"""Figure 9: years of history: pruning a million old jobs, and a start with a large database.

- prune: ``history_jobs`` finished jobs older than JOB_HISTORY_DAYS (a tenth of them sync-alls
  with two per-account jobs each), deleted by ``db.queries.prune_jobs`` as the start-up does;
- start-up: the real bot (the Application wiring.py builds, ``harness.running_bot`` against the fake
  Telegram) on a database of ``startup_rows`` archived files over 1,000 tracked accounts and
  ``startup_jobs`` jobs within the history (kept): from building the Application until it polls.

Both on SQLite and, when it answers, on PostgreSQL (a database of its own, dropped afterwards).
Rows are written with INSERT ... SELECT (tests/history.py), not timed.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.sizes import Size
from bench.table import Row, Section, seconds
from db import close_database, open_database, queries
from db.models import Job
from tests.fakes.telegram import FakeTelegram
from tests.harness import TOKEN, make_settings, running_bot
from tests.history import analyze, insert_archive, insert_children, insert_jobs
from tests.postgres import own_database, postgres_unavailable

HISTORY_DAYS = 90
ACCOUNTS = 1_000
PRUNE_TARGET = 60.0  # seconds for a million jobs: a once-a-year start-up, not a hot path
STARTUP_TARGET = 5.0


def run(size: Size) -> Section:
    """Both figures on SQLite, then on PostgreSQL when it is reachable."""
    rows: list[Row] = []
    notes: list[str] = []
    logging.getLogger("bot").setLevel(logging.WARNING)  # the bot's start-up lines go nowhere here
    backends = [("SQLite", None)]
    reason = asyncio.run(postgres_unavailable())
    backends.append(("PostgreSQL", reason))
    for name, skipped in backends:
        prune_label = f"9. Old history, {name}: pruning {size.history_jobs:,} old jobs"
        start_label = (
            f"9. Old history, {name}: bot start-up with {size.startup_rows:,} archive rows "
            f"and {size.startup_jobs:,} jobs"
        )
        if skipped:
            rows += [Row(prune_label, f"skipped: {skipped}"), Row(start_label, f"skipped: {skipped}")]
            continue
        pruned, prune_time, start_time = asyncio.run(_both(name, size))
        rows.append(
            Row(
                prune_label,
                seconds(prune_time),
                target=f"< {PRUNE_TARGET:g} s",
                met=prune_time < PRUNE_TARGET,
            )
        )
        rows.append(
            Row(
                start_label,
                seconds(start_time),
                target=f"< {STARTUP_TARGET:g} s",
                met=start_time < STARTUP_TARGET,
            )
        )
        notes.append(
            f"Old history, {name}: {pruned:,} rows deleted (sync-alls with their per-account jobs), "
            f"{queries.PRUNE_BATCH:,} top-level jobs per statement; the start-up includes migrations, "
            "the (empty) prune, restoring the schedule and interrupted jobs and the first poll."
        )
    return Section(rows, notes)


async def _both(backend: str, size: Size) -> tuple[int, float, float]:
    """(rows pruned, prune seconds, start-up seconds) on one fresh database of the backend."""
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        folder = Path(tmp)
        if backend == "SQLite":
            url = f"sqlite://{folder / 'history.sqlite3'}"
            pruned, prune_time = await _prune(url, size.history_jobs)
            return pruned, prune_time, await _startup(url, folder, size)
        async with own_database() as url:
            pruned, prune_time = await _prune(url, size.history_jobs)
            return pruned, prune_time, await _startup(url, folder, size)


async def _prune(url: str, count: int) -> tuple[int, float]:
    """Fill ``count`` old top-level jobs (a tenth sync-alls with two children); time the prune."""
    await open_database(url)
    try:
        long_ago = queries.now() - timedelta(days=HISTORY_DAYS + 300)
        syncalls = count // 10
        await insert_jobs(url, count - syncalls, finished_at=long_ago)
        await insert_jobs(url, syncalls, finished_at=long_ago, kind="syncall")
        await insert_children(url, per_parent=2)
        await analyze(url)
        before = await Job.all().count()
        start = time.perf_counter()
        await queries.prune_jobs(HISTORY_DAYS)
        elapsed = time.perf_counter() - start
        return before - await Job.all().count(), elapsed
    finally:
        await close_database()


async def _startup(url: str, folder: Path, size: Size) -> float:
    """Fill the archive and the recent history (the pruned jobs are gone), then time the real
    bot until it polls."""
    await open_database(url)
    try:
        await insert_archive(url, size.startup_rows, ACCOUNTS)
        recent = queries.now() - timedelta(days=HISTORY_DAYS // 2)
        await insert_jobs(url, size.startup_jobs - 10, finished_at=recent)
        await insert_jobs(url, 10, state="interrupted", finished_at=None)  # offered for /resume
        await analyze(url)
    finally:
        await close_database()
    data = folder / "data"
    data.mkdir(exist_ok=True)
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(data, telegram=telegram, database_url=url, job_history_days=HISTORY_DAYS)
        start = time.perf_counter()
        async with running_bot(settings):
            return time.perf_counter() - start
