"""Shared fixtures: a data folder, real databases, and the fake outside world."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from db import close_database, open_database
from tests.fakes.tls import FakeInternet

# Opt in to PTB 23's RetryAfter.retry_after as a timedelta (our code reads both forms).
os.environ.setdefault("PTB_TIMEDELTA", "1")
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def postgres_reason() -> str | None:
    """None when PostgreSQL answers at PG_URL, else why the PostgreSQL tests are skipped."""
    url = urlsplit(PG_URL)
    try:
        with socket.create_connection((url.hostname, url.port or 5432), timeout=2):
            return None
    except OSError as exc:
        return f"no PostgreSQL reachable at {url.hostname}:{url.port or 5432} ({exc.strerror or exc})"


_PG_REASON: list[str | None] = []


def pg_skip_reason() -> str | None:
    """Probe once per session."""
    if not _PG_REASON:
        _PG_REASON.append(postgres_reason())
    return _PG_REASON[0]


async def reset_postgres() -> None:
    """An empty public schema, so every PostgreSQL test starts from migrations."""
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://"))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """DATA_DIR of one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def db(data_dir: Path):
    """A real SQLite file database, migrated."""
    url = f"sqlite://{data_dir / 'archive.sqlite3'}"
    await open_database(url)
    yield url
    await close_database()


@pytest.fixture(params=["sqlite", "postgres"])
async def any_db(request, data_dir: Path):
    """The same test on SQLite and, where reachable, on PostgreSQL."""
    if request.param == "postgres":
        reason = pg_skip_reason()
        if reason:
            pytest.skip(reason)
        await reset_postgres()
        url = PG_URL
    else:
        url = f"sqlite://{data_dir / 'archive.sqlite3'}"
    await open_database(url)
    yield url
    await close_database()


@pytest.fixture(scope="session")
def internet():
    """One fake internet (TLS sites behind a CONNECT proxy) for the whole session."""
    with FakeInternet() as fake:
        yield fake


@pytest.fixture
def net(internet: FakeInternet, monkeypatch):
    """The fake internet with this process's environment pointing at it, counters cleared."""
    for name, value in internet.env.items():
        monkeypatch.setenv(name, value)
    internet.clear()
    internet.latency = 0.0
    internet.bandwidth = None
    yield internet
    for host in list(internet._handlers):
        internet.remove_host(host)
