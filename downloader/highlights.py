"""Highlight folders: one per highlight id, renamed with its title, holding every current item.

A highlight item is usually an old story (the same media id). The archive keeps one
file per media id; the highlight's folder gets a hard link to it (a copy where the
file system cannot link), so nothing is downloaded twice.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
from pathlib import Path

from db import archive_state, queries
from db.models import Account
from downloader.fetch import publish, temp_path_for
from downloader.paths import media_filename, phase_dir, sanitize_component
from downloader.sources.base import MediaItem

log = logging.getLogger(__name__)
# In each highlight folder: the highlight's id and title, so `bot.py reindex` can rebuild
# the membership table from the folders alone (a folder is named by title, not by id).
ID_FILE = ".highlight.json"


class HighlightFolders:
    """Folder names, renames, membership and links of one account's highlights."""

    def __init__(self, data_dir: Path, account: Account):
        self.data_dir = data_dir
        self.account = account
        self._folders: dict[str, str] = {}  # highlight id -> folder, this run

    def base(self) -> Path:
        """downloads/<platform>/<user>/highlights."""
        return phase_dir(self.data_dir, self.account.platform, self.account.username, "highlights")

    async def folder(self, highlight_id: str, title: str) -> str:
        """The folder of a highlight: named once, renamed (never duplicated) when the title changes."""
        if highlight_id in self._folders:
            return self._folders[highlight_id]
        row = await archive_state.highlight_of(self.account.platform, highlight_id)
        wanted = await self._free_name(title, highlight_id)
        if row is None:
            row = await archive_state.add_highlight(self.account, highlight_id, title, wanted)
        elif row.title != title and row.folder != wanted and await self._rename(row.folder, wanted):
            row.title, row.folder = title, wanted
            await row.save(update_fields=["title", "folder", "updated_at"])
        self._folders[highlight_id] = row.folder
        return row.folder

    async def _free_name(self, title: str, highlight_id: str) -> str:
        """The sanitised title, made unique among this account's highlights."""
        name = sanitize_component(title)
        taken = await archive_state.highlight_folders(self.account)
        if taken.get(name, highlight_id) != highlight_id:
            name = sanitize_component(f"{name} ({highlight_id[-6:]})")
        return name

    async def _rename(self, old: str, new: str) -> bool:
        """Rename the folder on disk, then the archive rows under it; False if it cannot be."""
        base = self.base()
        source, target = base / old, base / new

        def move() -> bool:
            if target.exists():
                return False  # a folder of that name is there already: keep the old name
            if source.is_dir():
                source.rename(target)
            return True

        try:
            if not await asyncio.to_thread(move):
                log.info("@%s: highlight folder %r kept (%r exists)", self.account.username, old, new)
                return False
        except OSError as exc:
            log.warning("@%s: could not rename highlight folder %r: %s", self.account.username, old, exc)
            return False
        prefix = str(base.relative_to(self.data_dir))
        await archive_state.move_paths(self.account, f"{prefix}/{old}/", f"{prefix}/{new}/")
        log.info("@%s: highlight folder %r renamed to %r", self.account.username, old, new)
        return True

    async def remember(self, items: list[MediaItem]) -> None:
        """Record which media each listed highlight holds."""
        by_highlight: dict[str, list[str]] = {}
        for item in items:
            if item.highlight_id:
                by_highlight.setdefault(item.highlight_id, []).append(item.media_id)
        for highlight_id, media_ids in by_highlight.items():
            row = await archive_state.highlight_of(self.account.platform, highlight_id)
            if row is not None:
                await archive_state.add_members(row, media_ids)

    async def mark_removed(self, tray: list[str] | None, members: dict[str, list[str]]) -> None:
        """Note highlights gone from a complete tray and items gone from a fully listed highlight.

        Only the platform's complete answers count (a failed request yields no page); files stay."""
        moment = queries.now()
        if tray is not None:
            await archive_state.mark_tray(self.account, tray, moment)
        for highlight_id, listed in members.items():
            row = await archive_state.highlight_of(self.account.platform, highlight_id)
            if row is not None:
                await archive_state.mark_members(row, listed, moment)

    async def complete(self) -> int:
        """Link every archived member into its highlight's folder where missing; return how many."""
        members = await archive_state.members_with_paths(self.account)
        base = self.base()
        data_dir = self.data_dir
        linked = await asyncio.to_thread(_link_all, data_dir, base, members)
        labels = await archive_state.highlight_labels(self.account)
        await asyncio.to_thread(_label_all, base, labels)
        return linked


def _link_all(data_dir: Path, base: Path, members) -> int:
    linked = 0
    for folder, media_id, path, taken_at in members:
        source = data_dir / path
        if taken_at is None or not source.is_file():
            continue  # missing files are fetched again by the next listing
        target = base / folder / media_filename(taken_at, media_id, source.suffix.lstrip("."))
        if target == source or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _link(source, target)
        linked += 1
    return linked


def _label_all(base: Path, labels: list[tuple[str, str, str]]) -> None:
    """Write each existing highlight folder's id file where it is missing or out of date."""
    for folder, highlight_id, title in labels:
        if not (base / folder).is_dir():
            continue
        path = base / folder / ID_FILE
        text = json.dumps({"id": highlight_id, "title": title}, ensure_ascii=False) + "\n"
        try:
            if path.read_text() == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        temp = temp_path_for(path)
        try:
            temp.write_text(text)
            publish(temp, path)
        finally:
            temp.unlink(missing_ok=True)


def _link(source: Path, target: Path) -> None:
    """A hard link, or an atomic copy where links are impossible (another disk, FAT, ...)."""
    try:
        os.link(source, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
    temp = temp_path_for(target)
    try:
        shutil.copyfile(source, temp)
        publish(temp, target)
    finally:
        temp.unlink(missing_ok=True)
