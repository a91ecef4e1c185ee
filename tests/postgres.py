"""The PostgreSQL server tests and benchmarks use, when one is reachable.

Nothing here touches a database it did not create: each user gets a fresh
database named ``archive_test_<random>`` on the server of ``TEST_POSTGRES_URL``
(which only serves to log in), and drops it afterwards.
"""

from __future__ import annotations

import os
import secrets
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from tests.schema_template import migrate_in_child, postgres_template_name

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
TEST_DB_PREFIX = "archive_test_"
TEMPLATE_LOCK = 0x61726368  # pg_advisory_lock key: one test process builds the template at a time


def where(url: str = PG_URL) -> str:
    """host:port/database of a URL, without credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def _asyncpg_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def postgres_unavailable(url: str = PG_URL) -> str | None:
    """None when we can log in at ``url`` and create databases there, else why not."""
    import asyncpg

    try:
        conn = await asyncpg.connect(_asyncpg_url(url), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"cannot log in to PostgreSQL at {where(url)} ({reason})"
    try:
        allowed = await conn.fetchval(
            "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
        )
    finally:
        await conn.close()
    if not allowed:
        return f"the PostgreSQL user at {where(url)} may not create databases (CREATEDB)"
    return None


async def create_test_database(url: str = PG_URL, *, migrated: bool = False) -> str:
    """Create a database of our own beside ``url``'s, empty or ``migrated``; return its URL."""
    import asyncpg

    name = f"{TEST_DB_PREFIX}{secrets.token_hex(6)}"
    conn = await asyncpg.connect(_asyncpg_url(url))
    try:
        template = f' TEMPLATE "{await _template(conn, url)}"' if migrated else ""
        await conn.execute(f'CREATE DATABASE "{name}"{template}')
    finally:
        await conn.close()
    return with_database(url, name)


async def _template(conn, url: str) -> str:
    """The migrated template database for these migrations, made by the first who needs it."""
    import asyncio

    name = postgres_template_name()
    await conn.execute("SELECT pg_advisory_lock($1)", TEMPLATE_LOCK)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            building = f"{TEST_DB_PREFIX}building_{secrets.token_hex(4)}"
            await conn.execute(f'CREATE DATABASE "{building}"')
            try:
                await asyncio.to_thread(migrate_in_child, with_database(url, building))
            except BaseException:
                await conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                raise
            await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')  # whole or absent
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", TEMPLATE_LOCK)
    return name


async def drop_test_database(test_url: str, url: str = PG_URL) -> None:
    """Drop a database that ``create_test_database`` made (and refuse any other)."""
    import asyncpg

    name = urlsplit(test_url).path.lstrip("/")
    if not name.startswith(TEST_DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a database the tests created")
    conn = await asyncpg.connect(_asyncpg_url(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def own_database(url: str = PG_URL, *, migrated: bool = False):
    """A fresh database for the block's duration (empty, or ``migrated`` to the latest schema)."""
    test_url = await create_test_database(url, migrated=migrated)
    try:
        yield test_url
    finally:
        await drop_test_database(test_url, url)
