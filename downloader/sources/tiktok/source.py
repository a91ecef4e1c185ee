"""TikTok through yt-dlp, used as a library (never a subprocess).

Listing drives yt-dlp's own TikTok user extractor one page at a time: its
request builder, networking, proxy, cookies and TLS setup, but our loop, so
that each page costs exactly one ``item_list`` request and TikTok's time cursor
can be stored between pages (a stopped job resumes on the right page). Video
pages are fetched only by a MediaItem's ``download`` hook, which runs yt-dlp's
normal extract-and-download for that one video into the exact path it is given.
Photo posts' slides and sound are CDN URLs from the listing itself (see posts.py).

YoutubeDL objects are not thread-safe, and the service downloads several videos
at once from worker threads, so each thread borrows its own YoutubeDL from a
small pool (which also keeps connections alive between videos).
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Container, Iterator
from pathlib import Path

from downloader import partials
from downloader.errors import DownloadError, LoginRequired, NotFound, StopRequested, Transient
from downloader.sources.base import Account, Known, MediaItem, Page, ProgressFn
from downloader.sources.tiktok.errors import (
    COOKIES_HINT,
    for_video,
    is_ytdlp_error,
    no_videos_sentence,
    translate,
    translated,
)
from downloader.sources.tiktok.listing import PLATFORM, account_from, fetch_page, next_position
from downloader.sources.tiktok.posts import VIDEO_URL, describe, photo_items
from downloader.sources.ytdlp import DatabaseArchive, Worker, WorkerPool, YtDlpLog

log = logging.getLogger(__name__)

USER_URL = "https://www.tiktok.com/@{username}"
VIDEO_EXTRACTOR = "TikTok"  # yt-dlp's extractor of VIDEO_URL pages


class TikTokSource:
    """TikTok accounts' videos, listed page by page and downloaded with yt-dlp."""

    platform = PLATFORM
    phases = ("videos",)

    def __init__(
        self,
        *,
        proxy: str | None = None,
        ca_file: str | None = None,
        extra_options: dict | None = None,
        archive: Container[str] | None = None,
        test_mode: bool = False,
    ):
        if ca_file:
            # Fail at start-up, not on the first download, when the file is unusable.
            ssl.create_default_context(cafile=ca_file)
        self._archive = DatabaseArchive(archive) if archive is not None else None
        params = _ytdlp_params(proxy, self._archive, test_mode) | (extra_options or {})
        self._workers = WorkerPool(params, ca_file)

    def resolve(self, username: str, user_id: str | None = None) -> Account:
        """Read the account from its user page (one request; the secUid alone cannot give counts).

        A name not found with a stored secUid: one listing by that id tells the account's
        current name (its videos' author), read from its user page (renamed), or it is gone."""
        try:
            return self._resolve_name(username)
        except NotFound:
            if not user_id:
                raise
            current = self._name_by_id(username, user_id)
            if current is None:
                raise
            if current.lower() == username.lower():  # its videos say it exists: a bot check, not gone
                raise Transient(
                    f"TikTok's page for @{username} did not answer; trying again later."
                ) from None
            log.info("TikTok @%s answers as @%s (same secUid)", username, current)
            return self._resolve_name(current)

    def _name_by_id(self, username: str, sec_uid: str) -> str | None:
        """The author name of the newest listed video of a secUid (None: no video says)."""
        stand_in = Account(platform=PLATFORM, username=username, user_id=sec_uid)
        with self._workers.borrow() as worker, translated(username):
            response = fetch_page(worker.user_extractor(), stand_in, int(time.time() * 1000), set())
        for post in response.get("itemList") or []:
            author = post.get("author") or {}
            if author.get("secUid") in (None, sec_uid) and author.get("uniqueId"):
                return str(author["uniqueId"])
        return None

    def _resolve_name(self, username: str) -> Account:
        with translated(username):
            data = self._page_data(USER_URL.format(username=username), username)
        if not data:
            raise Transient(
                f"TikTok answered @{username}'s page without its data (a bot check?); try again later."
            )
        return account_from(username, data.get("webapp.user-detail") or {})

    def pages(
        self, account: Account, phase: str, cursor: str | None, known: Known | None = None
    ) -> Iterator[Page]:
        """Yield the account's videos newest first, one item_list request per page."""
        if phase != "videos":
            raise ValueError(f"TikTok has no phase {phase!r}")
        if not account.user_id:
            raise ValueError("pages() needs the secUid that resolve() puts in Account.user_id")
        if account.media_count == 0 and cursor is None:
            # TikTok says so; asking anyway would page back a week at a time to 2016.
            log.info("%s", no_videos_sentence(account.username))
            yield Page(items=[], cursor=None, total=0)
            return
        with self._workers.borrow() as worker:
            yield from self._listing(worker, account, cursor)

    def close(self) -> None:
        """Close every YoutubeDL this source opened."""
        self._workers.close()

    # ---- listing ----

    def _listing(self, worker: Worker, account: Account, cursor: str | None) -> Iterator[Page]:
        extractor = worker.user_extractor()
        position = int(cursor) if cursor else int(time.time() * 1000)
        seen: set[str] = set()
        first = cursor is None
        while True:
            with translated(account.username):
                response = fetch_page(extractor, account, position, seen)
            posts = [
                post
                for post in response.get("itemList") or []
                if post.get("id") and str(post["id"]) not in seen
            ]
            seen.update(str(post["id"]) for post in posts)
            position, more = next_position(response, position)
            if first and not seen and more:
                # As yt-dlp: nothing on the first page but "more" means the videos are hidden.
                raise LoginRequired(
                    f"TikTok lists no videos of @{account.username} without a login: {COOKIES_HINT}."
                )
            first = False
            yield self._page(account, posts, str(position) if more else None)
            if not more:
                return

    def _page(self, account: Account, posts: list[dict], cursor: str | None) -> Page:
        items, skipped = [], []
        for post in posts:
            files, reason = describe(account.username, post, self._download)
            items += files
            if reason:
                skipped.append((str(post["id"]), reason))
        return Page(items=items, cursor=cursor, total=account.media_count, skipped=skipped)

    def prefetch(self, phase: str, accounts: list[Account], known: dict[str, Known]) -> None:
        """TikTok has no batched listing: each job lists its own account."""

    def prefetched(self, account: Account) -> bool:
        """Never: nothing is prefetched."""
        return False

    def revive(self, account: Account, item: MediaItem) -> MediaItem | None:
        """A file that failed in an earlier run, downloadable again: a video's page is fetched when
        its turn comes; a photo post's slide or sound gets a fresh address from the post's page now
        (its stored one has likely expired), or keeps the stored one when the page fails."""
        if item.kind == "video":
            url = VIDEO_URL.format(username=account.username, post_id=item.media_id)
            item.download = functools.partial(self._download, url, item.media_id)
            return item
        try:
            fresh = self._post_files(account.username, item.group_id or item.media_id)
        except DownloadError as exc:
            log.info("TikTok post of %s: no fresh address (%s)", item.media_id, exc.sentence)
            fresh = []
        match = next((new for new in fresh if new.media_id == item.media_id), None)
        if match is not None:
            item.url, item.headers = match.url, match.headers
        return item if item.url else None

    def _post_files(self, username: str, post_id: str) -> list[MediaItem]:
        """A photo post's files as its own page describes them now (one page request)."""
        with translated():
            data = self._page_data(VIDEO_URL.format(username=username, post_id=post_id), post_id)
        detail = data.get("webapp.video-detail") or {}
        if detail.get("statusCode"):
            raise Transient(f"TikTok answered the post's page with status {detail['statusCode']}.")
        post = (detail.get("itemInfo") or {}).get("itemStruct") or {}
        return photo_items(username, post) if post.get("id") else []

    def _page_data(self, url: str, name: str) -> dict:
        """The rehydration data of a TikTok web page, fetched as a browser (impersonated)."""
        with self._workers.borrow() as worker:
            extractor = worker.user_extractor()
            webpage = extractor._download_webpage(
                url,
                name,
                "Downloading webpage",
                impersonate=True,
                headers=extractor._generate_blockbuster_headers(),
            )
            return extractor._get_universal_data(webpage, name) or {}

    # ---- downloading ----

    def _download(self, url: str, video_id: str, temp_path: Path, progress: ProgressFn) -> None:
        """Fetch the video page and the video; write exactly ``temp_path``."""
        target = Path(temp_path)
        with self._workers.borrow() as worker:
            try:
                info = worker.download(url, target, progress, VIDEO_EXTRACTOR)
            except StopRequested:
                raise  # Pause, Cancel or shutdown: yt-dlp's partial file stays to be continued
            except DownloadError:
                partials.discard(partials.final_for(target))
                raise  # ours
            except Exception as exc:
                partials.discard(partials.final_for(target))
                if isinstance(exc, OSError) or is_ytdlp_error(exc):
                    raise for_video(translate(exc), video_id) from exc
                raise
            partials.record_for(partials.final_for(target)).unlink(missing_ok=True)
        if not target.is_file():
            # extract_info answers None, unfetched, for a video the archive has (a job that
            # overlapped this one may have just archived it).
            archived = info is None and f"{PLATFORM} {video_id}" in (self._archive or ())
            reason = "is already in the archive" if archived else "was not written by yt-dlp"
            raise DownloadError(f"TikTok video {video_id} {reason}.")


def _ytdlp_params(proxy: str | None, archive: DatabaseArchive | None, test_mode: bool) -> dict:
    """YoutubeDL options for listing and for writing one video to an exact path."""
    params = {
        "logger": YtDlpLog(),
        "quiet": True,
        "noprogress": True,
        # yt-dlp formats a progress line for every block it reads even when nothing is shown;
        # at most one a second. Our progress hook is separate and sees every block.
        "progress_delta": 1.0,
        # Trust the system store (and SSL_CERT_FILE) rather than certifi; ca_file is added.
        "compat_opts": ["no-certifi"],
        # Keep yt-dlp's "<path>.part" (renamed to the path at the end): with "nopart" its
        # HTTP downloader strips a ".part" ending, which the service's temp names have.
        # Continue a "<path>.part" a stopped download left (Worker.download checks it is the
        # same file), and replace a file already at the path instead of reporting it "has
        # already been downloaded".
        "continuedl": True,
        "overwrites": True,
        "fixup": "never",  # fixups need ffmpeg and TikTok's progressive mp4s need none
        # yt-dlp skips archived videos before fetching their pages.
        "download_archive": archive,
    }
    if proxy is not None:
        params["proxy"] = proxy
    if test_mode:
        params |= {"retries": 0, "extractor_retries": 0, "socket_timeout": 5}
    return params
