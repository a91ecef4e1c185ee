"""Shared fixtures: a data folder, real databases, and the fake outside world."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise import context as tortoise_context

from db import close_database, open_database
from tests.fakes.tls import FakeInternet
from tests.postgres import own_database, postgres_unavailable
from tests.schema_template import copy_sqlite, sqlite_template

# Fixtures of the Instagram source tests (ig, make_source, recorder, session_file) and the
# web gallery's (gallery).
pytest_plugins = ["tests.instagram_kit", "tests.web_kit"]

# Opt in to PTB 23's RetryAfter.retry_after as a timedelta (our code reads both forms).
os.environ.setdefault("PTB_TIMEDELTA", "1")
_PG_REASON: list[str | None] = []

# The slowest tests first (longest first, as measured with --durations), so that with `-n 4` they
# start at once and the run ends on short tests: xdist hands tests out in collection order, one at
# a time (--maxschedchunk=1 in pyproject.toml). Everything else keeps its order after them.
SLOW_FIRST = (
    "tests/test_delivery.py::test_group_gets_forty_new_files_without_a_single_429",
    "tests/test_bench_smoke.py::test_small_bench_prints_every_figure",
    "tests/test_delivery.py",
    "tests/test_delivery_faults.py",
    "tests/test_workers.py",
    "tests/test_worker_",
    "tests/test_queue_faults.py",
    "tests/test_bot_process.py",
    "tests/test_resume_command.py",
    "tests/test_chat.py",
    "tests/test_resume.py",
    "tests/test_login_chat.py",
    "tests/test_one_writer.py",
    "tests/test_schedule.py",
    "tests/test_phases.py",
)


def _rank(item: pytest.Item) -> int:
    return next((i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fresh_database: DATA_DIR starts without a database (the bot creates and migrates it)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slowest first (a stable sort: the same order in every xdist worker)."""
    items.sort(key=_rank)


async def pg_skip_reason() -> str | None:
    """Probe once per session: can we log in and create a database of our own?"""
    if not _PG_REASON:
        _PG_REASON.append(await postgres_unavailable())
    return _PG_REASON[0]


@pytest.fixture(autouse=True)
def no_database_left_open():
    """After each test (its event loop closed by then): a database a failed test left open is
    closed, so the failure stays that test's and the next tests on this worker can open theirs."""
    yield
    if Tortoise._get_context() is None:
        return
    try:
        asyncio.run(close_database())
    except Exception:  # connections bound to the test's closed loop (asyncpg): let them go
        tortoise_context._global_context = None


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory) -> Path:
    """A migrated SQLite file that every xdist worker of this run copies (built once)."""
    return sqlite_template(tmp_path_factory.getbasetemp().parent / "schema")


@pytest.fixture
def data_dir(request, tmp_path: Path, sqlite_schema: Path) -> Path:
    """DATA_DIR of one test, holding the bot's database already migrated (as after a first
    start), unless the test is marked ``fresh_database``."""
    path = tmp_path / "data"
    path.mkdir()
    if request.node.get_closest_marker("fresh_database") is None:
        copy_sqlite(sqlite_schema, path / "archive.sqlite3")
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
    """The same test on SQLite and, where reachable, on PostgreSQL (in a database of its own)."""
    if request.param == "sqlite":
        url = f"sqlite://{data_dir / 'archive.sqlite3'}"
        await open_database(url)
        yield url
        await close_database()
        return
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    async with own_database(migrated=True) as url:
        await open_database(url)
        try:
            yield url
        finally:
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
    internet.open_gates()  # nothing stays held for the next test
    for host in list(internet._handlers):
        internet.remove_host(host)
