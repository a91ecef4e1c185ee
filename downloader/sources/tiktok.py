"""TikTok through yt-dlp, used as a library (never a subprocess).

Listing drives yt-dlp's own TikTok user extractor one page at a time: its
request builder, networking, proxy, cookies and TLS setup, but our loop, so
that each page costs exactly one ``item_list`` request and TikTok's time cursor
can be stored between pages (a stopped job resumes on the right page). Video
pages are fetched only by a MediaItem's ``download`` hook, which runs yt-dlp's
normal extract-and-download for that one video into the exact path it is given.

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
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from yt_dlp.networking.exceptions import CertificateVerifyError, HTTPError, ProxyError
from yt_dlp.networking.exceptions import TransportError as YtDlpTransportError
from yt_dlp.utils import ExtractorError, YoutubeDLError

from downloader.errors import (
    DownloadError,
    LoginRequired,
    NotFound,
    Private,
    RateLimited,
    Transient,
)
from downloader.sources.base import Account, Known, MediaItem, Page, ProgressFn
from downloader.sources.ytdlp import DatabaseArchive, Worker, WorkerPool, YtDlpLog, log_impersonation

log = logging.getLogger(__name__)

PLATFORM = "tiktok"
USER_URL = "https://www.tiktok.com/@{username}"
VIDEO_URL = "https://www.tiktok.com/@{username}/video/{video_id}"
VIDEO_EXTRACTOR = "TikTok"  # yt-dlp's extractor of VIDEO_URL pages
PHOTO_REASON = "photo slideshow: yt-dlp cannot download TikTok photo posts"
RATE_LIMITED = (
    "TikTok is rate limiting or has blocked this IP address; try again in an hour or so "
    "(another network or proxy usually helps)."
)
COOKIES_HINT = (
    "export the cookies of a logged-in TikTok account from a browser as cookies.txt and "
    'give it to yt-dlp with YTDLP_OPTIONS={"cookiefile": "/path/to/cookies.txt"}'
)
LOGIN_REQUIRED = f"TikTok wants a login for this: {COOKIES_HINT}."
CERTIFICATE = (
    "TikTok's TLS certificate could not be verified; behind a TLS-inspecting proxy, set "
    "CA_BUNDLE to that proxy's certificate authority."
)

# statusCode values of TikTok's webapp.user-detail / webapp.video-detail / item_list.
_USER_MISSING = (10202, 10221)
_ACCOUNT_PRIVATE = 10222
_POST_PRIVATE = 10216
_IP_BLOCKED = 10204
# Like yt-dlp: never page back before TikTok existed, and step a week back over empty pages.
_TIKTOK_EPOCH_MS = 1_472_706_000_000
_WEEK_MS = 7 * 86_400_000


def not_found_sentence(username: str | None) -> str:
    """What the user reads for an account that does not exist."""
    return f"TikTok account {_who(username)} does not exist."


def private_sentence(username: str | None) -> str:
    """What the user reads for a private account."""
    return (
        f"TikTok account {_who(username)} is private; to archive it, {COOKIES_HINT} "
        "(that account must follow it)."
    )


def no_videos_sentence(username: str | None) -> str:
    """What the user reads for an account without videos (not a failure)."""
    return f"TikTok account {_who(username)} has not posted any videos."


def _who(username: str | None) -> str:
    return f"@{username}" if username else "this account"


# ---- error translation ---------------------------------------------------------


def translate(exc: BaseException, *, username: str | None = None) -> DownloadError:
    """Turn a yt-dlp, network or TikTok error into a DownloadError carrying a sentence."""
    if isinstance(exc, DownloadError):
        return exc
    chain = list(_causes(exc))
    message = " | ".join(str(error) for error in chain)
    status = next((error.status for error in chain if isinstance(error, HTTPError)), None)
    if status == 429 or "IP address is blocked" in message:
        return RateLimited(RATE_LIMITED)
    if (status == 404 and username) or "Unable to extract secondary user ID" in message:
        return NotFound(not_found_sentence(username))
    if "does not have any videos posted" in message:
        return DownloadError(no_videos_sentence(username))
    if "account is private" in message:
        return Private(private_sentence(username))
    if "log in" in message.lower() or "login" in message.lower():
        return LoginRequired(LOGIN_REQUIRED)
    if status is not None:
        return _http_error(status)
    return _network_error(chain) or DownloadError(f"TikTok download failed: {_short(chain[0])}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: yt-dlp's ``exc_info`` and ``cause``, Python's ``__cause__``."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop(0)
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        wrapped = getattr(error, "exc_info", None)
        cause = getattr(error, "cause", None)
        pending += [
            wrapped[1] if isinstance(wrapped, tuple) and len(wrapped) > 1 else None,
            cause if isinstance(cause, BaseException) else None,
            error.__cause__,
            error.__context__,
        ]


def _http_error(status: int) -> DownloadError:
    if status == 404:
        return NotFound("TikTok answered HTTP 404: it is gone.")
    if status >= 500:
        return Transient(f"TikTok's servers answered HTTP {status}; try again later.")
    return DownloadError(f"TikTok refused the request (HTTP {status}).")


def _network_error(chain: list[BaseException]) -> DownloadError | None:
    if any(isinstance(error, CertificateVerifyError) for error in chain):
        return DownloadError(CERTIFICATE)
    if any(isinstance(error, ProxyError) for error in chain):
        return Transient("The proxy to TikTok failed; check HTTPS_PROXY or try again later.")
    if any(isinstance(error, YtDlpTransportError | ConnectionError | TimeoutError) for error in chain):
        return Transient("Network trouble reaching TikTok; try again later.")
    if any(isinstance(error, OSError) for error in chain):
        oserror = next(error for error in chain if isinstance(error, OSError))
        return DownloadError(f"Could not write the TikTok video: {oserror.strerror or oserror}.")
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.removeprefix("ERROR: ")
    return text if len(text) <= 200 else text[:197] + "..."


def _for_video(error: DownloadError, video_id: str) -> DownloadError:
    """The same kind of error, with a sentence naming the video."""
    return type(error)(f"TikTok video {video_id}: {error.sentence}")


@contextmanager
def _translated(username: str | None = None) -> Iterator[None]:
    """Raise yt-dlp's and the network's errors as DownloadErrors."""
    try:
        yield
    except DownloadError:
        raise
    except (YoutubeDLError, OSError) as exc:
        raise translate(exc, username=username) from exc


# ---- the source ------------------------------------------------------------------


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
        log_impersonation()
        self._archive = DatabaseArchive(archive) if archive is not None else None
        params = _ytdlp_params(proxy, self._archive, test_mode) | (extra_options or {})
        self._workers = WorkerPool(params, ca_file)

    def resolve(self, username: str, user_id: str | None = None) -> Account:
        """Read the account from its user page (one request; the secUid alone cannot give counts)."""
        with self._workers.borrow() as worker, _translated(username):
            extractor = worker.user_extractor()
            webpage = extractor._download_webpage(
                USER_URL.format(username=username),
                username,
                "Downloading user webpage",
                impersonate=True,
                headers=extractor._generate_blockbuster_headers(),
            )
            data = extractor._get_universal_data(webpage, username)
        if not data:
            raise Transient(
                f"TikTok answered @{username}'s page without its data (a bot check?); try again later."
            )
        return _account(username, data.get("webapp.user-detail") or {})

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
            with _translated(account.username):
                response = _fetch_page(extractor, account, position, seen)
            posts = [
                post
                for post in response.get("itemList") or []
                if post.get("id") and str(post["id"]) not in seen
            ]
            seen.update(str(post["id"]) for post in posts)
            position, more = _next_position(response, position)
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
            if post.get("imagePost"):
                skipped.append((str(post["id"]), PHOTO_REASON))
            else:
                items.append(self._media_item(account, post))
        return Page(items=items, cursor=cursor, total=account.media_count, skipped=skipped)

    def prefetch(self, phase: str, accounts: list[Account], known: dict[str, Known]) -> None:
        """TikTok has no batched listing: each job lists its own account."""

    def prefetched(self, account: Account) -> bool:
        """Never: nothing is prefetched."""
        return False

    def revive(self, account: Account, item: MediaItem) -> MediaItem:
        """A video that failed in an earlier run, downloadable again (its page is fetched then)."""
        url = VIDEO_URL.format(username=account.username, video_id=item.media_id)
        item.download = functools.partial(self._download, url, item.media_id)
        return item

    def _media_item(self, account: Account, post: dict) -> MediaItem:
        video_id = str(post["id"])
        url = VIDEO_URL.format(username=account.username, video_id=video_id)
        # TikTok ids carry their creation time in the high 32 bits: a fallback for createTime.
        created = int(post.get("createTime") or int(video_id) >> 32)
        taken_at = datetime.fromtimestamp(created, UTC)
        return MediaItem(
            media_id=video_id,
            kind="video",
            taken_at=taken_at,
            ext="mp4",
            download=functools.partial(self._download, url, video_id),
            metadata=_metadata(post, url, taken_at),
            group_id=video_id,
            caption=post.get("desc") or None,
            link=url,
        )

    # ---- downloading ----

    def _download(self, url: str, video_id: str, temp_path: Path, progress: ProgressFn) -> None:
        """Fetch the video page and the video; write exactly ``temp_path``."""
        target = Path(temp_path)
        with self._workers.borrow() as worker:
            try:
                info = worker.download(url, target, progress, VIDEO_EXTRACTOR)
            except DownloadError:
                raise  # ours, e.g. raised by the progress callback to cancel
            except (YoutubeDLError, OSError) as exc:
                raise _for_video(translate(exc), video_id) from exc
            finally:
                # yt-dlp leaves its partial file behind on failure; the service cleans only
                # the path it gave us.
                target.with_name(target.name + ".part").unlink(missing_ok=True)
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
        # Never resume a stale ".part", and replace a file already at the path instead
        # of reporting it "has already been downloaded".
        "continuedl": False,
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


def _account(username: str, detail: dict) -> Account:
    """An Account from webapp.user-detail, or the DownloadError it amounts to."""
    status = detail.get("statusCode") or 0
    user_info = detail.get("userInfo") or {}
    user = user_info.get("user") or {}
    if status == _IP_BLOCKED:
        raise RateLimited(RATE_LIMITED)
    if status in _USER_MISSING or not user:
        raise NotFound(not_found_sentence(username))
    count = _video_count(user_info)
    # TikTok answers 10222 for private accounts even to followers; only they see a count.
    if status == _ACCOUNT_PRIVATE and not count:
        raise Private(private_sentence(username))
    if not user.get("secUid"):
        raise Transient(f"TikTok did not say which account @{username} is; try again later.")
    return Account(
        platform=PLATFORM,
        username=username,
        user_id=user["secUid"],
        display_name=user.get("nickname") or "",
        is_private=bool(user.get("privateAccount")) or status == _ACCOUNT_PRIVATE,
        media_count=count,
    )


def _video_count(user_info: dict) -> int | None:
    for stats in ("stats", "statsV2"):  # statsV2 holds the same numbers as strings
        value = (user_info.get(stats) or {}).get("videoCount")
        if value is not None and str(value).isdigit():
            return int(value)
    return None


def _fetch_page(extractor, account: Account, position: int, seen: set[str]) -> dict:
    """One item_list request (more only if TikTok repeats a page, as yt-dlp retries it)."""
    for retry in extractor.RetryManager():
        response = extractor._download_json(
            extractor._API_BASE_URL,
            account.username,
            f"Downloading videos before {position}",
            query=extractor._build_web_query(account.user_id, position),
        )
        _check_listing_status(response, account.username)
        ids = {str(post["id"]) for post in response.get("itemList") or [] if post.get("id")}
        if ids and ids == seen:
            # yt-dlp's cure for TikTok sending the same page forever: a new device id.
            extractor.__dict__.pop("_DEVICE_ID", None)
            retry.error = ExtractorError("TikTok API keeps sending the same page", expected=True)
    return response


def _check_listing_status(response: dict, username: str) -> None:
    status = response.get("statusCode") or 0
    if status == _IP_BLOCKED:
        raise RateLimited(RATE_LIMITED)
    if status in (_ACCOUNT_PRIVATE, _POST_PRIVATE):
        raise LoginRequired(LOGIN_REQUIRED)
    if status in _USER_MISSING:
        raise NotFound(not_found_sentence(username))
    if status:
        raise Transient(f"TikTok answered the video listing with status {status}; try later.")


def _next_position(response: dict, position: int) -> tuple[int, bool]:
    """The cursor after this page and whether TikTok has older videos."""
    items = response.get("itemList") or []
    last = items[-1].get("createTime") if items else None
    following = int(last) * 1000 if last else 0
    if following <= 0 or following >= position:
        following = position - _WEEK_MS  # an empty page: TikTok pages by time, look further back
    more = bool(response.get("hasMorePrevious")) and following >= _TIKTOK_EPOCH_MS
    return following, more


def _metadata(post: dict, url: str, taken_at: datetime) -> dict:
    """The post's JSON sidecar: what a person would want to keep besides the video."""
    author = post.get("author") or {}
    return {
        "id": str(post["id"]),
        "url": url,
        "created": taken_at.isoformat(),
        "description": post.get("desc") or "",
        "author": author.get("uniqueId"),
        "author_name": author.get("nickname"),
        "music": (post.get("music") or {}).get("title"),
        "stats": post.get("stats") or {},
    }
