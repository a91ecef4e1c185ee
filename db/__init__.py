"""Database: open, migrate and close (tortoise-orm, SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import pkgutil
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

from db.patience import connection_lost, describe, uncounted

log = logging.getLogger(__name__)

APP = "archive"
START_DELAYS = (2.0, 60.0)  # start-up: first wait for PostgreSQL, and the longest


class DatabaseStartError(Exception):
    """The database cannot be opened, in one sentence (a missing database, an unreachable server)."""


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
    connection: str | dict = url
    if name == "postgres":
        # Our asyncpg client: a running job's statements wait out a lost connection.
        connection = expand_db_url(url) | {"engine": "db.pg_client"}
        # No connection floor: asyncpg would restore it after an outage with a traceback a second.
        connection["credentials"].setdefault("minsize", 0)
    return {
        "connections": {name: connection},
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


async def open_database(url: str, *, wait: bool = False, delays: tuple[float, float] = START_DELAYS) -> None:
    """Connect, bring the schema up to date with tortoise's migrations, tune SQLite.

    ``wait``: a PostgreSQL server that is not up yet (a machine still booting) is waited
    for with capped backoff, one log line per attempt; without it, or for a database that
    does not exist, DatabaseStartError says why in one sentence."""
    config = tortoise_config(url)
    delay, attempt = delays[0], 1
    while True:
        try:
            with uncounted():  # each attempt is logged below, not as an outage
                await refuse_newer(config)
                await migrate(config=config)
            break
        except DatabaseStartError:
            raise
        except Exception as exc:
            await Tortoise.close_connections()
            raise_if_missing(url, exc)
            if not (connection_lost(exc) and connection_name(url) == "postgres"):
                raise
            if not wait:
                raise DatabaseStartError(f"{_where(url)} is not reachable ({describe(exc)}).") from None
            _log_attempt(url, exc, attempt, delay)
            await asyncio.sleep(delay)
            delay, attempt = min(delays[1], delay * 2), attempt + 1
    if attempt > 1:
        log.info("PostgreSQL answered on attempt %d", attempt)
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


def known_migrations() -> list[str]:
    """The migrations this version of the code has, in order (db/migrations/0001_... )."""
    import db.migrations

    return sorted(m.name for m in pkgutil.iter_modules(db.migrations.__path__) if m.name[:4].isdigit())


async def applied_migrations(config: dict) -> list[str]:
    """The migrations recorded in the database (none for a new one); connects and disconnects."""
    await Tortoise.init(config=config)
    try:
        conn = connections.get(next(iter(config["connections"])))
        if conn.capabilities.dialect == "sqlite":
            found = "SELECT name FROM sqlite_master WHERE name = 'tortoise_migrations'"
        else:
            found = "SELECT to_regclass('tortoise_migrations') AS name"
        if not [row for row in await conn.execute_query_dict(found) if row["name"]]:
            return []
        rows = await conn.execute_query_dict(f"SELECT name FROM tortoise_migrations WHERE app = '{APP}'")
        return sorted(row["name"] for row in rows)
    finally:
        await Tortoise.close_connections()


async def refuse_newer(config: dict) -> None:
    """A database migrated by a newer version of the bot (a downgrade) is not run on: it would break."""
    unknown = sorted(set(await applied_migrations(config)) - set(known_migrations()))
    if unknown:
        raise DatabaseStartError(
            f"The database was upgraded by a newer version of the bot (its migration {unknown[-1]} is "
            "unknown to this one): run the newer version again, or restore a backup made with this one."
        )


def raise_if_missing(url: str, exc: BaseException) -> None:
    """Turn "database does not exist" into one sentence that says how to create it."""
    import asyncpg

    current: BaseException | None = exc
    while current is not None and not isinstance(current, asyncpg.InvalidCatalogNameError):
        current = current.__cause__ or current.__context__
    if current is None:
        return
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    where = f"-h {parts.hostname or 'localhost'} -p {parts.port or 5432}"
    user = f" -U {parts.username}" if parts.username else ""
    raise DatabaseStartError(
        f"DATABASE_URL names the PostgreSQL database {name!r}, which does not exist on "
        f"{parts.hostname or 'localhost'}:{parts.port or 5432}; create it with: "
        f"createdb {where}{user} {name}"
    ) from None


def _where(url: str) -> str:
    """ "PostgreSQL at host:port", without credentials."""
    parts = urlsplit(url)
    return f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}"


def _log_attempt(url: str, exc: BaseException, attempt: int, delay: float) -> None:
    next_try = datetime.now(UTC) + timedelta(seconds=delay)
    log.warning(
        "%s is not reachable (%s); attempt %d failed, next try at %s (in %g s)",
        _where(url),
        describe(exc),
        attempt,
        next_try.strftime("%H:%M:%S UTC"),
        delay,
    )


async def close_database() -> None:
    """Close every connection."""
    await Tortoise.close_connections()
