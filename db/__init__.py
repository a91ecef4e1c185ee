"""Database: open, migrate and close (tortoise-orm, SQLite or PostgreSQL)."""

from __future__ import annotations

import logging

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

log = logging.getLogger(__name__)

APP = "archive"


def connection_name(url: str) -> str:
    """Name the connection after its backend.

    tortoise caches prepared SQL per connection *name*, so two backends sharing
    one name in a process (tests run SQLite and PostgreSQL) would reuse each
    other's SQL dialect.
    """
    return url.split("://", 1)[0].replace("postgresql", "postgres")


def tortoise_config(url: str) -> dict:
    """The tortoise config for our one app and its migrations package."""
    name = connection_name(url)
    return {
        "connections": {name: url},
        "apps": {
            APP: {
                "models": ["db.models"],
                "default_connection": name,
                "migrations": "db.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def open_database(url: str) -> None:
    """Connect, bring the schema up to date with tortoise's migrations, tune SQLite."""
    config = tortoise_config(url)
    await migrate(config=config)
    # migrate() initialises apps without connections; initialise fully for queries.
    # The global fallback makes the connections visible from every task: PTB runs
    # post_init, handlers and post_shutdown in tasks with separate contextvars.
    await Tortoise.close_connections()
    await Tortoise.init(config=config, _enable_global_fallback=True)
    if url.startswith("sqlite"):
        conn = connections.get(connection_name(url))
        # WAL lets /status read while a download writes; NORMAL is safe with WAL.
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    log.info("database ready (%s)", url.split("://", 1)[0])


async def close_database() -> None:
    """Close every connection."""
    await Tortoise.close_connections()
