"""A TCP relay in front of a fake server that can go down and come back on the same port.

While down, nothing listens on the port (connections are refused, as when the
network or the server is not there yet) and every relayed connection is cut.
While up, it relays bytes both ways to the target port. The state of the fake
behind it (messages, update ids) survives the outage, as Telegram's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import threading
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on right now, below the range the system hands to outgoing
    connections: a port from that range (what ``bind(0)`` gives) can be taken by one of the
    suite's many connections before the bot listens on it."""
    low = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(max(1024, low - 10_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port found below {low}")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


class Relay:
    """127.0.0.1:``port`` -> 127.0.0.1:``target``, switchable with ``up()`` and ``down()``."""

    def __init__(self, target: int, port: int | None = None):
        self.target = target
        self.port = port or free_port()
        self.connections = 0  # connections accepted while up
        self.cut_replies = 0  # replies dropped by cut_reply_to()
        self._trap: bytes | None = None  # SQL text whose next reply is dropped
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread.start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>, for TELEGRAM_API_URL."""
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Start listening and relaying."""
        self._run(self._up())

    def down(self) -> None:
        """Stop listening (refuse) and cut every open connection."""
        self._run(self._down())

    def cut_reply_to(self, sql: bytes) -> None:
        """PostgreSQL only: let the next INSERT whose text contains ``sql`` reach the server and
        run there, then cut that connection before its reply gets back: the
        client sees a connection lost mid-statement for a row that was stored."""
        self._trap = sql

    def close(self) -> None:
        """Go down and stop the thread."""
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._client, "127.0.0.1", self.port, reuse_address=True
            )

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            if writer.transport is not None:
                writer.transport.abort()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        trapped = _Trap(self)
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer, trapped.outgoing)),
            asyncio.ensure_future(_pump(up_reader, writer, trapped.incoming)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for each in (writer, up_writer):
            self._writers.discard(each)
            each.close()


BIND_COMPLETE = b"2\x00\x00\x00\x04"  # PostgreSQL's BindComplete message, whole
PARSE = re.compile(rb"P[\s\S]{4}(__asyncpg_stmt_\w+__)\x00([^\x00]+)\x00")  # Parse: name, SQL


class _Trap:
    """One relayed connection's view of the wire for Relay.cut_reply_to()."""

    def __init__(self, relay: Relay):
        self.relay = relay
        self.prepared: dict[bytes, bytes] = {}  # statement name -> its SQL (asyncpg caches them)
        self.armed = False

    def outgoing(self, data: bytes) -> bool:
        """Client -> server: note prepared statements and a Parse or Bind of the trapped INSERT."""
        self.prepared.update(PARSE.findall(data))
        sql = self.relay._trap
        if sql is None:
            return True
        trapped = [name for name, text in self.prepared.items() if sql in text]
        if sql in data or any(name + b"\x00" in data for name in trapped):
            self.armed = True
        return True

    def incoming(self, data: bytes) -> bool:
        """Server -> client: False (cut) for the reply that says the trapped INSERT ran (its
        BindComplete, sent with the row and ReadyForQuery once the statement was committed)."""
        if not (self.armed and self.relay._trap is not None and BIND_COMPLETE in data):
            return True
        self.relay._trap, self.armed = None, False
        self.relay.cut_replies += 1
        return False


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, look=None) -> None:
    """Copy bytes until either side closes, or ``look(data)`` says to cut the connection."""
    with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
        while data := await reader.read(65536):
            if look is not None and not look(data):
                return
            writer.write(data)
            await writer.drain()
