"""One phase of one job: list ahead, skip what is archived, fetch the rest, record it.

Listing runs ahead of the downloads (a few pages at most), so the next page is
asked for while the files of the previous one are still arriving; all files go
through one concurrency bound. A page's cursor is stored only once every file of
it (and of every page before it) is finished, so a stopped job resumes exactly
where its archive is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from db import archive_state, queries
from downloader.errors import StopRequested
from downloader.events import Event, ItemDone, ItemProgress, PhaseFinished, PhaseResult, PhaseStarted, Warned
from downloader.highlights import HighlightFolders
from downloader.items import DISK_FULL, MAX_ATTEMPTS, ItemWriter, Outcome, no_space
from downloader.present import OnDisk
from downloader.recipes import from_recipe
from downloader.sources.base import Known, MediaItem, Page

log = logging.getLogger(__name__)
# Phases whose listing is newest-first, so a run of archived items means "nothing older is new".
INCREMENTAL = ("posts", "videos")
PHASE_KINDS = {
    "posts": ("post", "reel"),
    "stories": ("story",),
    "highlights": ("highlight",),
    "videos": ("video", "photo", "audio"),  # TikTok: videos, and photo posts' slides and sounds
}
LOOKAHEAD = 3  # pages listed ahead of the downloads
_END = object()


@dataclass(frozen=True)
class PhaseTools:
    """What a phase runner needs around it: an event sink (events flow one way, up to the
    service's subscribers), the file writer, and where and when to stop."""

    emit: Callable[[Event], None]
    emit_threadsafe: Callable[[Event], None]
    writer: ItemWriter
    data_dir: Path
    stop_after_archived: int


@dataclass
class PageWork:
    """One listed page whose files are being fetched."""

    cursor: str | None
    tasks: list[asyncio.Task]
    archived: int = 0
    unsupported: int = 0
    items: list[MediaItem] = field(default_factory=list)

    def ready(self) -> bool:
        """Every file finished (none left undone by a pause)."""
        return all(t.done() for t in self.tasks)

    def complete(self) -> bool:
        """Finished, and no file was skipped because the job stopped."""
        return self.ready() and all(not t.cancelled() and t.result().status != "skipped" for t in self.tasks)


class PhaseRunner:
    """Runs the phases of one job against one source."""

    def __init__(self, tools: PhaseTools, job, account, source, info, control, known: Known):
        self.tools = tools
        self.job = job
        self.account = account
        self.source = source
        self.info = info
        self.control = control
        self.known = known
        self.highlights = HighlightFolders(tools.data_dir, account)
        self.total: int | None = None  # posts/videos/items expected in this phase, when known
        self.units: set[str] = set()  # posts (a carousel is one) handled so far in this phase
        self.seen: set[str] = set()  # media ids listed in this phase
        self.stamps: dict[str, int] = {}
        self.unsure_stamps: set[str] = set()  # stamps not to keep: a file behind them failed
        self.described: set[str] = set()  # posts whose metadata file was written in this job
        self.on_disk = OnDisk()  # files already in the layout (after a lost database)
        self.failing: set[str] = set()  # ids with a failure on record (read as each phase starts)
        self._phase: str | None = None

    async def run(self, result: PhaseResult) -> None:
        """Run one phase to its end or until paused/cancelled; updates ``result``."""
        phase = result.phase
        result.status = "running"
        if phase != self._phase:  # a retry after a wait keeps what this phase already saw
            self._phase = phase
            self.units, self.seen, self.stamps, self.unsure_stamps = set(), set(), {}, set()
            self.on_disk = OnDisk()
        # Progress counts posts, as the profile does; Instagram says how many it has.
        self.total = self.info.media_count if phase == "posts" else None
        # The archive knows what this job already fetched, even across kill -9.
        result.downloaded = await queries.count_job_media(self.job.id, PHASE_KINDS[phase])
        self.failing = await archive_state.failing_ids(self.account.platform)
        cursor = self.job.cursor if self.job.phase == phase else None
        if cursor is None:
            result.top = None  # listing from the newest item again
        self.job.phase = phase
        await self.job.save(update_fields=["phase", "updated_at"])
        self.tools.emit(PhaseStarted(self.job.id, phase, self.total))
        pages = self.source.pages(self.info, phase, cursor, self.known)
        try:
            await self._pages(pages, result)
        finally:
            # ValueError: a forced shutdown left a worker thread inside the generator.
            with contextlib.suppress(ValueError):
                await asyncio.to_thread(pages.close)
        await self._finish(result)

    async def _finish(self, result: PhaseResult) -> None:
        """Retry older failures, complete highlight folders, keep what a clean run proved."""
        phase = result.phase
        if not self.control.request:
            await self._retry_failures(result)
        if phase == "highlights":
            await self._complete_highlights(result)
        result.posts = await queries.count_job_posts(self.job.id) if phase == "posts" else None
        if phase == "videos":
            _count_videos_phase(result, await queries.job_files(self.job.id, PHASE_KINDS[phase]))
        if self.control.request:
            result.status = self.control.request
        else:
            result.status = "done"
            if phase in INCREMENTAL:
                await archive_state.save_boundary(self.account, phase, result.top or 0)
            keep = {k: v for k, v in self.stamps.items() if k not in self.unsure_stamps}
            if phase == "stories" and result.top and not result.failed:
                keep["stories"] = result.top  # every story up to this one is archived
            if keep:
                await archive_state.save_stamps(self.account, keep)
            await self._save_cursor(None, result)
        self.tools.emit(PhaseFinished(self.job.id, result))

    async def _pages(self, pages, result: PhaseResult) -> None:
        """List pages ahead of the downloads until the end, an early stop or a stop request."""
        boundary = self._boundary(result.phase)
        pending: deque[PageWork] = deque()
        run = 0
        listing: asyncio.Future | None = None
        try:
            while not self.control.request:
                page = await (listing or _next_page(pages))
                listing = None
                if page is _END:
                    return
                if boundary is None:
                    # Ask for the next page while this one is checked against the archive:
                    # the page chain is the bound of a full download. Not when a run of
                    # archived posts may stop the listing: that page would be a wasted request.
                    listing = _next_page(pages)
                work, run = await self._start(page, result, run, boundary)
                pending.append(work)
                await self._commit(pending, result)
                if boundary is not None and run >= self.tools.stop_after_archived:
                    log.info("job %s %s: stopped at %d archived items", self.job.id, result.phase, run)
                    return
                while len(pending) > LOOKAHEAD and not self.control.request:
                    await asyncio.wait(pending[0].tasks)
                    await self._commit(pending, result)
        except StopRequested:
            return  # a wait inside the source ended by Pause, Cancel or shutdown
        except asyncio.CancelledError:
            for work in pending:
                for task in work.tasks:
                    task.cancel()
            raise
        finally:
            if listing is not None:
                # A page asked for before a stop: never started, so listed again on resume.
                await asyncio.gather(listing, return_exceptions=True)
            for work in pending:
                await asyncio.gather(*work.tasks, return_exceptions=True)
            await self._commit(pending, result)

    def _boundary(self, phase: str) -> int | None:
        """Below this item time an earlier listing ran to a clean end (None: never)."""
        if phase not in INCREMENTAL:
            return None
        value = (self.account.boundaries or {}).get(phase)
        return int(value) if value is not None else None

    async def _start(self, page: Page, result: PhaseResult, run: int, boundary: int | None):
        """Check one page against the archive and start fetching what is new."""
        self._count_total(page)
        for media_id, reason in page.skipped:
            self._warn(result, f"{media_id}: {reason}")
            result.miss(media_id, reason)
        items = page.items
        self.seen.update(item.media_id for item in items)
        self.seen.update(media_id for media_id, _ in page.skipped)
        self.stamps.update(page.stamps)
        archived = await queries.archived_by_job(self.account.platform, (i.media_id for i in items))
        if result.phase == "highlights":
            await self._place_highlights(items, page)
        _count_group_sizes(items)
        known_times = await self._known_times(page)
        result.top = max([result.top or 0, *_times(items), *known_times.values()]) or result.top
        self.units.update(_unit(i) for i in items if i.media_id in archived)
        self.units.update(known_times)
        if archived or known_times:
            self._progress(result, "", 0)
        fresh = list({i.media_id: i for i in items if i.media_id not in archived}.values())
        tasks = [asyncio.create_task(self._item(item, result)) for item in fresh]
        mine = sum(1 for job_id in archived.values() if job_id == self.job.id)
        work = PageWork(page.cursor, tasks, len(archived) - mine + len(page.known_groups), len(page.skipped))
        return work, _archived_run(items, archived, known_times, run, boundary)

    def _count_total(self, page: Page) -> None:
        if page.total is not None:
            self.total = page.total
        elif self.total is None and page.cursor is None and not self.units:
            self.total = len({_unit(item) for item in page.items} | set(page.known_groups))

    async def _known_times(self, page: Page) -> dict[str, int]:
        """Posts the source passed over as archived, with their times (from the archive)."""
        if not page.known_groups:
            return {}
        times = await archive_state.group_times(self.account.platform, page.known_groups)
        return {group: int(moment.timestamp()) for group, moment in times.items()}

    async def _place_highlights(self, items: list[MediaItem], page: Page) -> None:
        """Each highlight item goes to its highlight's folder (named once per highlight id);
        every highlight the tray named gets its folder renamed if it was retitled."""
        for highlight_id, title in page.titles.items():
            if await archive_state.highlight_of(self.account.platform, highlight_id) is not None:
                await self.highlights.folder(highlight_id, title)
        for item in items:
            if item.highlight_id:
                title = item.highlight_title or item.subdir or item.highlight_id
                item.subdir = await self.highlights.folder(item.highlight_id, title)
        await self.highlights.remember(items)
        await self.highlights.mark_removed(page.tray, page.members)

    async def _complete_highlights(self, result: PhaseResult) -> None:
        """Link archived members into their highlight folders; a full disk pauses the job."""
        try:
            await self.highlights.complete()
        except OSError as exc:
            if no_space(exc):
                self.control.ask("paused", DISK_FULL)
            else:
                self._warn(result, f"Could not complete a highlight folder ({exc.strerror or exc}).")

    async def _item(self, item: MediaItem, result: PhaseResult) -> Outcome:
        """Fetch one item and report it; failures are remembered for the next run."""

        def progress(done: int, total: int | None) -> None:
            event = ItemProgress(self.job.id, result.phase, item.media_id, done, total)
            self.tools.emit_threadsafe(event)

        outcome = await self.tools.writer.write(
            item,
            job=self.job,
            account=self.account,
            phase=result.phase,
            control=self.control,
            progress=progress,
            on_disk=self.on_disk,
            failing=self.failing,
        )
        if outcome.status == "found":  # registered from disk: archived, not downloaded
            result.archived += 1
            await self._describe(item, result)
        elif outcome.status == "done":
            result.downloaded += 1
            result.bytes += outcome.size
            await self._describe(item, result)
        elif outcome.status == "failed":
            self._failed(item, outcome, result)
        if outcome.status != "skipped":
            self.units.add(_unit(item))
            self._progress(result, item.media_id, outcome.size)
        return outcome

    async def _describe(self, item: MediaItem, result: PhaseResult) -> None:
        """The post's metadata file, once per post and job."""
        if item.group_id and item.metadata and item.group_id not in self.described:
            self.described.add(item.group_id)
            writer = self.tools.writer
            problem = await writer.metadata(item, self.account, result.phase, self.control, self.failing)
            if problem:
                self._warn(result, problem)

    def _failed(self, item: MediaItem, outcome: Outcome, result: PhaseResult) -> None:
        note = f" It failed {MAX_ATTEMPTS} times and is no longer retried." if outcome.gave_up else ""
        self._warn(result, f"{item.media_id}: {outcome.message}{note}")
        result.miss(item.media_id, outcome.message or "failed")
        result.gave_up += int(outcome.gave_up)
        if item.highlight_id:
            self.unsure_stamps.add(f"highlight:{item.highlight_id}")

    async def _commit(self, pending: deque[PageWork], result: PhaseResult) -> None:
        """Store the cursor after the pages whose files are all finished, in order."""
        cursor, moved = None, False
        while pending and pending[0].complete():
            work = pending.popleft()
            result.archived += work.archived
            result.unsupported += work.unsupported
            result.failed += sum(1 for t in work.tasks if t.result().status == "failed")
            cursor, moved = work.cursor, True
        if moved:
            await self._save_cursor(cursor, result)

    async def _retry_failures(self, result: PhaseResult) -> None:
        """Files that failed in earlier runs and were not listed now: try them again."""
        rows = await archive_state.failures_of(self.account, result.phase)
        todo = [r for r in rows if r.media_id not in self.seen and r.attempts < MAX_ATTEMPTS]
        items = [item for item in [await self._revive(row) for row in todo] if item is not None]
        outcomes = await asyncio.gather(*(self._item(item, result) for item in items))
        result.failed += sum(1 for outcome in outcomes if outcome.status == "failed")

    async def _revive(self, row) -> MediaItem | None:
        """A failed item again: its stored URL, or the source rebuilds it; metadata written here."""
        item = from_recipe(row.recipe)
        if row.kind == "metadata":
            await self.tools.writer.metadata(item, self.account, row.phase, failing=self.failing)
            return None
        if item.url is None or item.url_expires:
            item = await asyncio.to_thread(self.source.revive, self.info, item)
        if item is not None and item.highlight_id:
            item.subdir = await self.highlights.folder(item.highlight_id, item.highlight_title or item.subdir)
        return item

    def _progress(self, result: PhaseResult, media_id: str, size: int) -> None:
        done = len(self.units)
        self.tools.emit(ItemDone(self.job.id, result.phase, done, self.total, media_id, size))

    def _warn(self, result: PhaseResult, message: str) -> None:
        result.warnings.append(message)
        self.tools.emit(Warned(self.job.id, result.phase, message))

    async def _save_cursor(self, cursor: str | None, result: PhaseResult) -> None:
        """Store where to resume, and the counts so far."""
        self.job.cursor = cursor
        self.job.counts = self.job.counts | {result.phase: result.to_dict()}
        await self.job.save(update_fields=["cursor", "counts", "updated_at"])


def _next_page(pages) -> asyncio.Future:
    """The source's next page (or _END), asked for in a worker thread."""
    return asyncio.ensure_future(asyncio.to_thread(next, pages, _END))


def _unit(item: MediaItem) -> str:
    """What progress and the early stop count: a post (all its files) or a single item."""
    return item.group_id or item.media_id


def _count_videos_phase(result: PhaseResult, files: list[tuple[str, str | None, str]]) -> None:
    """Posts (a video, or a photo post with all its files) and slides a TikTok job downloaded."""
    photo_posts = {group or media_id for kind, group, media_id in files if kind in ("photo", "audio")}
    videos = sum(1 for kind, _, _ in files if kind == "video")
    result.photo_posts, result.images = len(photo_posts), sum(1 for kind, _, _ in files if kind == "photo")
    result.posts = videos + len(photo_posts)


def _count_group_sizes(items: list[MediaItem]) -> None:
    """How many files each post on the page has (a post's files are listed together)."""
    sizes: dict[str, int] = {}
    for item in items:
        if item.group_id:
            sizes[item.group_id] = sizes.get(item.group_id, 0) + 1
    for item in items:
        if item.group_id:
            item.group_size = sizes[item.group_id]


def _times(items: list[MediaItem]) -> list[int]:
    return [int(item.taken_at.timestamp()) for item in items]


def _archived_run(items, archived, known_times: dict[str, int], run: int, boundary: int | None) -> int:
    """Extend the run of consecutive archived posts that lie below the clean boundary.

    Posts newer than the boundary were archived by a run that did not end clean (a
    cancel, a crash, a 429): the listing must go on past them, or the posts between
    them and the boundary would never be archived.
    """
    if boundary is None:
        return 0
    posts: dict[str, tuple[bool, int]] = {}
    for item in items:
        complete, newest = posts.get(_unit(item), (True, 0))
        posts[_unit(item)] = (complete and item.media_id in archived, max(newest, _times([item])[0]))
    for group, moment in known_times.items():
        posts[group] = (True, moment)
    for complete, moment in posts.values():
        run = run + 1 if complete and moment <= boundary else 0
    return run
