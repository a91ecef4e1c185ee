"""A fake internet for tests: one TLS server for many host names behind a CONNECT proxy.

Real client libraries (requests inside instaloader, yt-dlp, httpx) reach the
fake sites exactly as they reach the real ones: through ``HTTPS_PROXY`` and a
TLS handshake that they verify against a test certificate authority. The proxy
tunnels only host names a test registered and refuses everything else with 403,
so a stray request to the real internet fails loudly instead of hanging.

Everything runs on its own event loop in a background thread, so blocking
libraries in worker threads and a test's own event loop can both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import trustme
from aiohttp import web

from tests.fakes.gate import Gate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Every name the fake sites answer for; one leaf certificate covers them all.
CERT_NAMES = (
    "www.instagram.com",
    "i.instagram.com",
    "instagram.com",
    "*.instagram.com",
    "*.cdninstagram.com",
    "scontent.cdninstagram.com",
    "*.fbcdn.net",
    "www.tiktok.com",
    "tiktok.com",
    "*.tiktok.com",
    "*.tiktokcdn.com",
    "*.tiktokcdn-us.com",
    "*.tiktokv.com",
    "*.byteoversea.com",
)

_CHUNK = 16 * 1024


@dataclass
class Req:
    """One request the fake served (what the client sent, as the server saw it)."""

    method: str
    host: str
    path: str
    query: dict
    headers: dict
    time: float
    body: bytes = b""
    status: int | None = None  # filled in once the handler answered


@dataclass
class _Tunnel:
    tasks: set = field(default_factory=set)
    writers: set = field(default_factory=set)


def host_matches(pattern: str, host: str) -> bool:
    """True when ``host`` is ``pattern`` or, for ``*.example.com``, any name below it."""
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return pattern == host


class FakeInternet:
    """A TLS server dispatching by Host header, a CONNECT proxy and a test CA."""

    def __init__(self) -> None:
        self.requests: list[Req] = []
        self.connects: list[str] = []
        self.latency: float = 0.0
        self.bandwidth: int | None = None
        self.gates: list[Gate] = []  # the fakes' CDNs hold files half-way on cue (see gate.py)
        self._handlers: dict[str, Handler] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="fake-internet-")
        self._ca = trustme.CA()
        self._leaf = self._ca.issue_cert(*CERT_NAMES)
        self.ca_path = str(Path(self._dir.name) / "test-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._proxy_server: asyncio.AbstractServer | None = None
        self._tunnels = _Tunnel()
        self.tls_port = 0
        self.proxy_port = 0

    # ----- public API -------------------------------------------------------

    @property
    def proxy_url(self) -> str:
        """URL of the CONNECT proxy, for HTTPS_PROXY."""
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point requests/yt-dlp/httpx at the fake."""
        no_proxy = "127.0.0.1,localhost"
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            "REQUESTS_CA_BUNDLE": self.ca_path,
            # requests falls back to CURL_CA_BUNDLE, which some machines set globally.
            "CURL_CA_BUNDLE": self.ca_path,
            "SSL_CERT_FILE": self.ca_path,
            "CA_BUNDLE": self.ca_path,
        }

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting only the test CA (for httpx/aiohttp clients)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def add_host(self, host: str, handler: Handler) -> None:
        """Serve ``host`` (exact, or a wildcard like ``*.cdninstagram.com``) with ``handler``."""
        self._handlers[host.lower()] = handler

    def new_gate(self) -> Gate:
        """A gate for one fake's CDN, open until a test closes it (all opened by ``open_gates``)."""
        gate = Gate()
        self.gates.append(gate)
        return gate

    def open_gates(self) -> None:
        """Let every held file finish (at the end of a test: nothing stays held for the next)."""
        for gate in self.gates:
            gate.open()
        self.gates.clear()

    def remove_host(self, host: str) -> None:
        """Stop serving ``host``; the proxy refuses it again."""
        self._handlers.pop(host.lower(), None)

    def count(self, host: str | None = None, path_prefix: str | None = None) -> int:
        """How many requests were served, optionally for one host and/or path prefix."""
        return sum(
            1
            for r in list(self.requests)
            if (host is None or host_matches(host, r.host))
            and (path_prefix is None or r.path.startswith(path_prefix))
        )

    def clear(self) -> None:
        """Forget recorded requests and CONNECTs (between phases of a test)."""
        self.requests.clear()
        self.connects.clear()

    def start(self) -> FakeInternet:
        """Start the loop thread, the TLS server and the proxy; return self."""
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, args=(started,), name="fake-internet", daemon=True
        )
        self._thread.start()
        started.wait()
        future = asyncio.run_coroutine_threadsafe(self._start_servers(), self._loop)
        future.result(timeout=10)
        return self

    def stop(self) -> None:
        """Close every connection and server, stop the thread, delete the CA file."""
        if self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._stop_servers(), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None
        self._dir.cleanup()

    def __enter__(self) -> FakeInternet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handler_for(self, host: str) -> Handler | None:
        """The handler serving ``host``: an exact registration wins over a wildcard."""
        host = host.lower()
        if host in self._handlers:
            return self._handlers[host]
        for pattern, handler in list(self._handlers.items()):
            if pattern.startswith("*.") and host_matches(pattern, host):
                return handler
        return None

    async def send_bytes(
        self,
        request: web.Request,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: dict[str, str] | None = None,
        abort_after: int | None = None,
        per_chunk_delay: float = 0.0,
        per_byte_delay: float = 0.0,
        stall_seconds: float = 0.0,
        on_sent: Callable[[int], None] | None = None,
        gate: Gate | None = None,
    ) -> web.StreamResponse:
        """Stream ``data`` honouring ``bandwidth`` and the delays.

        ``on_sent(n)`` is told each time ``n`` more bytes were handed to the connection.
        ``abort_after`` sends only that many bytes, waits ``stall_seconds`` (a stalled
        transfer) and then cuts the connection, so the client sees a short read.
        A file the ``gate`` does not admit stops half-way until the gate opens.
        A HEAD request gets the headers only.
        """
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = content_type
        response.content_length = len(data)
        await response.prepare(request)
        if request.method == "HEAD":
            await response.write_eof()
            return response
        limit = len(data) if abort_after is None else min(abort_after, len(data))
        sent, pause_at = 0, -1 if gate is None or gate.admit() else limit // 2
        while sent < limit:
            end = min(sent + _CHUNK, limit)
            chunk = data[sent : pause_at if sent < pause_at < end else end]
            try:
                await response.write(chunk)
            except ConnectionError:
                return response  # the client hung up (a stopped download): nothing more to send
            sent += len(chunk)
            if on_sent is not None:
                on_sent(len(chunk))
            await self._throttle(len(chunk), per_chunk_delay + per_byte_delay * len(chunk))
            if sent == pause_at:
                await gate.hold()
        if limit < len(data):
            if stall_seconds:
                await asyncio.sleep(stall_seconds)
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    # ----- the loop thread --------------------------------------------------

    def _run_loop(self, started: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(started.set)
        self._loop.run_forever()

    async def _start_servers(self) -> None:
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(server_context)
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_context)
        await site.start()
        self.tls_port = site._server.sockets[0].getsockname()[1]
        self._proxy_server = await asyncio.start_server(self._proxy_client, "127.0.0.1", 0)
        self.proxy_port = self._proxy_server.sockets[0].getsockname()[1]

    async def _stop_servers(self) -> None:
        if self._proxy_server is not None:
            self._proxy_server.close()
        for writer in list(self._tunnels.writers):
            writer.close()
        for task in list(self._tunnels.tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----- the TLS server ---------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = Req(
            method=request.method,
            host=_host_only(request.host),
            path=request.path,
            query={k: ",".join(request.query.getall(k)) for k in request.query},
            headers=dict(request.headers),
            time=time.time(),
            body=await request.read() if request.can_read_body else b"",
        )
        self.requests.append(record)
        if self.latency:
            await asyncio.sleep(self.latency)
        response = await handler(request)
        record.status = response.status
        if self.bandwidth and isinstance(response, web.Response) and not response.prepared:
            return await self._throttled_copy(request, response)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        handler = self.handler_for(_host_only(request.host))
        if handler is None:
            return web.Response(status=421, text=f"fake internet: no site for {request.host}\n")
        return await handler(request)

    async def _throttled_copy(self, request: web.Request, response: web.Response) -> web.StreamResponse:
        body = response.body if isinstance(response.body, bytes) else b""
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return await self.send_bytes(
            request,
            body,
            content_type=response.content_type,
            status=response.status,
            headers=headers,
        )

    async def _throttle(self, nbytes: int, extra_delay: float) -> None:
        delay = extra_delay
        if self.bandwidth:
            delay += nbytes / self.bandwidth
        if delay:
            await asyncio.sleep(delay)

    # ----- the CONNECT proxy ------------------------------------------------

    async def _proxy_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._tunnels.writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            if len(parts) < 2 or parts[0].upper() != "CONNECT":
                await _refuse(writer, 405, "only CONNECT is supported")
                return
            target = parts[1]
            self.connects.append(target)
            host, _, port = target.rpartition(":")
            if port != "443" or self.handler_for(host) is None:
                await _refuse(writer, 403, f"fake internet refuses {target}")
                return
            await self._tunnel(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tunnels.writers.discard(writer)
            writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.tls_port)
        self._tunnels.writers.add(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer, writer.get_extra_info("socket"))),
            asyncio.ensure_future(_pump(up_reader, writer)),
        ]
        self._tunnels.tasks.update(pumps)
        try:
            # Either side closing ends the tunnel (a server abort must reach the client).
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self._tunnels.tasks.discard(pump)
            self._tunnels.writers.discard(up_writer)
            up_writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, quickack_socket=None) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError, OSError):
        while True:
            _quickack(quickack_socket)
            data = await reader.read(65536)
            if not data:
                return
            writer.write(data)
            await writer.drain()


def _quickack(sock) -> None:
    """ACK the client at once: requests sends headers and body in two writes with Nagle on,
    so a delayed ACK here would add ~40 ms to every POST (Linux only; elsewhere a no-op)."""
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is not None and option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = (reason + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _host_only(host: str) -> str:
    """Drop a ``:port`` from a Host header value."""
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()
