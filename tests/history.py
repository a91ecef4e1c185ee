"""Years of job history, written straight into the database (tests and benchmarks).

One INSERT ... SELECT over a generated series per call: 40,000 or 1,000,000 rows in
seconds, where the ORM would take minutes row by row.
"""

from __future__ import annotations

from datetime import datetime

from tortoise import connections

from db import connection_name

COLUMNS = "kind, state, phases, counts, created_at, updated_at, finished_at, account_id, parent_id"


def series(url: str, count: int) -> tuple[str, str]:
    """(a WITH prefix, a FROM clause) giving rows i = 1..count on this backend."""
    if url.startswith("sqlite"):
        return f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) ", "n"
    return "", f"generate_series(1, {count}) AS n(i)"


def _typed(url: str, literal: str, pg_type: str) -> str:
    """A literal for a JSON or time column (PostgreSQL wants the type named in INSERT ... SELECT)."""
    return literal if url.startswith("sqlite") else f"{literal}::{pg_type}"


def _stamp(url: str, when: datetime | None) -> str:
    return "NULL" if when is None else _typed(url, f"'{when.isoformat(sep=' ')}'", "timestamptz")


async def insert_jobs(
    url: str,
    count: int,
    *,
    state: str = "completed",
    finished_at: datetime | None,
    kind: str = "download",
    account_id: int | None = None,
) -> None:
    """``count`` top-level jobs in one statement (created and finished at ``finished_at``)."""
    int(count)  # only numbers and our own literals reach the SQL below
    prefix, source = series(url, count)
    stamp = _stamp(url, finished_at)
    created = stamp if finished_at is not None else "CURRENT_TIMESTAMP"
    account = "NULL" if account_id is None else str(int(account_id))
    empty_list, empty_dict = _typed(url, "'[]'", "jsonb"), _typed(url, "'{}'", "jsonb")
    sql = (
        f"{prefix}INSERT INTO jobs ({COLUMNS}) SELECT '{kind}', '{state}', {empty_list}, {empty_dict}, "
        f"{created}, {created}, {stamp}, {account}, NULL FROM {source}"
    )
    await connections.get(connection_name(url)).execute_script(sql)


async def insert_children(url: str, per_parent: int = 1) -> None:
    """``per_parent`` download jobs under every sync-all, sharing its state and times."""
    conn = connections.get(connection_name(url))
    for _ in range(per_parent):
        await conn.execute_script(
            f"INSERT INTO jobs ({COLUMNS}) SELECT 'download', state, phases, counts, created_at, "
            "updated_at, finished_at, NULL, id FROM jobs WHERE kind = 'syncall'"
        )


async def insert_highlight_items(url: str, highlight_pk: int, account_id: int, count: int) -> None:
    """``count`` members of a highlight (media ids "0".."count-1"); every second one archived."""
    conn = connections.get(connection_name(url))
    prefix, source = series(url, count)
    text = "CAST(i - 1 AS TEXT)"
    now = _typed(url, "CURRENT_TIMESTAMP", "timestamptz")
    await conn.execute_script(
        f"{prefix}INSERT INTO highlight_items (highlight_id, media_id, added_at) "
        f"SELECT {int(highlight_pk)}, {text}, {now} FROM {source}"
    )
    await conn.execute_script(
        f"{prefix}INSERT INTO media_items (platform, media_id, kind, account_id, path, size, created_at) "
        f"SELECT 'instagram', {text}, 'highlight', {int(account_id)}, 'p/' || {text}, 0, {now} "
        f"FROM {source} WHERE (i - 1) % 2 = 0"
    )


async def analyze(url: str) -> None:
    """Planner statistics, as PostgreSQL's autovacuum gathers them soon after a bulk insert.

    Without them PostgreSQL's generic plan for a repeated IN (...) query scans the whole table."""
    await connections.get(connection_name(url)).execute_script("ANALYZE")


async def insert_archive(url: str, rows: int, accounts: int) -> None:
    """``accounts`` tracked Instagram accounts and ``rows`` archived files spread over them."""
    conn = connections.get(connection_name(url))
    now = _typed(url, "CURRENT_TIMESTAMP", "timestamptz")
    empty_list, empty_dict = _typed(url, "'[]'", "jsonb"), _typed(url, "'{}'", "jsonb")
    prefix, source = series(url, accounts)
    await conn.execute_script(
        f"{prefix}INSERT INTO accounts (platform, username, display_name, tracked, created_at, updated_at, "
        "boundaries, stamps, phases) "
        f"SELECT 'instagram', 'user' || CAST(i AS TEXT), '', TRUE, {now}, {now}, "
        f"{empty_dict}, {empty_dict}, {empty_list} FROM {source}"
    )
    first = (await conn.execute_query_dict("SELECT MIN(id) AS first FROM accounts"))[0]["first"]
    prefix, source = series(url, rows)
    await conn.execute_script(
        f"{prefix}INSERT INTO media_items (platform, media_id, kind, account_id, path, size, created_at) "
        f"SELECT 'instagram', CAST(i AS TEXT), 'post', {int(first)} + i % {int(accounts)}, "
        f"'downloads/instagram/x/posts/' || CAST(i AS TEXT) || '.jpg', 200000, {now} FROM {source}"
    )
