"""Migration 0010 drops what nothing uses (request_log, accounts.complete_phases) and keeps every row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from db import close_database, connection_name, open_database, tortoise_config
from db.models import Account, FailedItem, Highlight, Job, MediaItem
from tests.conftest import pg_skip_reason
from tests.postgres import own_database

pytestmark = pytest.mark.fresh_database  # the databases start empty, then migrate to 0009 only


@pytest.fixture(params=["sqlite", "postgres"])
async def old_url(request, data_dir):
    """An empty database of each backend (nothing migrated yet)."""
    if request.param == "sqlite":
        yield f"sqlite://{data_dir / 'archive.sqlite3'}"
        return
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    async with own_database() as url:
        yield url


def _param(url: str, n: int) -> str:
    return "?" if url.startswith("sqlite") else f"${n}"


async def _columns(url: str, table: str) -> set[str]:
    conn = connections.get(connection_name(url))
    if url.startswith("sqlite"):
        _, rows = await conn.execute_query(f'PRAGMA table_info("{table}")')
        return {row["name"] for row in rows}
    rows = await conn.execute_query_dict(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1", [table]
    )
    return {row["column_name"] for row in rows}


async def _tables(url: str) -> set[str]:
    conn = connections.get(connection_name(url))
    if url.startswith("sqlite"):
        rows = await conn.execute_query_dict("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row["name"] for row in rows}
    rows = await conn.execute_query_dict(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
    )
    return {row["name"] for row in rows}


async def test_a_database_at_0009_upgrades_and_keeps_its_rows(old_url):
    await migrate(config=tortoise_config(old_url), target="archive.0009_request_counts")
    await Tortoise.close_connections()
    await Tortoise.init(config=tortoise_config(old_url))
    conn = connections.get(connection_name(old_url))
    p = lambda n: _param(old_url, n)  # noqa: E731
    now = datetime(2026, 1, 2, 3, tzinfo=UTC)
    stamp = now if not old_url.startswith("sqlite") else now.isoformat(sep=" ")
    await conn.execute_query(
        "INSERT INTO accounts (platform, username, display_name, tracked, created_at, updated_at, "
        "complete_phases, boundaries, stamps, phases) "
        f"VALUES ('instagram', 'alice', 'Alice', TRUE, {p(1)}, {p(2)}, "
        "'[\"posts\"]', '{\"posts\": 5}', '{}', '[\"stories\"]')",
        [stamp, stamp],
    )
    rows = await conn.execute_query_dict("SELECT id FROM accounts WHERE username = 'alice'")
    account_id = rows[0]["id"]
    # Tables that later migrations change get their rows as that version wrote them.
    await conn.execute_query(
        "INSERT INTO media_items (platform, media_id, kind, account_id, path, size, created_at) "
        f"VALUES ('instagram', '1', 'post', {p(1)}, 'p/1', 0, {p(2)})",
        [account_id, stamp],
    )
    job = await Job.create(account_id=account_id, state="completed", phases=["posts"], finished_at=now)
    await conn.execute_query(
        "INSERT INTO highlights (platform, highlight_id, account_id, title, folder, updated_at) "
        f"VALUES ('instagram', '9', {p(1)}, 'T', 'T', {p(2)})",
        [account_id, stamp],
    )
    await FailedItem.create(
        platform="instagram",
        media_id="2",
        account_id=account_id,
        phase="posts",
        kind="post",
        reason="x",
        recipe={},
    )
    await conn.execute_query(
        f"INSERT INTO request_log (hour, kind, count) VALUES ({p(1)}, 'timeline', 3)", [stamp]
    )
    assert "complete_phases" in await _columns(old_url, "accounts")
    await Tortoise.close_connections()

    await open_database(old_url)  # what the next start does: 0010 runs
    try:
        assert "complete_phases" not in await _columns(old_url, "accounts")
        assert "request_log" not in await _tables(old_url)
        alice = await Account.get(username="alice")
        assert (alice.id, alice.display_name, alice.boundaries, alice.phases) == (
            account_id,
            "Alice",
            {"posts": 5},
            ["stories"],
        )
        assert await MediaItem.filter(account=alice).count() == 1  # nothing cascaded or orphaned
        assert await Job.filter(id=job.id, account=alice).exists()
        assert await Highlight.filter(account=alice).count() == 1
        assert await FailedItem.filter(account=alice).count() == 1
        await Account.create(platform="instagram", username="bob")  # the new schema takes rows
    finally:
        await close_database()
    await open_database(old_url)  # and a second start applies nothing twice
    await close_database()
