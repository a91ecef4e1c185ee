"""PostgreSQL LISTEN/NOTIFY between the bot and its workers: events up, control requests down.

The database is the one thing every process already shares, so no second channel is needed.
One connection of its own per process; it comes back by itself after the database went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)
EVENTS = "archive_events"  # worker -> bot: progress of jobs
CONTROL = "archive_control"  # bot -> workers: pause / cancel a job
CHECK = 2.0  # seconds between checks that the connection is still there


def asyncpg_url(url: str) -> str:
    """DATABASE_URL without tortoise's query options (asyncpg would take them as server settings)."""
    parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(query=""))


class Relay:
    """Sends and receives notifications on the shared database."""

    def __init__(self, database_url: str):
        self.url = asyncpg_url(database_url)
        self._listeners: dict[str, Callable[[str], None]] = {}
        self._conn: asyncpg.Connection | None = None
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []

    async def start(self, listeners: dict[str, Callable[[str], None]]) -> None:
        """Connect, listen on each channel (callback(payload) on the loop), start sending."""
        self._listeners = listeners
        await self._connect()
        self._tasks = [
            asyncio.create_task(self._keep_connected(), name="relay-watch"),
            asyncio.create_task(self._send_loop(), name="relay-send"),
        ]

    def send(self, channel: str, payload: str) -> None:
        """Queue a notification (sent in order, also from event callbacks)."""
        self._outbox.put_nowait((channel, payload))

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued notifications are sent (before a worker exits)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._outbox.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop sending and listening."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=10)
        for channel, callback in self._listeners.items():
            await conn.add_listener(channel, _adapter(callback))
        self._conn = conn

    async def _keep_connected(self) -> None:
        while True:
            await asyncio.sleep(CHECK)
            if self._conn is not None and not self._conn.is_closed():
                continue
            try:
                await self._connect()
                log.info("notifications between the bot and its workers work again")
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot reach the database for notifications (%s); trying again", exc)

    async def _send_loop(self) -> None:
        while True:
            channel, payload = await self._outbox.get()
            while True:
                try:
                    await self._conn.execute("SELECT pg_notify($1, $2)", channel, payload)
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("could not send a notification (%s); trying again", exc)
                    await asyncio.sleep(CHECK)


def _adapter(callback: Callable[[str], None]):
    def on_notify(_conn, _pid, _channel, payload: str) -> None:
        try:
            callback(payload)
        except Exception:
            log.exception("a notification could not be handled")

    return on_notify
