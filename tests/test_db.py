"""The database on SQLite and PostgreSQL: schema from migrations, archive semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise import connections

from db import close_database, connection_name, open_database, queries
from db.models import Account, Job, MediaItem, RequestCount

MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "migrations"


async def test_migrations_create_schema_and_are_idempotent(any_db):
    """Opening twice applies nothing twice and keeps the data."""
    account = await Account.create(platform="instagram", username="alice")
    await close_database()
    await open_database(any_db)
    assert await Account.filter(id=account.id).exists()
    conn = connections.get(connection_name(any_db))
    _, rows = await conn.execute_query("SELECT name FROM tortoise_migrations")
    on_disk = sorted(p.stem for p in MIGRATIONS.glob("0*.py"))
    assert len(on_disk) >= 2
    assert sorted(row["name"] for row in rows) == on_disk


async def test_archive_is_unique_per_platform_and_media_id(any_db):
    account = await Account.create(platform="instagram", username="alice")
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    for size in (10, 20):  # recording twice updates, never doubles
        await queries.record_media(
            platform="instagram",
            media_id="1",
            kind="post",
            account=account,
            taken_at=when,
            path="downloads/x.jpg",
            size=size,
        )
    await queries.record_media(
        platform="tiktok",
        media_id="1",
        kind="video",
        account=account,
        taken_at=when,
        path="downloads/y.mp4",
        size=5,
    )
    assert await MediaItem.filter(platform="instagram").count() == 1
    assert (await MediaItem.get(platform="instagram", media_id="1")).size == 20
    assert await MediaItem.all().count() == 2


async def test_archived_paths_checks_in_batches(any_db):
    account = await Account.create(platform="tiktok", username="bob")
    await MediaItem.bulk_create(
        [
            MediaItem(platform="tiktok", media_id=str(i), kind="video", account=account, path=f"p/{i}")
            for i in range(0, 1500, 2)
        ]
    )
    found = await queries.archived_paths("tiktok", (str(i) for i in range(1500)))
    assert len(found) == 750  # more ids than one batch, every even one found
    assert found["1498"] == "p/1498" and "1499" not in found


async def test_running_jobs_become_interrupted(any_db):
    account = await Account.create(platform="instagram", username="alice")
    running = await Job.create(account=account, state="running", phases=["posts"])
    done = await Job.create(account=account, state="completed", phases=["posts"])
    interrupted = await queries.mark_interrupted()
    assert [j.id for j in interrupted] == [running.id]
    assert (await Job.get(id=done.id)).state == "completed"
    assert [j.id for j in await queries.resumable_jobs()] == [running.id]


async def test_settings_round_trip(any_db):
    assert await queries.get_setting("schedule", "none") == "none"
    await queries.set_setting("schedule", {"kind": "every", "seconds": 3600})
    await queries.set_setting("schedule", {"kind": "off"})
    assert await queries.get_setting("schedule") == {"kind": "off"}


async def test_old_finished_jobs_are_pruned_and_the_archive_kept(any_db):
    account = await Account.create(platform="instagram", username="alice")
    long_ago = queries.now() - timedelta(days=120)
    old = await Job.create(kind="syncall", state="completed", finished_at=long_ago)
    await Job.create(kind="download", account=account, parent=old, state="completed", finished_at=long_ago)
    recent = await Job.create(kind="download", account=account, state="completed", finished_at=queries.now())
    paused = await Job.create(kind="download", account=account, state="paused")
    await queries.record_media(
        platform="instagram",
        media_id="1",
        kind="post",
        account=account,
        taken_at=None,
        path="x",
        size=1,
        job_id=old.id,
    )
    assert await queries.prune_jobs(0) == 0  # 0 keeps everything
    assert await queries.prune_jobs(90) == 1
    assert sorted(await Job.all().values_list("id", flat=True)) == sorted([recent.id, paused.id])
    assert await MediaItem.all().count() == 1


async def test_request_counts_older_than_the_job_history_are_pruned(any_db):
    hour = queries.now().replace(minute=0, second=0, microsecond=0)
    for days in (0, 1, 30, 91):
        await RequestCount.create(
            hour=hour - timedelta(days=days), session="archivebot", kind="timeline", count=3
        )
    assert await queries.prune_request_counts(0) == 0
    assert await queries.prune_request_counts(90) == 1
    assert await queries.prune_request_counts(1) == 1  # never the last two days: the budget reads them
    assert sorted((hour - h).days for h in await RequestCount.all().values_list("hour", flat=True)) == [0, 1]
