"""The disk is part of the archive's state: a marker file proves the archive folder is there.

The marker is written into DATA_DIR/downloads when the archive is created, and its id is
kept in the database. Database rows without the marker mean "not mounted" (a USB disk, a
network share), never "deleted by the user"; a marker with another id means another
archive's folder is mounted there. Either way no job runs and nothing is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from db import queries
from db.models import MediaItem
from downloader.errors import DownloadError
from downloader.paths import downloads_root

log = logging.getLogger(__name__)
MARKER = ".archive-id"
SETTING = "archive_id"


class ArchiveMissing(DownloadError):
    """The archive folder is missing, not mounted, or another archive's folder."""


def missing_sentence(root: Path) -> str:
    """What the owner reads, in chat and on the terminal."""
    return f"The archive folder {root} is missing or not mounted; nothing was downloaded."


def foreign_sentence(root: Path) -> str:
    """A folder is mounted, but its marker names another archive than this database's."""
    return (
        f"The archive folder {root} belongs to another archive (its {MARKER} does not match "
        "this database); nothing was downloaded."
    )


class ArchiveGuard:
    """Checks the marker before any job; creates it for a new (or pre-marker) archive."""

    def __init__(self, data_dir: Path, *, may_mark: bool = True):
        self.root = downloads_root(data_dir)
        self.data_dir = Path(data_dir).resolve()
        # A download worker only checks: marking is the bot's, or a worker whose share is not
        # mounted would mark its own empty folder as the archive.
        self.may_mark = may_mark

    async def check(self) -> None:
        """Raise ArchiveMissing unless the archive folder is there."""
        marker = self.root / MARKER
        stored = await queries.get_setting(SETTING)
        if await asyncio.to_thread(marker.is_file):
            found = (await asyncio.to_thread(marker.read_text)).strip()
            if stored is None:
                await queries.set_setting(SETTING, found)
            elif found != stored:  # another archive's folder (or disk) mounted here
                log.warning("archive marker %s says %s, the database %s; no job runs", marker, found, stored)
                raise ArchiveMissing(foreign_sentence(self.root))
            return
        if self.may_mark and stored is None and await self._new_or_present():
            await self._create(marker)
            return
        log.warning("archive marker %s is missing; no job runs", marker)
        raise ArchiveMissing(missing_sentence(self.root))

    async def _new_or_present(self) -> bool:
        """No archive yet, or one from before markers whose files are really there."""
        newest = await MediaItem.all().order_by("-id").limit(5).values_list("path", flat=True)
        if not newest:
            return True
        return await asyncio.to_thread(lambda: any((self.data_dir / p).is_file() for p in newest))

    async def _create(self, marker: Path) -> None:
        archive_id = secrets.token_hex(8)

        def write() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            marker.write_text(archive_id + "\n")

        await asyncio.to_thread(write)
        await queries.set_setting(SETTING, archive_id)
        log.info("archive folder %s marked", self.root)
