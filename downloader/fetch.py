"""Our media fetcher: one shared HTTP client, bounded concurrency, atomic files.

A file is streamed to a partial file in its final folder (see partials.py) and
renamed only when complete and its size matches Content-Length, so no partial file
ever carries a final name. A stop request ends a transfer at once and keeps its
partial file; the next attempt continues it with a Range request when the server
proves (206, Content-Range, the same length, ETag and Last-Modified) that it is the
same file, and starts over otherwise. Every disk operation (open, write, fsync,
rename, unlink) runs in a worker thread: a slow USB disk or NFS share must not
stall the bot.

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
import re
import secrets
import ssl
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import aiohttp

from downloader import partials
from downloader.encoding import Decoder, check_encoding, encodings
from downloader.errors import DownloadError, StopRequested, Transient
from downloader.partials import Validators
from downloader.paths import TEMP_SUFFIX

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
# Content-Encodings we decode (with zlib, here, so aiohttp never refuses or guesses); others are refused.
CHUNK = 256 * 1024  # bytes gathered before one write: one thread hand-off per chunk, not per packet
FLUSH_EVERY = 1.0  # seconds: what arrived is written at least this often
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

    Concurrency is bounded by the caller (the service), which hands each transfer
    its job's stop future; ``connections`` caps the kept-alive connections.
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
        *,
        stop: asyncio.Future | None = None,
    ) -> int:
        """Download ``url`` to ``final`` atomically (making its folder); return the size in bytes.

        A partial file an earlier call left (a Pause, a crash, a broken connection) is
        continued with a Range request when the server proves it is the same file.
        ``stop`` (a future, never cancelled here) ends the transfer at once when it
        completes: StopRequested is raised and the partial file is kept for a later call.
        One call per ``final`` at a time: the partial file's name is fixed."""
        try:
            for attempt in range(self._retries + 1):
                try:
                    return await self._attempt(url, final, headers or {}, on_progress, stop)
                except Transient as exc:
                    if attempt == self._retries:
                        raise
                    delay = self._backoff * 2**attempt
                    log.info("retrying media in %.1fs after: %s", delay, exc.sentence)
                    if await _stopped_within(stop, delay):
                        raise StopRequested() from exc
            raise AssertionError("unreachable")
        except (StopRequested, asyncio.CancelledError):
            # Stopped (or the process is going down): kept if it can be continued next time.
            await asyncio.to_thread(partials.keep_if_resumable, final)
            raise
        except BaseException:
            await asyncio.to_thread(partials.discard, final)  # failed for good: nothing to continue
            raise

    async def _attempt(self, url, final: Path, headers, on_progress, stop) -> int:
        """One attempt, ended at once by ``stop``: transfer into the partial file, then rename."""
        if stop is None:
            await self._transfer(url, final, headers, on_progress)
        else:
            transfer = asyncio.ensure_future(self._transfer(url, final, headers, on_progress))
            try:
                await asyncio.wait({transfer, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not transfer.done():  # stopped, or this task was cancelled: end it now
                    transfer.cancel()
                    await asyncio.gather(transfer, return_exceptions=True)
            if transfer.cancelled():
                raise StopRequested()
            transfer.result()  # its error, if any
        # fsync can take long on slow disks; keep the event loop (and the bot) responsive.
        return await asyncio.to_thread(_publish_partial, final)

    async def _transfer(self, url, final: Path, headers, on_progress) -> None:
        """Fill the partial file: continue it when the server allows, else start over."""
        offset, known = await asyncio.to_thread(_prepare, final)
        try:
            if offset and await self._get(url, final, headers, on_progress, offset, known):
                return
            if offset:
                log.info("cannot continue %s; downloading it again from the start", final.name)
                await asyncio.to_thread(partials.discard, final)  # its record no longer applies
            if not await self._get(url, final, headers, on_progress, 0, None):
                raise Transient("The media server sent part of a file that was asked for whole.")
        except NETWORK_ERRORS as exc:
            raise Transient(
                f"The connection broke while downloading this file ({type(exc).__name__}); "
                "the next sync fetches it again."
            ) from exc

    async def _get(self, url, final: Path, headers, on_progress, offset: int, known) -> bool:
        """One request, from ``offset`` when continuing; False when the answer does not
        continue this very file (then the caller starts over)."""
        if offset:
            headers = headers | {"Range": f"bytes={offset}-"}
            if known.if_range():  # a server that sees a changed file sends it whole (200)
                headers["If-Range"] = known.if_range()
        async with self._client().get(url, headers=headers, proxy=self._proxy) as response:
            if offset and response.status == 416:
                return False
            _raise_for_status(response)
            check_encoding(response)
            if response.status == 206:
                if not offset or not _same_file(response, offset, known):
                    return False
                total = known.length
            else:  # the whole file: a fresh start (also when the server ignored Range)
                offset, fresh = 0, _validators(response)
                # A file under one chunk is soon fetched again: no record, it starts over.
                if known is not None or partials.worth_remembering(fresh, CHUNK):  # else none to clear
                    await asyncio.to_thread(partials.remember, final, fresh, CHUNK)
                total = _content_length(response)
            received = await _stream_to(response, partials.partial_for(final), on_progress, offset, total)
            _check_complete(response, received)
            if total is not None and response.status == 206 and offset + received != total:
                raise Transient(f"Download was cut short ({offset + received} of {total} bytes).")
        return True

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


def _content_length(response: aiohttp.ClientResponse) -> int | None:
    """The size of the file when it is sent as is (a compressed body's size says nothing)."""
    if any(value != "identity" for value in encodings(response)):
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


async def _stream_to(response: aiohttp.ClientResponse, path: Path, on_progress, offset: int, expected) -> int:
    """Write the decoded body to ``path`` from ``offset`` in chunks of CHUNK, off the event loop;
    return the raw bytes read."""
    decoder = Decoder(encodings(response))
    received = written = 0
    buffer = bytearray()
    handle = await asyncio.to_thread(_open_at, path, offset)
    flushed = time.monotonic()
    try:
        while True:
            data = await response.content.read(CHUNK)
            received += len(data)
            buffer += decoder.feed(data) if data else decoder.flush()
            if not data:
                break
            # On a slow link a chunk takes long to fill: write at least every FLUSH_EVERY seconds,
            # so a crash loses little of what arrived (the partial file is continued).
            if buffer and (len(buffer) >= CHUNK or time.monotonic() - flushed >= FLUSH_EVERY):
                await asyncio.to_thread(handle.write, bytes(buffer))
                written += len(buffer)
                buffer.clear()
                flushed = time.monotonic()
                if on_progress is not None:
                    on_progress(offset + written, expected)
    except zlib.error as exc:
        raise Transient(f"The compressed answer could not be decoded ({exc}).") from exc
    finally:
        # Stopped or broken mid-transfer: what arrived stays, a prefix of the file to continue.
        # The last bytes and the close: one hand-off to a thread. (The fsync comes with the
        # rename, after the connection is back in the pool and past the point a stop ends.)
        await asyncio.to_thread(_finish, handle, bytes(buffer))
    if on_progress is not None and buffer:
        on_progress(offset + written + len(buffer), expected)
    return received


async def _stopped_within(stop: asyncio.Future | None, seconds: float) -> bool:
    """Wait ``seconds``; True as soon as ``stop`` completes."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    done, _ = await asyncio.wait({stop}, timeout=seconds)
    return bool(done)


def _prepare(final: Path) -> tuple[int, partials.Validators | None]:
    """Make ``final``'s folder; where its partial file can continue (``partials.resume_point``)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return partials.resume_point(final)


def _finish(handle, tail: bytes) -> None:
    """Write the last bytes and close."""
    try:
        if tail:
            handle.write(tail)
    finally:
        handle.close()


def _open_at(path: Path, offset: int):
    """``path`` opened for writing at ``offset`` (what lies beyond is dropped)."""
    if not offset:
        return open(path, "wb")
    handle = open(path, "r+b")  # noqa: SIM115 - closed by the caller, in another thread
    handle.seek(offset)
    handle.truncate()
    return handle


def _publish_partial(final: Path) -> int:
    """Give the complete partial file its final name; its record has served."""
    size = publish(partials.partial_for(final), final)
    partials.record_for(final).unlink(missing_ok=True)
    return size


def _validators(response: aiohttp.ClientResponse) -> Validators | None:
    """The file's length and validators from a whole-file answer (None: sent compressed)."""
    length = _content_length(response)
    if length is None:
        return None
    return Validators(length, response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _same_file(response: aiohttp.ClientResponse, offset: int, known: Validators) -> bool:
    """A partial answer continues the recorded file: the range asked for, the same total
    length and the same validators, sent as is."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", "").strip())
    if match is None or tuple(map(int, match.groups())) != (offset, known.length - 1, known.length):
        return False
    if any(value != "identity" for value in encodings(response)):
        return False
    same_etag = response.headers.get("ETag") == known.etag
    return same_etag and response.headers.get("Last-Modified") == known.last_modified
