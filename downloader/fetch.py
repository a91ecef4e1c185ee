"""Our media fetcher: one shared HTTP client, bounded concurrency, atomic files.

A file is streamed to a temporary name in its final folder and renamed only when
complete and its size matches Content-Length, so no partial file ever carries a
final name. Every disk operation (open, write, fsync, rename, unlink) runs in a
worker thread: a slow USB disk or NFS share must not stall the bot.

We ask for ``Accept-Encoding: identity``; a server that compresses anyway with
gzip or deflate is decoded, any other encoding is refused, so a compressed body
is never stored under a ``.jpg`` or ``.mp4`` name.

The client is aiohttp, not httpx: a full download is bound by this process's CPU,
and aiohttp's C parser and asyncio's TLS read path spend about a third of httpx's
CPU per byte (measured with ``python -m bench``; see README, Performance).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
import zlib
from collections.abc import Callable
from pathlib import Path

import aiohttp

from downloader.errors import DownloadError, Transient
from downloader.paths import TEMP_SUFFIX

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
# Content-Encodings we decode (with zlib, here, so aiohttp never refuses or guesses); others are refused.
DECODABLE = {"identity", "gzip", "deflate"}
CHUNK = 256 * 1024  # bytes gathered before one write: one thread hand-off per chunk, not per packet
# What a broken transfer looks like: aiohttp's errors, and a read or connect timeout.
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


class MediaGone(DownloadError):
    """The CDN refused or no longer has this file (403/404/410)."""


def temp_path_for(final: Path) -> Path:
    """A unique temporary name beside ``final`` (same folder, so rename is atomic)."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def publish(temp: Path, final: Path) -> int:
    """Flush ``temp`` to disk and atomically rename it to ``final``; return its size."""
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    size = temp.stat().st_size
    os.replace(temp, final)
    return size


class Fetcher:
    """Downloads URLs to files with retries; one instance shared by all jobs.

    Concurrency is bounded by the caller (the service), which checks for pause and
    cancel between items; ``connections`` caps the kept-alive connections.
    """

    def __init__(
        self,
        *,
        proxy: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connections: int = 8,
        retries: int = 3,
        backoff: float = 1.0,
        timeout: float = 60.0,
    ):
        self._proxy = proxy
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._connections = connections
        # No total limit (a large video may take long); a stalled read or connect fails.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=20.0, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._retries = retries
        self._backoff = backoff

    def _client(self) -> aiohttp.ClientSession:
        """The shared session, opened on first use (aiohttp wants a running event loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl),
                timeout=self._timeout,
                # Media are compressed already; a server that compresses anyway is decoded.
                headers={
                    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) archive-bot",
                    "Accept-Encoding": "identity",
                },
                trust_env=False,  # the proxy comes from our settings, not ambient variables
                auto_decompress=False,  # raw bytes, so Content-Length can be checked; decoded below
            )
        return self._session

    async def fetch(
        self,
        url: str,
        final: Path,
        headers: dict[str, str] | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Download ``url`` to ``final`` atomically; return the size in bytes."""
        for attempt in range(self._retries + 1):
            try:
                return await self._fetch_once(url, final, headers or {}, on_progress)
            except Transient as exc:
                if attempt == self._retries:
                    raise
                delay = self._backoff * 2**attempt
                log.info("retrying media in %.1fs after: %s", delay, exc.sentence)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _fetch_once(self, url, final: Path, headers, on_progress) -> int:
        """One attempt: stream to a temp file, verify size, rename."""
        temp = temp_path_for(final)
        try:
            async with self._client().get(url, headers=headers, proxy=self._proxy) as response:
                _raise_for_status(response)
                _check_encoding(response)
                received = await _stream_to(response, temp, on_progress)
                _check_complete(response, received)
            # fsync can take long on slow disks; keep the event loop (and the bot) responsive.
            return await asyncio.to_thread(publish, temp, final)
        except NETWORK_ERRORS as exc:
            raise Transient(
                f"The connection broke while downloading this file ({type(exc).__name__}); "
                "the next sync fetches it again."
            ) from exc
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def aclose(self) -> None:
        """Close the shared client."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    """Map HTTP status codes to our errors."""
    if response.status in (403, 404, 410):
        raise MediaGone(f"The platform refused this media file (HTTP {response.status}).")
    if response.status in RETRY_STATUS:
        raise Transient(f"The media server answered HTTP {response.status}.")
    if response.status >= 400:
        raise DownloadError(f"The media server answered HTTP {response.status}.")


def _encodings(response: aiohttp.ClientResponse) -> list[str]:
    """The Content-Encoding values, in the order they were applied."""
    values = response.headers.getall("Content-Encoding", [])
    return [part.strip().lower() for value in values for part in value.split(",") if part.strip()]


def _check_encoding(response: aiohttp.ClientResponse) -> None:
    """Refuse a body compressed in a way we cannot undo (it would be stored compressed)."""
    unknown = [value for value in _encodings(response) if value not in DECODABLE]
    if unknown:
        raise DownloadError(
            f"The media server sent this file compressed ({', '.join(unknown)}), which cannot be "
            "decoded; it was not saved."
        )


def _content_length(response: aiohttp.ClientResponse) -> int | None:
    """The size of the file when it is sent as is (a compressed body's size says nothing)."""
    if any(value != "identity" for value in _encodings(response)):
        return None
    return _header_length(response)


def _header_length(response: aiohttp.ClientResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _check_complete(response: aiohttp.ClientResponse, received: int) -> None:
    """Every byte the server announced arrived (counted before any decoding).

    aiohttp raises ClientPayloadError when the connection ends before Content-Length;
    this also catches a server that sends more than it announced.
    """
    expected = _header_length(response)
    if expected is not None and received != expected:
        raise Transient(f"Download was cut short ({received} of {expected} bytes).")


class _Decoder:
    """Undoes the response's gzip/deflate layers (last applied first), chunk by chunk."""

    def __init__(self, encodings: list[str]):
        self._layers = [_layer(e) for e in reversed(encodings) if e != "identity"]

    def feed(self, data: bytes) -> bytes:
        """Decoded bytes for the next raw chunk."""
        for layer in self._layers:
            data = layer.decompress(data)
        return data

    def flush(self) -> bytes:
        """What the layers still hold at the end of the body."""
        data = b""
        for layer in self._layers:
            data = layer.decompress(data) + layer.flush()
        return data


def _layer(encoding: str):
    """A zlib decompressor: gzip framing, or deflate as servers send it (zlib-wrapped or raw)."""
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    return _Deflate()


class _Deflate:
    """HTTP "deflate" is zlib-wrapped by the standard, raw by some servers: try the first, fall back."""

    def __init__(self):
        self._inner = zlib.decompressobj()
        self._started = False

    def decompress(self, data: bytes) -> bytes:
        """Decode the next chunk."""
        if not self._started and data:
            self._started = True
            try:
                return self._inner.decompress(data)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inner.decompress(data)

    def flush(self) -> bytes:
        """The rest of the decoded body."""
        return self._inner.flush()


async def _stream_to(response: aiohttp.ClientResponse, temp: Path, on_progress) -> int:
    """Write the decoded body to ``temp`` in chunks of CHUNK, off the event loop; return raw bytes read."""
    expected = _content_length(response)
    decoder = _Decoder(_encodings(response))
    received = written = 0
    buffer = bytearray()
    handle = await asyncio.to_thread(open, temp, "wb")
    try:
        while True:
            data = await response.content.read(CHUNK)
            received += len(data)
            buffer += decoder.feed(data) if data else decoder.flush()
            if buffer and (not data or len(buffer) >= CHUNK):
                await asyncio.to_thread(handle.write, bytes(buffer))
                written += len(buffer)
                buffer.clear()
                if on_progress is not None:
                    on_progress(written, expected)
            if not data:
                break
    except zlib.error as exc:
        raise Transient(f"The compressed answer could not be decoded ({exc}).") from exc
    finally:
        await asyncio.to_thread(handle.close)
    return received
