"""One phase of one job: list pages, skip what is archived, fetch the rest, record it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import time
from typing import TYPE_CHECKING

from db import queries
from downloader.errors import DownloadError
from downloader.events import ItemDone, ItemProgress, PhaseFinished, PhaseResult, PhaseStarted, Warned
from downloader.fetch import publish, temp_path_for
from downloader.paths import media_filename, phase_dir
from downloader.sources.base import MediaItem, Page

if TYPE_CHECKING:
    from downloader.service import DownloadService

log = logging.getLogger(__name__)
# Phases whose listing is newest-first, so a run of archived items means "nothing older is new".
INCREMENTAL = ("posts", "videos")
PHASE_KINDS = {
    "posts": ("post", "reel"),
    "stories": ("story",),
    "highlights": ("highlight",),
    "videos": ("video",),
}
_END = object()


class PhaseRunner:
    """Runs the phases of one job against one source."""

    def __init__(self, service: DownloadService, job, account, source, info, control):
        self.service = service
        self.job = job
        self.account = account
        self.source = source
        self.info = info
        self.control = control
        self.total: int | None = None  # posts/videos/items expected in this phase, when known
        self.units: set[str] = set()  # posts (a carousel is one) handled so far in this phase

    async def run(self, result: PhaseResult) -> None:
        """Run one phase to its end or until paused/cancelled; updates ``result``."""
        phase = result.phase
        result.status = "running"
        self.units = set()
        # Progress counts posts, as the profile does; Instagram says how many it has.
        self.total = self.info.media_count if phase == "posts" else None
        # The archive knows what this job already fetched, even across kill -9.
        result.downloaded = await queries.count_job_media(self.job.id, PHASE_KINDS[phase])
        cursor = self.job.cursor if self.job.phase == phase else None
        self.job.phase = phase
        await self.job.save(update_fields=["phase", "updated_at"])
        self.service.emit(PhaseStarted(self.job.id, phase, self.total))
        pages = self.source.pages(self.info, phase, cursor)
        try:
            finished = await self._pages(pages, result)
        finally:
            # ValueError: a forced shutdown left a worker thread inside the generator.
            with contextlib.suppress(ValueError):
                await asyncio.to_thread(pages.close)
        result.posts = await queries.count_job_posts(self.job.id) if phase == "posts" else None
        if self.control.request:
            result.status = self.control.request
        else:
            result.status = "done"
            if finished and not result.failed:  # failed files must be retried by a full listing
                await self._mark_complete(phase)
            await self._save_cursor(phase, None, result)
        self.service.emit(PhaseFinished(self.job.id, result))

    async def _pages(self, pages, result: PhaseResult) -> bool:
        """Work through pages; True when the listing reached its end."""
        early_stop = result.phase in INCREMENTAL and result.phase in self.account.complete_phases
        run = 0
        while not self.control.request:
            page = await asyncio.to_thread(next, pages, _END)
            if page is _END:
                return True
            before = (result.archived, result.failed, result.unsupported)
            run = await self._page(page, result, run)
            if self.control.request:
                # Keep the old cursor: this page is listed again on resume, so its
                # counts must not be kept twice (downloads are counted from the archive).
                result.archived, result.failed, result.unsupported = before
                return False
            await self._save_cursor(result.phase, page.cursor, result)
            if early_stop and run >= self.service.stop_after_archived:
                log.info("job %s %s: stopped at %d archived items", self.job.id, result.phase, run)
                return False
        return False

    async def _page(self, page: Page, result: PhaseResult, run: int) -> int:
        """Handle one page; return the updated run of consecutive archived items."""
        if page.total is not None:
            self.total = page.total
        elif self.total is None and page.cursor is None and not self.units:
            self.total = len({_unit(item) for item in page.items})  # a one-page listing
        for media_id, reason in page.skipped:
            result.unsupported += 1
            self._warn(result, f"{media_id}: {reason}")
        archived = await queries.archived_by_job(self.account.platform, (i.media_id for i in page.items))
        fresh = [item for item in page.items if item.media_id not in archived]
        # Files this job fetched before a pause or crash are already in `downloaded`.
        result.archived += sum(1 for job_id in archived.values() if job_id != self.job.id)
        if len(fresh) < len(page.items):
            self.units.update(_unit(item) for item in page.items if item.media_id in archived)
            self._progress(result, "", 0)
        written_groups: set[str] = set()
        await asyncio.gather(*(self._item(item, result, written_groups) for item in fresh))
        return _archived_run(page.items, archived, run)

    async def _item(self, item: MediaItem, result: PhaseResult, groups: set[str]) -> None:
        """Fetch one item (bounded concurrency), record it, write its post's metadata."""
        async with self.service.item_slots:
            if self.control.request:
                return
            try:
                size, path = await self._fetch(item, result.phase)
            except (DownloadError, OSError) as exc:
                # OSError: a full disk or a vanished folder fails this file, not the job.
                sentence = exc.sentence if isinstance(exc, DownloadError) else _disk_sentence(exc)
                result.failed += 1
                self._warn(result, f"{item.media_id}: {sentence}")
                self.units.add(_unit(item))
                self._progress(result, item.media_id, 0)
                return
        await queries.record_media(
            platform=self.account.platform,
            media_id=item.media_id,
            kind=item.kind,
            account=self.account,
            taken_at=item.taken_at,
            path=str(path.relative_to(self.service.data_dir)),
            size=size,
            job_id=self.job.id,
            group_id=item.group_id,
            caption=item.caption,
            link=item.link,
        )
        result.downloaded += 1
        result.bytes += size
        if item.metadata and item.group_id and item.group_id not in groups:
            groups.add(item.group_id)
            await asyncio.to_thread(self._write_metadata, item, path.parent)
        self.units.add(_unit(item))
        self._progress(result, item.media_id, size)

    async def _fetch(self, item: MediaItem, phase: str):
        """Download to the final path atomically; return (size, path)."""
        folder = phase_dir(
            self.service.data_dir, self.account.platform, self.account.username, phase, item.subdir
        )
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        final = folder / media_filename(item.taken_at, item.media_id, item.ext)
        if item.url is not None:
            return await self.service.fetcher.fetch(item.url, final, item.headers), final
        progress = _throttled(
            lambda done, total: self.service.emit_threadsafe(
                ItemProgress(self.job.id, phase, item.media_id, done, total)
            )
        )
        return await asyncio.to_thread(_source_download, item, final, progress), final

    def _write_metadata(self, item: MediaItem, folder) -> None:
        """The post's JSON sidecar, written atomically beside its media (once)."""
        if not self.service.write_metadata:
            return
        final = folder / media_filename(item.taken_at, item.group_id, "json")
        temp = temp_path_for(final)
        try:
            temp.write_text(json.dumps(item.metadata, ensure_ascii=False, indent=2, default=str))
            publish(temp, final)
        finally:
            temp.unlink(missing_ok=True)

    def _progress(self, result: PhaseResult, media_id: str, size: int) -> None:
        done = len(self.units)
        self.service.emit(ItemDone(self.job.id, result.phase, done, self.total, media_id, size))

    def _warn(self, result: PhaseResult, message: str) -> None:
        result.warnings.append(message)
        self.service.emit(Warned(self.job.id, result.phase, message))

    async def _save_cursor(self, phase: str, cursor: str | None, result: PhaseResult) -> None:
        """Store where to resume, and the counts so far, after each page."""
        self.job.cursor = cursor
        self.job.counts = self.job.counts | {phase: result.to_dict()}
        await self.job.save(update_fields=["cursor", "counts", "updated_at"])

    async def _mark_complete(self, phase: str) -> None:
        if phase not in self.account.complete_phases:
            self.account.complete_phases = [*self.account.complete_phases, phase]
            await self.account.save(update_fields=["complete_phases", "updated_at"])


def _unit(item: MediaItem) -> str:
    """What progress and the early stop count: a post (all its files) or a single item."""
    return item.group_id or item.media_id


def _archived_run(items: list[MediaItem], archived, run: int) -> int:
    """Extend the run of consecutive fully archived posts (a carousel counts once)."""
    posts: dict[str, bool] = {}
    for item in items:
        unit = _unit(item)
        posts[unit] = posts.get(unit, True) and item.media_id in archived
    for complete in posts.values():
        run = run + 1 if complete else 0
    return run


def _disk_sentence(exc: OSError) -> str:
    """A person's sentence for a failed write."""
    if exc.errno == errno.ENOSPC:
        return "The disk is full: free space under DATA_DIR, then resume."
    return f"Could not write the file ({exc.strerror or type(exc).__name__})."


def _throttled(report, interval: float = 0.5):
    """A progress callback that passes at most one report per ``interval`` seconds."""
    last = [0.0]

    def callback(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= interval or (total is not None and done >= total):
            last[0] = now
            report(done, total)

    return callback


def _source_download(item: MediaItem, final, progress) -> int:
    """Let the source write a temporary file (yt-dlp), then publish it atomically."""
    temp = temp_path_for(final)
    try:
        item.download(temp, progress)
        if not temp.is_file():
            raise DownloadError(f"{item.media_id}: the download produced no file.")
        return publish(temp, final)
    finally:
        temp.unlink(missing_ok=True)
