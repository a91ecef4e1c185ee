"""yt-dlp as a library, the way the TikTok source needs it.

The database as yt-dlp's download archive; yt-dlp's messages in our log; and a pool
of YoutubeDL objects (``youtubedl.PlainYoutubeDL``), one per thread (they are not
thread-safe), made when a thread first needs one: yt-dlp is imported then, not when
this module is. Nothing here knows about TikTok's pages or our errors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Container, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from downloader import partials
from downloader.sources.base import ProgressFn

log = logging.getLogger(__name__)


def impersonation() -> str | None:
    """The browser yt-dlp impersonates on TikTok's pages (via curl_cffi), or None without it."""
    try:
        import curl_cffi
        from yt_dlp.networking._curlcffi import CurlCFFIRH
    except ImportError:  # curl_cffi missing, or a version this yt-dlp does not support
        return None
    # TikTok asks for "any target": the handler takes its first (preferred) one.
    targets = CurlCFFIRH.supported_targets
    return f"{targets[0]} (curl_cffi {curl_cffi.__version__})" if targets else None


def log_impersonation() -> None:
    """Say once which browser TikTok's pages are requested as, or that none is."""
    target = impersonation()
    if target:
        log.info("TikTok pages are requested as the browser %s", target)
    else:
        log.warning(
            "TikTok pages are requested without browser impersonation (curl_cffi is missing or "
            "unsupported), which TikTok often answers with empty pages: pip install -r requirements.txt"
        )


class DatabaseArchive:
    """yt-dlp's view of our archive: lookups go to the database, additions are ignored.

    yt-dlp skips lookups when the archive is falsy and calls ``add`` after each
    download; the service records finished videos itself, and a file deleted from
    disk must be downloadable again in the same process, so answers are kept only
    for one download (``remembering``): yt-dlp asks three times per video.
    """

    def __init__(self, archive: Container[str]):
        self._archive = archive
        self._local = threading.local()

    def __contains__(self, archive_id: object) -> bool:
        answers = getattr(self._local, "answers", None)
        if answers is None:
            return archive_id in self._archive
        if archive_id not in answers:
            answers[archive_id] = archive_id in self._archive
        return answers[archive_id]

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Within the block, this thread asks the database once per id."""
        self._local.answers = {}
        try:
            yield
        finally:
            self._local.answers = None

    def __bool__(self) -> bool:
        return True

    def add(self, archive_id: str) -> None:
        """Nothing to do: the service records the file once it is safely on disk."""


class YtDlpLog:
    """yt-dlp's messages into logging; its errors are translated, so they are debug."""

    def debug(self, message: str) -> None:
        log.debug("%s", message)

    def info(self, message: str) -> None:
        log.debug("%s", message)

    def warning(self, message: str) -> None:
        # Without curl_cffi yt-dlp warns about impersonation on every page; the source
        # says so once, when TikTok is first read (see log_impersonation).
        level = logging.DEBUG if "impersonat" in message else logging.WARNING
        log.log(level, "%s", message)

    def error(self, message: str) -> None:
        log.debug("%s", message)


class Worker:
    """One YoutubeDL, used by one thread at a time, and the progress hook of its download."""

    def __init__(self, params: dict, ca_file: str | None):
        from downloader.sources.youtubedl import PlainYoutubeDL  # yt-dlp, loaded on first use

        # YoutubeDL keeps and mutates the dict it is given (outtmpl above all): one each.
        self.ydl = PlainYoutubeDL(dict(params), ca_file)
        self.ydl.add_progress_hook(self._on_progress)
        self._progress: ProgressFn | None = None
        self._final: Path | None = None  # the file whose partial length is checked at its first block

    def user_extractor(self):
        """yt-dlp's TikTok user extractor, bound to this worker's YoutubeDL."""
        extractor = self.ydl.get_info_extractor("TikTokUser")
        extractor.initialize()
        return extractor

    def download(self, url: str, target: Path, progress: ProgressFn, extractor: str) -> dict | None:
        """Download one video to exactly ``target`` with yt-dlp's ``extractor``; None if archived.

        ``target`` is a partial file's name (partials.py): yt-dlp continues its own
        ``target.part`` with a Range request when a record of the file's length is beside it
        and the length is still the same; a changed file is downloaded again from the start."""
        # Doubled "%" keeps the path literal through yt-dlp's template formatting.
        outtmpl = {**self.ydl.params["outtmpl"], "default": str(target).replace("%", "%%")}
        self.ydl.params["outtmpl"] = outtmpl
        self.ydl.get_info_extractor(extractor)  # registers it (see PlainYoutubeDL)
        final = partials.final_for(target)
        known = partials.load(final)
        if known is None:
            partials.discard(final)  # a partial file nothing vouches for is not continued
        try:
            info = self._extract(url, extractor, final, progress)
            # yt-dlp takes a partial file as complete when a Range beyond it is refused and the
            # whole file is within 100 bytes of it: hold it to the recorded length.
            if known is not None and target.is_file() and target.stat().st_size != known.length:
                raise _Changed()
            return info
        except _Changed:
            log.info("the partial download of %s is of another file; starting over", final.name)
            target.unlink(missing_ok=True)
            partials.discard(final)
            return self._extract(url, extractor, final, progress)

    def _extract(self, url: str, extractor: str, final: Path, progress: ProgressFn) -> dict | None:
        archive = self.ydl.params.get("download_archive")
        remembering = archive.remembering() if isinstance(archive, DatabaseArchive) else nullcontext()
        self._progress, self._final = progress, final
        try:
            # Naming the extractor spares yt-dlp matching the URL against ~1,700 extractors'
            # patterns: 0.25 CPU seconds for the first video of every process (it compiles
            # them), a few ms for each one after.
            with remembering:
                return self.ydl.extract_info(url, download=True, ie_key=extractor)
        finally:
            self._progress = self._final = None

    def _on_progress(self, status: dict) -> None:
        done = status.get("downloaded_bytes")
        if self._progress is None or done is None:
            return
        if status.get("status") in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            if self._final is not None and status.get("status") == "downloading":
                self._check_partial(status.get("total_bytes"))
            self._progress(int(done), int(total) if total else None)  # may raise StopRequested

    def _check_partial(self, total: int | None) -> None:
        """At the first block: the file is the one the partial file holds the start of, and
        its length is recorded for a later continuation."""
        final, self._final = self._final, None
        known = partials.load(final)
        if known is not None and known.length != total:
            raise _Changed()
        if known is None and total:
            partials.save(final, partials.Validators(int(total)))

    def close(self) -> None:
        self.ydl.close()


class _Changed(Exception):
    """The file behind a partial download is not the one it was (another length)."""


class WorkerPool:
    """A pool of workers: one per thread that needs yt-dlp right now, reused afterwards."""

    def __init__(self, params: dict, ca_file: str | None):
        self._params = params
        self._ca_file = ca_file
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._all: list[Worker] = []

    @contextmanager
    def borrow(self) -> Iterator[Worker]:
        """A worker for this thread alone until the block ends."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = Worker(self._params, self._ca_file)
            with self._lock:
                first = not self._all
                self._all.append(worker)
            if first:  # said once, when TikTok is first read (not at every start)
                log_impersonation()
        try:
            yield worker
        finally:
            with self._lock:
                self._idle.append(worker)

    def close(self) -> None:
        """Close every YoutubeDL (connections; a cookiefile is saved back by yt-dlp)."""
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.close()
