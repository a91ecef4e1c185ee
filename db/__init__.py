"""Database: open, migrate and close (tortoise-orm, SQLite or PostgreSQL)."""

from __future__ import annotations

import logging

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

log = logging.getLogger(__name__)

APP = "archive"


def tortoise_config(url: str) -> dict:
    """The tortoise config for our one app and its migrations package."""
    return {
        "connections": {"default": url},
        "apps": {
            APP: {
                "models": ["db.models"],
                "default_connection": "default",
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
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    if url.startswith("sqlite"):
        conn = connections.get("default")
        # WAL lets /status read while a download writes; NORMAL is safe with WAL.
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    log.info("database ready (%s)", url.split("://", 1)[0])


async def close_database() -> None:
    """Close every connection."""
    await Tortoise.close_connections()
