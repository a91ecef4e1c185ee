"""Writing one item: fetch it atomically, record it, write its post's metadata, remember failures."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from db import archive_state, queries
from db.models import Account, Job
from downloader.control import JobControl
from downloader.covers import keep_cover
from downloader.errors import DownloadError, StopRequested
from downloader.fetch import Fetcher, publish, temp_path_for
from downloader.partials import partial_for
from downloader.paths import media_filename, phase_dir
from downloader.present import OnDisk
from downloader.recipes import to_recipe
from downloader.sources.base import MediaItem

log = logging.getLogger(__name__)
DISK_FULL = "The disk is full: free space under DATA_DIR, then /resume to continue."
# After this many failed runs a file is reported as given up instead of retried every run.
MAX_ATTEMPTS = 3


@dataclass
class Outcome:
    """What happened to one item: "done", "failed" or "skipped" (stopped before it started)."""

    status: str  # also "found": already on disk under its final name, registered
    size: int = 0
    message: str | None = None
    gave_up: bool = False


class ItemWriter:
    """Fetches, records and describes the files of one job."""

    def __init__(self, *, data_dir: Path, fetcher: Fetcher, slots: asyncio.Semaphore, write_metadata: bool):
        self.data_dir = data_dir
        self.fetcher = fetcher
        self.slots = slots
        self.write_metadata = write_metadata
        self._folders: dict[tuple[str, str, str, str], Path] = {}

    async def write(
        self,
        item: MediaItem,
        *,
        job: Job,
        account: Account,
        phase: str,
        control: JobControl,
        progress,
        on_disk: OnDisk | None = None,
        failing: set[str] | None = None,
    ) -> Outcome:
        """Fetch one item within the shared concurrency bound; never raises for a bad file.

        A file ``on_disk`` already holds under the item's final name is registered, not fetched.
        ``failing``: the ids with a failure on record (``archive_state.failing_ids``), kept up
        to date here; without it every written file clears its possible failure.
        """
        path = self.final_path(item, account, phase)
        if on_disk is not None and not control.request:
            size = await on_disk.size_of(path, item.size)
            if size is not None:
                # Not this job's download: a resumed job counts it as archived, not downloaded.
                await self._record(item, account, None, path, size, failing)
                return Outcome("found", size)
        async with self.slots:
            if control.request:
                return Outcome("skipped")
            try:
                size = await self._fetch(item, path, progress, control)
            except StopRequested:
                # Stopped mid-transfer: the partial file is kept (a Cancel's end removes it).
                return Outcome("skipped")
            except (OSError, DownloadError) as exc:
                if no_space(exc):
                    # One sentence and a resumable job, instead of trying every remaining file.
                    control.ask("paused", DISK_FULL)
                    return Outcome("skipped")
                sentence = exc.sentence if isinstance(exc, DownloadError) else _disk_sentence(exc)
                return await self._failed(item, account, phase, sentence, failing)
        await self._record(item, account, job.id, path, size, failing)
        # After the video is safe: a cover that fails costs the gallery's tile, never the video.
        await keep_cover(self.fetcher, self.data_dir, account.platform, item)
        return Outcome("done", size)

    def final_path(self, item: MediaItem, account: Account, phase: str) -> Path:
        """Where the item's file goes: its phase folder, named by date and media id."""
        name = media_filename(item.taken_at, item.media_id, item.ext)
        return self.folder(account, phase, item.subdir) / name

    def folder(self, account: Account, phase: str, subdir: str) -> Path:
        """The phase folder (``paths.phase_dir``), checked once per name: resolving it costs
        a system call per path component, and a job writes hundreds of files there."""
        key = (account.platform, account.username, phase, subdir)
        if key not in self._folders:
            if len(self._folders) >= 1024:
                self._folders.clear()
            self._folders[key] = phase_dir(self.data_dir, *key)
        return self._folders[key]

    async def _fetch(self, item: MediaItem, final: Path, progress, control: JobControl) -> int:
        if item.url is not None:  # the fetcher makes the folder
            return await self.fetcher.fetch(item.url, final, item.headers, stop=control.stopped())
        if item.download is None:
            raise DownloadError(f"{item.media_id}: nothing says how to download this file.")
        report = _stoppable(_throttled(progress), control)
        return await asyncio.to_thread(_source_download, item, final, report)

    async def _record(
        self, item: MediaItem, account: Account, job_id: int | None, path: Path, size: int, failing
    ) -> None:
        await queries.record_media(
            platform=account.platform,
            media_id=item.media_id,
            kind=item.kind,
            account=account,
            taken_at=item.taken_at,
            path=str(path.relative_to(self.data_dir)),
            size=size,
            job_id=job_id,
            group_id=item.group_id,
            group_size=item.group_size,
            caption=item.caption,
            link=item.link,
        )
        await archive_state.clear_failure(account.platform, item.media_id, failing)

    async def _failed(
        self, item: MediaItem, account: Account, phase: str, sentence: str, failing: set[str] | None
    ) -> Outcome:
        attempts = await archive_state.record_failure(
            account,
            media_id=item.media_id,
            phase=phase,
            kind=item.kind,
            reason=sentence,
            recipe=to_recipe(item),
        )
        if failing is not None:
            failing.add(item.media_id)
        return Outcome("failed", message=sentence, gave_up=attempts >= MAX_ATTEMPTS)

    async def metadata(
        self,
        item: MediaItem,
        account: Account,
        phase: str,
        control: JobControl | None = None,
        failing: set[str] | None = None,
    ) -> str | None:
        """Write the post's JSON sidecar if it is missing; a failure is remembered, never fatal."""
        if not self.write_metadata or not item.metadata or not item.group_id:
            return None
        name = media_filename(item.taken_at, item.group_id, "json")
        final = self.folder(account, phase, item.subdir) / name
        key = f"{item.group_id}.json"
        try:
            await asyncio.to_thread(_write_json, final, item.metadata)
        except OSError as exc:
            recipe = to_recipe(item) | {"metadata_path": str(final.relative_to(self.data_dir))}
            await archive_state.record_failure(
                account, media_id=key, phase=phase, kind="metadata", reason=_disk_sentence(exc), recipe=recipe
            )
            if failing is not None:
                failing.add(key)
            if control is not None and no_space(exc):
                control.ask("paused", DISK_FULL)
            return f"{item.group_id}: the metadata file could not be written ({exc.strerror or exc})."
        await archive_state.clear_failure(account.platform, key, failing)
        return None


def _write_json(final: Path, metadata: dict) -> None:
    if final.is_file():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(final)
    try:
        temp.write_text(json.dumps(metadata, ensure_ascii=False, indent=2, default=str))
        publish(temp, final)
    finally:
        temp.unlink(missing_ok=True)


def no_space(exc: BaseException) -> bool:
    """Whether a "no space left on device" is behind this error (sources wrap it)."""
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return False
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    return False


def _disk_sentence(exc: OSError) -> str:
    """A person's sentence for a failed write."""
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


def _stoppable(report, control: JobControl):
    """A progress callback that ends a source's transfer (in its thread) once the job is asked
    to stop: yt-dlp calls it for every block it reads."""

    def callback(done: int, total: int | None) -> None:
        # Not on the last block: yt-dlp has renamed its partial file by then, and stopping
        # would throw away a finished file.
        if control.request and not (total and done >= total):
            raise StopRequested()
        report(done, total)

    return callback


def _source_download(item: MediaItem, final: Path, progress) -> int:
    """Let the source write the partial file's name (yt-dlp), then publish it atomically."""
    temp = partial_for(final)  # a fixed name: yt-dlp continues its own partial file of it
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        item.download(temp, progress)
        if not temp.is_file():
            raise DownloadError(f"{item.media_id}: the download produced no file.")
        return publish(temp, final)
    finally:
        temp.unlink(missing_ok=True)
