"""yt-dlp as a library, the way the TikTok source needs it.

A YoutubeDL that takes output paths literally and trusts an extra CA file (in
every request handler, libcurl's impersonating one included); a cookie file
saved back atomically; the database as yt-dlp's download archive; yt-dlp's
messages in our log; and a pool of YoutubeDL objects, one per thread (they are
not thread-safe). Nothing here knows about TikTok's pages or our errors.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
import tempfile
import threading
from collections.abc import Container, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import yt_dlp

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


class PlainYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL that trusts an extra CA file and takes output paths literally.

    It knows only the extractors it is asked for by name (``get_info_extractor``):
    registering all ~1,700 costs 40 ms of CPU per YoutubeDL, one per download thread.
    """

    def __init__(self, params: dict, ca_file: str | None):
        self._ca_file = ca_file
        super().__init__(params, auto_init=False)
        if self.params.get("verbose"):
            self.print_debug_header()  # what auto_init would print

    def build_request_director(self, handlers, preferences=None):
        """yt-dlp's request director, with the CA file added to every handler's TLS context."""
        director = super().build_request_director(handlers, preferences)
        if self._ca_file:
            for handler in director.handlers.values():
                if handler.RH_NAME == "curl_cffi":
                    _give_curl_ca_file(handler, self._ca_file)
                else:
                    _add_ca_file(handler, self._ca_file)
        return director

    def save_cookies(self) -> None:
        """yt-dlp's cookie file save (at close), but atomic: a crash never leaves half a file."""
        cookiefile = self.params.get("cookiefile")
        if cookiefile is None:
            return
        if not isinstance(cookiefile, str | os.PathLike):
            super().save_cookies()  # a file object the caller gave: theirs to manage
            return
        try:
            save_cookies_atomically(self.cookiejar, Path(os.path.expanduser(cookiefile)))
        except (OSError, ValueError) as exc:
            log.warning("could not save the TikTok cookie file (the old one is kept): %s", exc)

    def _forceprint(self, key, info_dict):
        # yt-dlp renders the formats, thumbnails and subtitles tables of every video for its
        # print options, printed or not: a tenth of a TikTok download's CPU time.
        if info_dict is None or self._printing(key):
            return super()._forceprint(key, info_dict)
        return dict(info_dict)

    def _printing(self, key: str) -> bool:
        """Whether a --print, --print-to-file or --get-* option may print at ``key``."""
        params = self.params
        if params["forceprint"].get(key) or params["print_to_file"].get(key):
            return True
        return any(value for name, value in params.items() if name.startswith("force"))

    @staticmethod
    def _outtmpl_expandpath(outtmpl):
        # Our output template is a path we built: "~" and "$NAME" in it are literal, and
        # yt-dlp would expand "$NAME" (it cannot be escaped).
        return outtmpl


def save_cookies_atomically(jar, path: Path) -> None:
    """Write ``jar`` (a YoutubeDLCookieJar) to a temp file beside ``path``, then rename it.

    The file holds a login, so it stays private: its mode is kept without group and
    other bits, and a new file is 0600.
    """
    mode = (stat.S_IMODE(path.stat().st_mode) & 0o600) if path.exists() else 0o600
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode or 0o600)
            jar.save(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _add_ca_file(handler, ca_file: str) -> None:
    """Make ``handler`` load ``ca_file`` on top of the store yt-dlp chose.

    yt-dlp has no option for a CA file: it trusts certifi, or with the "no-certifi"
    compat option the system store (which SSL_CERT_FILE replaces). Every handler
    that speaks TLS through Python's ssl builds its contexts with
    ``_make_sslcontext`` (requests, urllib, websockets); curl_cffi does not.
    """
    make_context = handler._make_sslcontext

    def make_context_with_ca(*args, **kwargs):
        context = make_context(*args, **kwargs)
        if context.verify_mode != ssl.CERT_NONE:
            context.load_verify_locations(cafile=ca_file)
        return context

    handler._make_sslcontext = make_context_with_ca


def _give_curl_ca_file(handler, ca_file: str) -> None:
    """Make yt-dlp's curl_cffi handler (browser impersonation) trust ``ca_file``.

    libcurl does not use Python's ssl: its sessions take a CA file path as ``verify``,
    which yt-dlp never sets (curl_cffi then falls back to REQUESTS_CA_BUNDLE from the
    environment, or to certifi). ``ca_file`` is certifi plus CA_BUNDLE, so it is the
    whole trust store, also for an HTTPS proxy.
    """
    import curl_cffi.requests

    def create_session(cookiejar=None):
        return curl_cffi.requests.Session(cookies=cookiejar, verify=ca_file)

    handler._create_instance = create_session


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
        # says so once at start-up instead (see log_impersonation).
        level = logging.DEBUG if "impersonat" in message else logging.WARNING
        log.log(level, "%s", message)

    def error(self, message: str) -> None:
        log.debug("%s", message)


class Worker:
    """One YoutubeDL, used by one thread at a time, and the progress hook of its download."""

    def __init__(self, params: dict, ca_file: str | None):
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
                self._all.append(worker)
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
