"""Media servers' Content-Encoding: which we can undo (gzip, deflate), and undoing it.

We ask for ``Accept-Encoding: identity``; a server that compresses anyway with gzip or
deflate is decoded chunk by chunk, any other encoding is refused, so a compressed body
is never stored under a ``.jpg`` or ``.mp4`` name.
"""

from __future__ import annotations

import zlib

import aiohttp

from downloader.errors import DownloadError

DECODABLE = {"identity", "gzip", "deflate"}


def encodings(response: aiohttp.ClientResponse) -> list[str]:
    """The Content-Encoding values, in the order they were applied."""
    values = response.headers.getall("Content-Encoding", [])
    return [part.strip().lower() for value in values for part in value.split(",") if part.strip()]


def check_encoding(response: aiohttp.ClientResponse) -> None:
    """Refuse a body compressed in a way we cannot undo (it would be stored compressed)."""
    unknown = [value for value in encodings(response) if value not in DECODABLE]
    if unknown:
        raise DownloadError(
            f"The media server sent this file compressed ({', '.join(unknown)}), which cannot be "
            "decoded; it was not saved."
        )


class Decoder:
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
