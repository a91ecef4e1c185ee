"""Building blocks for delivery tests: the real bot against fake Telegram, Instagram and TikTok."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, TOKEN, make_settings, running_bot

GROUP = -100200300
MB = 1024 * 1024


def sha(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@contextmanager
def world_parts(net, tmp_path):
    """Fake Telegram, Instagram (alice: 6 posts, 1 story, no highlights) and TikTok, and a session file."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=6, stories=1, highlights=()))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        yield telegram, instagram, FakeTikTok(net, page_size=5), session


@asynccontextmanager
async def bot(world_parts, data_dir, **overrides):
    """The real bot against the fakes (startable twice on the same data: a restart)."""
    telegram, instagram, tiktok, session = world_parts
    settings = make_settings(
        data_dir,
        net=instagram.internet,
        telegram=telegram,
        instagram_session_file=session,
        status_edit_interval=1.2,
        download_retries=0,
        **overrides,
    )
    async with running_bot(settings) as app:
        yield World(telegram, instagram, tiktok, app)


async def finished(world: World, mark: int, chat: int = OWNER):
    """Wait for the status message of the run started after ``mark`` to say Completed."""
    return await world.telegram.await_for(
        "editMessageText",
        chat_id=chat,
        after=mark,
        predicate=lambda c: "Completed:" in str(c.params.get("text")),
        timeout=60,
    )


def received(telegram: FakeTelegram, chat: int = OWNER) -> list:
    """What the fake Telegram received in ``chat``, in order."""
    return [r for r in telegram.received if r.chat_id == chat]


def too_many(telegram: FakeTelegram) -> list:
    """The calls answered 429, to show in a failure."""
    return [
        (c.method, c.params.get("chat_id"), round(c.time % 1000, 2))
        for c in telegram.calls
        if c.status == 429
    ]


async def failed_call(telegram: FakeTelegram, method: str, after: int, status: int = 400):
    """Wait for a refused ``method`` call (await_for only sees successes)."""
    deadline = time.monotonic() + 60
    while not (found := [c for c in telegram.calls[after:] if c.method == method and c.status == status]):
        assert time.monotonic() < deadline, f"no {method} answered {status}"
        await asyncio.sleep(0.05)
    return found[0]


class WriteLock:
    """Another connection that takes SQLite's write lock the moment Telegram accepted a send
    (``FakeTelegram.on_sent``), so the bot's next database write fails with "database is locked"."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / "archive.sqlite3"
        self.armed = True
        self.taken = threading.Event()
        self._conn: sqlite3.Connection | None = None

    def on_sent(self, call) -> None:
        """Take the lock at the first send while armed (in the fake's thread, before it answers)."""
        if self.armed and self._conn is None:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("BEGIN IMMEDIATE")
            self.taken.set()

    def release(self) -> None:
        """End the transaction; the next send does not take it again until ``arm()``."""
        self.armed = False
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None

    def arm(self) -> None:
        self.armed = True
        self.taken.clear()


async def until(condition, what: str, timeout: float = 60) -> None:
    """Wait until ``condition()`` is true, with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def rows_become(query, count: int, timeout: float = 30) -> None:
    """Wait until ``query`` (a tortoise queryset) counts ``count`` rows, with a deadline."""
    deadline = time.monotonic() + timeout
    while (found := await query.count()) != count:
        assert time.monotonic() < deadline, f"{found} rows, not {count}"
        await asyncio.sleep(0.05)
