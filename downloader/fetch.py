"""Our media fetcher: one shared HTTP client, bounded concurrency, atomic files.

A file is streamed to a temporary name in its final folder and renamed only when
complete and its size matches Content-Length, so no partial file ever carries a
final name. Every disk operation (open, write, fsync, rename, unlink) runs in a
worker thread: a slow USB disk or NFS share must not stall the bot.

We ask for ``Accept-Encoding: identity``; a server that compresses anyway with
gzip or deflate is decoded, any other encoding is refused, so a compressed body
is never stored under a ``.jpg`` or ``.mp4`` name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx

from downloader.errors import DownloadError, Transient
from downloader.paths import TEMP_SUFFIX

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
# Content-Encodings we decode (httpx does it with the standard library); others are refused.
DECODABLE = {"identity", "gzip", "deflate"}
CHUNK = 256 * 1024


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
    cancel between items.
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
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(
            proxy=proxy,
            verify=ssl_context if ssl_context is not None else True,
            timeout=httpx.Timeout(timeout, connect=20.0),
            limits=limits,
            follow_redirects=True,
            # Media are compressed already; a server that compresses anyway is decoded.
            headers={
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) archive-bot",
                "Accept-Encoding": "identity",
            },
            trust_env=False,  # the proxy comes from our settings, not ambient variables
        )
        self._retries = retries
        self._backoff = backoff

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
            async with self._client.stream("GET", url, headers=headers) as response:
                _raise_for_status(response)
                _check_encoding(response)
                await _stream_to(response, temp, on_progress)
                _check_complete(response)
            # fsync can take long on slow disks; keep the event loop (and the bot) responsive.
            return await asyncio.to_thread(publish, temp, final)
        except httpx.HTTPError as exc:
            raise Transient(
                f"The connection broke while downloading this file ({type(exc).__name__}); "
                "the next sync fetches it again."
            ) from exc
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def aclose(self) -> None:
        """Close the shared client."""
        await self._client.aclose()


def _raise_for_status(response: httpx.Response) -> None:
    """Map HTTP status codes to our errors."""
    if response.status_code in (403, 404, 410):
        raise MediaGone(f"The platform refused this media file (HTTP {response.status_code}).")
    if response.status_code in RETRY_STATUS:
        raise Transient(f"The media server answered HTTP {response.status_code}.")
    if response.status_code >= 400:
        raise DownloadError(f"The media server answered HTTP {response.status_code}.")


def _encodings(response: httpx.Response) -> list[str]:
    """The Content-Encoding values, in the order they were applied."""
    values = response.headers.get_list("content-encoding", split_commas=True)
    return [value.strip().lower() for value in values]


def _check_encoding(response: httpx.Response) -> None:
    """Refuse a body compressed in a way we cannot undo (it would be stored compressed)."""
    unknown = [value for value in _encodings(response) if value not in DECODABLE]
    if unknown:
        raise DownloadError(
            f"The media server sent this file compressed ({', '.join(unknown)}), which cannot be "
            "decoded; it was not saved."
        )


def _content_length(response: httpx.Response) -> int | None:
    """The size of the file when it is sent as is (a compressed body's size says nothing)."""
    if any(value != "identity" for value in _encodings(response)):
        return None
    return _header_length(response)


def _header_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def _check_complete(response: httpx.Response) -> None:
    """Every byte the server announced arrived (counted before any decoding)."""
    expected, received = _header_length(response), response.num_bytes_downloaded
    if expected is not None and received != expected:
        raise Transient(f"Download was cut short ({received} of {expected} bytes).")


async def _stream_to(response: httpx.Response, temp: Path, on_progress) -> int:
    """Write the (decoded) body to ``temp`` chunk by chunk, off the event loop; return bytes written."""
    expected = _content_length(response)
    written = 0
    handle = await asyncio.to_thread(open, temp, "wb")
    try:
        async for chunk in response.aiter_bytes(CHUNK):
            await asyncio.to_thread(handle.write, chunk)
            written += len(chunk)
            if on_progress is not None:
                on_progress(written, expected)
    finally:
        await asyncio.to_thread(handle.close)
    return written
