"""A read-only, thread-safe view of the archive for blocking libraries (yt-dlp's download_archive)."""

from __future__ import annotations

import asyncio

from db import queries


class ArchiveView:
    """`"tiktok 123" in view` asks the database from a worker thread via the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 30.0):
        self._loop = loop
        self._timeout = timeout

    def __contains__(self, archive_id: object) -> bool:
        if not isinstance(archive_id, str) or " " not in archive_id:
            return False
        platform, media_id = archive_id.split(" ", 1)
        future = asyncio.run_coroutine_threadsafe(
            queries.archived_paths(platform.lower(), [media_id]), self._loop
        )
        return media_id in future.result(self._timeout)
