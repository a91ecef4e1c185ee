"""Files already in the archive's layout: a lost database must never cost a download.

A file's name carries its date and the platform's media id, so a file found under its
final name is the item itself. Before fetching an item the archive has no row for, a
phase looks for that name in one listing of the folder (taken once per folder and phase,
so an ordinary sync pays no stat per item), and registers a plausible file instead.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from downloader.paths import TEMP_SUFFIX


class OnDisk:
    """Names in the folders one phase writes to, listed once per folder."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}
        self._lock = asyncio.Lock()

    async def size_of(self, final: Path, expected: int | None = None) -> int | None:
        """The size of ``final`` when it is there and plausible (not empty, not a temporary
        file, the size the listing announced if it did), else None: fetch it."""
        if final.name.endswith(TEMP_SUFFIX) or final.name not in await self._listing(final.parent):
            return None
        try:
            info = await asyncio.to_thread(final.stat)
        except OSError:
            return None
        size = info.st_size
        if not stat.S_ISREG(info.st_mode) or size <= 0 or (expected and size != expected):
            return None
        return size

    async def _listing(self, folder: Path) -> frozenset[str]:
        async with self._lock:  # concurrent items of one folder share one listing
            if folder not in self._names:
                self._names[folder] = await asyncio.to_thread(_names_in, folder)
            return self._names[folder]


def _names_in(folder: Path) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()
