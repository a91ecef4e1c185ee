"""The PostgreSQL test helpers: an honest skip reason, and only their own databases touched."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from tests.postgres import (
    PG_URL,
    TEST_DB_PREFIX,
    create_test_database,
    drop_test_database,
    own_database,
    postgres_unavailable,
    where,
    with_database,
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: connections are refused


async def test_a_closed_port_is_a_reason():
    url = f"postgres://postgres@127.0.0.1:{_closed_port()}/test"
    reason = await postgres_unavailable(url)
    assert reason is not None and where(url) in reason and "cannot log in" in reason


async def _require_postgres() -> None:
    reason = await postgres_unavailable()
    if reason:
        pytest.skip(reason)


async def test_a_failed_login_is_a_reason_not_an_error():
    """A server that listens but refuses the login is a skip reason, not a failing test."""
    await _require_postgres()
    url = with_database(PG_URL, "no_such_database_here")
    reason = await postgres_unavailable(url)
    assert reason is not None and "no_such_database_here" in reason


async def _databases() -> set[str]:
    conn = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
    try:
        return {row["datname"] for row in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


def _not_tests(names: set[str]) -> set[str]:
    """The server's other databases: tests running beside this one (-n 4) create and drop theirs."""
    return {name for name in names if not name.startswith(TEST_DB_PREFIX)}


async def test_own_database_is_created_and_dropped_and_nothing_else_is_touched():
    await _require_postgres()
    before = await _databases()
    async with own_database() as url:
        name = url.rsplit("/", 1)[1]
        assert name.startswith("archive_test_") and name not in before
        during = await _databases()
        assert name in during and _not_tests(during) == _not_tests(before)
    after = await _databases()
    assert name not in after and _not_tests(after) == _not_tests(before)


async def test_dropping_a_database_it_did_not_create_is_refused():
    await _require_postgres()
    with pytest.raises(ValueError, match="not a database the tests created"):
        await drop_test_database(PG_URL)
    url = await create_test_database()
    await drop_test_database(url)
    assert url.rsplit("/", 1)[1] not in await _databases()
