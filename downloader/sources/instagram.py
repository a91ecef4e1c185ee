"""Instagram through instaloader, used as a library: listing only, never downloading.

The source resolves accounts and lists posts, stories and highlights as media
URLs; the service fetches the files with its own client. instaloader's request
code, parsing and rate-limit windows stay in charge of every Instagram request;
this module adds a politeness delay between requests, reports long waits, and
translates instaloader's exceptions into ``downloader.errors``.

Costs (requests to Instagram, the CDN not counted), see the tests for the proof:

- resolve: 1 (the profile page). A configured login is checked once: +1.
- posts, logged out: 1 (profile page) + 1 (start page, once) + 1 per post (the
  listing only names shortcodes) + 1 per further page of 12. One Page per post,
  so a sync that stops after N archived posts costs about N + 2.
- posts, logged in: 1 (profile query) + 1 (start page, once) + 1 per page of 12,
  one Page per instaloader page (its posts are fetched together).
- stories: 2. highlights: 1 + 2 per highlight.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.cookiejar import LoadError, MozillaCookieJar
from pathlib import Path
from typing import Any

import instaloader
import requests
from instaloader import (
    AbortDownloadException,
    BadResponseException,
    ConnectionException,
    FrozenNodeIterator,
    Instaloader,
    InstaloaderContext,
    InvalidArgumentException,
    LoginException,
    LoginRequiredException,
    NodeIterator,
    Post,
    PostChangedException,
    PrivateProfileNotFollowedException,
    Profile,
    ProfileNotExistsException,
    QueryReturnedForbiddenException,
    RateController,
    StoryItem,
    TooManyRequestsException,
)

from downloader.errors import (
    README_LOGIN,
    Checkpoint,
    DownloadError,
    InvalidInput,
    LoginRequired,
    NotFound,
    Private,
    RateLimited,
    SessionExpired,
    Transient,
)
from downloader.sources.base import Account, MediaItem, Page

log = logging.getLogger(__name__)

PLATFORM = "instagram"
LOGIN_SENTENCE = f"Instagram login required ({README_LOGIN})."
# Sleeps longer than this are announced through on_wait (the status message shows them).
WAIT_REPORT_THRESHOLD = 1.0
# instaloader retries a failed request this many times in all (a 429 first waits for its window).
MAX_ATTEMPTS = 3
# What instaloader waits after a 429 (its 11-minute window plus 6 s), when nothing better is known.
RATE_LIMIT_BACKOFF = timedelta(seconds=666)
CHECKPOINT_MARKERS = ("checkpoint_required", "challenge_required", "feedback_required")
LOGGED_OUT_MARKERS = ("login_required", "logged out", "login page")
CURSOR_VERSION = 1
USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")
SKIPPED_POST = "Instagram did not describe this post's media (it may have just been deleted)"


def _who(username: str | None) -> str:
    return f"@{username}" if username else "this account"


# ----- rate control -------------------------------------------------------------


class PoliteRateController(RateController):
    """instaloader's rate windows, plus a politeness delay and announced, injectable sleeps."""

    def __init__(
        self,
        context: InstaloaderContext,
        *,
        delay: tuple[float, float],
        sleep: Callable[[float], None],
        on_wait: Callable[[datetime, str], None] | None,
    ):
        super().__init__(context)
        self._delay = delay
        self._sleep = sleep
        self._on_wait = on_wait
        self._reason = ""
        self._last_request: float | None = None

    def sleep(self, secs: float) -> None:
        """Sleep through the injected function, announcing long waits first."""
        if secs > WAIT_REPORT_THRESHOLD and self._on_wait is not None:
            self._on_wait(datetime.now(UTC) + timedelta(seconds=secs), self._reason)
        self._sleep(secs)

    def wait_before_query(self, query_type: str) -> None:
        """Politeness delay since the previous request, then instaloader's own windows."""
        self._polite_pause()
        self._reason = "Instagram request budget: waiting for instaloader's rate window"
        super().wait_before_query(query_type)
        self._last_request = time.monotonic()

    def handle_429(self, query_type: str) -> None:
        """instaloader's back-off after a 429, announced as such."""
        self._reason = "Instagram answered 429 Too Many Requests: waiting before retrying"
        super().handle_429(query_type)

    def retry_at(self) -> datetime:
        """When Instagram may be asked again after a 429 (instaloader's estimate)."""
        earliest = max(
            getattr(self, "_earliest_next_request_time", 0.0),
            getattr(self, "_iphone_earliest_next_request_time", 0.0),
        )
        remaining = earliest - time.monotonic()
        backoff = timedelta(seconds=remaining) if remaining > 0 else RATE_LIMIT_BACKOFF
        return datetime.now(UTC) + backoff

    def _polite_pause(self) -> None:
        # The delay is *between* requests: time spent elsewhere (downloads) counts towards it.
        low, high = self._delay
        if high <= 0 or self._last_request is None:
            return
        remaining = random.uniform(low, high) - (time.monotonic() - self._last_request)
        if remaining > 0:
            self._reason = "politeness delay between Instagram requests"
            self.sleep(remaining)


# ----- error translation ----------------------------------------------------------


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and its causes (instaloader wraps the interesting one)."""
    texts, seen = [], 0
    current: BaseException | None = exc
    while current is not None and seen < 6:
        texts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
        seen += 1
    return " | ".join(texts)


def _in_chain(exc: BaseException, kind: type) -> bool:
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return False
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
    return False


def _status(text: str, code: int) -> bool:
    """Whether instaloader's message reports HTTP status ``code`` ("429 Too Many Requests")."""
    return re.search(rf"(?<![\d.]){code} [A-Z]", text) is not None


def translate(
    exc: BaseException,
    username: str | None = None,
    *,
    logged_in: bool = False,
    retry_at: datetime | None = None,
) -> DownloadError:
    """Turn an instaloader / requests exception into a DownloadError with a sentence."""
    if isinstance(exc, DownloadError):
        return exc
    text = _chain_text(exc)
    who = _who(username)
    if any(marker in text for marker in CHECKPOINT_MARKERS):
        return Checkpoint()
    if isinstance(exc, AbortDownloadException):
        return _translate_abort(text, who, logged_in, retry_at)
    if isinstance(exc, ProfileNotExistsException):
        return NotFound(f"Instagram account {who} does not exist.")
    if isinstance(exc, PrivateProfileNotFollowedException):
        return Private(
            f"Instagram account {who} is private and the bot's Instagram login does not follow it."
        )
    if isinstance(exc, LoginRequiredException):
        return _translate_login_required(text, who, logged_in)
    if isinstance(exc, LoginException):
        return SessionExpired()
    if _in_chain(exc, TooManyRequestsException) or _status(text, 429):
        return _rate_limited(who, retry_at)
    if _status(text, 401) or any(marker in text for marker in LOGGED_OUT_MARKERS):
        # Logged out, Instagram answers 401 "Please wait a few minutes" when it throttles.
        return SessionExpired() if logged_in else _rate_limited(who, retry_at)
    if isinstance(exc, QueryReturnedForbiddenException) or _status(text, 403):
        if "private" in text.lower():
            return Private(
                f"Instagram account {who} is private and the bot's Instagram login does not follow it."
            )
        return Transient(f"Instagram refused a request for {who} (403 Forbidden); try again later.")
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return Transient(
            "Instagram's TLS certificate could not be verified; behind a TLS-inspecting proxy, "
            "set CA_BUNDLE to that proxy's certificate authority."
        )
    if isinstance(exc, (ConnectionException, requests.RequestException, OSError)):
        return Transient(f"Network trouble reaching Instagram for {who}; try again later.")
    return Transient(f"Instagram sent an answer the bot does not understand for {who}; try again later.")


def _not_followed(who: str) -> str:
    return f"Instagram account {who} is private and the bot's Instagram login does not follow it."


def _translate_abort(text: str, who: str, logged_in: bool, retry_at: datetime | None) -> DownloadError:
    """AbortDownloadException: a fatal status, a login redirect, or 'stop everything'."""
    if any(marker in text for marker in LOGGED_OUT_MARKERS) or _status(text, 401):
        return SessionExpired() if logged_in else _rate_limited(who, retry_at)
    return Checkpoint()


def _translate_login_required(text: str, who: str, logged_in: bool) -> DownloadError:
    if logged_in:
        return SessionExpired()
    if "private" in text.lower():
        return LoginRequired(
            f"Instagram account {who} is private: the bot needs an Instagram login that "
            f"follows it ({README_LOGIN})."
        )
    return LoginRequired(LOGIN_SENTENCE)


def _rate_limited(who: str, retry_at: datetime | None) -> RateLimited:
    retry_at = retry_at or datetime.now(UTC) + RATE_LIMIT_BACKOFF
    sentence = (
        f"Instagram is rate limiting the bot (while listing {who}); "
        f"try again after {retry_at:%H:%M} UTC (a later scheduled sync does so by itself)."
    )
    return RateLimited(sentence, retry_at=retry_at)


# ----- sessions -----------------------------------------------------------------


def username_from_session_file(path: Path) -> str | None:
    """``session-USER`` (what ``instaloader --login USER`` writes) -> USER."""
    name = Path(path).name
    return name.removeprefix("session-") if name.startswith("session-") and len(name) > 8 else None


def instagram_cookies(path: Path) -> dict[str, str]:
    """The instagram.com cookies of a Netscape cookies.txt, by name."""
    jar = MozillaCookieJar()
    # Browsers export session cookies without an expiry: keep them; Instagram decides validity.
    jar.load(str(path), ignore_discard=True, ignore_expires=True)
    return {
        cookie.name: cookie.value or ""
        for cookie in jar
        if cookie.domain.lstrip(".") == "instagram.com" or cookie.domain.endswith(".instagram.com")
    }


def _file_stamp(path: Path | None) -> tuple[int, int] | None:
    try:
        stat = Path(path).stat() if path else None
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size) if stat else None


# ----- media ------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """instaloader's naive UTC datetimes, made aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _raw(structure: Post | StoryItem) -> dict[str, Any]:
    """The node instaloader holds for a post or story item, as its JSON export shows it."""
    node = instaloader.get_json_structure(structure)["node"]
    # Logged in, the mobile-API struct (all versions, product type, location) rides along.
    return node.get("iphone_struct") or node


def best_video_url(versions: list[dict] | None) -> str | None:
    """The largest of a list of video versions (mobile ``url``/``width`` or GraphQL ``src``)."""

    def area(version: dict) -> int:
        width = version.get("width") or version.get("config_width") or 0
        height = version.get("height") or version.get("config_height") or 0
        return int(width) * int(height or 1)

    candidates = [v for v in versions or [] if v.get("url") or v.get("src")]
    if not candidates:
        return None
    best = max(candidates, key=area)
    return best.get("url") or best.get("src")


def _location(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The post's location if the listing already carried it (instaloader would ask again)."""
    location = raw.get("location")
    if not isinstance(location, dict) or not location.get("name"):
        return None
    return {
        "id": str(location.get("pk") or location.get("id") or ""),
        "name": location.get("name"),
        "lat": location.get("lat"),
        "lng": location.get("lng"),
    }


def _post_metadata(post: Post, raw: dict[str, Any], username: str) -> dict[str, Any]:
    """The JSON written beside a post's media; only fields that cost no extra request."""
    metadata = {
        "shortcode": post.shortcode,
        "mediaid": str(post.mediaid),
        "url": f"https://www.instagram.com/p/{post.shortcode}/",
        "owner": username,
        "taken_at": _utc(post.date_utc).isoformat(),
        "typename": post.typename,
        "product_type": raw.get("product_type"),
        "is_video": post.is_video,
        "caption": post.caption,
        "likes": post.likes,
        "comments": raw.get("comment_count"),
    }
    location = _location(raw)
    if location:
        metadata["location"] = location
    return metadata


def post_items(post: Post, username: str) -> list[MediaItem]:
    """The files of one post: one per carousel slide, else the image or the video."""
    raw = _raw(post)
    kind = "reel" if raw.get("product_type") == "clips" else "post"
    taken_at = _utc(post.date_utc)
    metadata = _post_metadata(post, raw, username)

    def item(media_id: str, url: str | None, is_video: bool) -> MediaItem:
        ext = "mp4" if is_video else "jpg"
        return MediaItem(media_id, kind, taken_at, ext, url=url, metadata=metadata, group_id=post.shortcode)

    if post.typename == "GraphSidecar":
        slides = raw.get("carousel_media") or []
        items = []
        for index, node in enumerate(post.get_sidecar_nodes(), start=1):
            url = node.display_url
            if node.is_video:
                versions = slides[index - 1].get("video_versions") if index <= len(slides) else None
                url = best_video_url(versions) or node.video_url
            items.append(item(f"{post.mediaid}_{index}", url, node.is_video))
        return items
    if post.is_video:
        # Not post.video_url: logged in it HEADs every version to find the largest.
        return [item(str(post.mediaid), best_video_url(raw.get("video_versions")) or post.video_url, True)]
    return [item(str(post.mediaid), post.url, False)]


def story_item(story: StoryItem, kind: str, subdir: str = "") -> MediaItem:
    """One story or highlight item."""
    if story.is_video:
        # Not story.video_url: logged in it HEADs every version to find the largest.
        node = instaloader.get_json_structure(story)["node"]
        iphone = node.get("iphone_struct") or {}
        url = (
            best_video_url(iphone.get("video_versions"))
            or best_video_url(node.get("video_resources"))
            or story.video_url
        )
    else:
        url = story.url
    ext = "mp4" if story.is_video else "jpg"
    return MediaItem(str(story.mediaid), kind, _utc(story.date_utc), ext, url=url, subdir=subdir)


# ----- post listing cursors ---------------------------------------------------------


def freeze_after(iterator: NodeIterator) -> str:
    """A cursor that resumes *after* the last post taken from ``iterator``.

    instaloader's freeze() keeps the current item (it is meant for an interrupt in the
    middle of one), so drop it. Drop the first node too: re-creating it would cost a
    request (first_item is only used for --fast-update stamps).
    """
    frozen = iterator.freeze()
    data = dict(frozen.remaining_data or {"edges": []})
    data["edges"] = data.get("edges", [])[1:]
    frozen = frozen._replace(remaining_data=data, total_index=frozen.total_index + 1, first_node=None)
    return json.dumps({"v": CURSOR_VERSION, "posts": frozen._asdict()}, separators=(",", ":"))


def thaw(iterator: NodeIterator, cursor: str | None, username: str) -> bool:
    """Resume ``iterator`` from a cursor; False (and list from the start) when it cannot."""
    if not cursor:
        return False
    try:
        state = json.loads(cursor)
        if state.get("v") != CURSOR_VERSION:
            raise InvalidArgumentException("cursor of another version")
        frozen = FrozenNodeIterator(**state["posts"])
        if frozen.best_before and datetime.fromtimestamp(frozen.best_before) < datetime.now():
            raise InvalidArgumentException("cursor too old")
        iterator.thaw(frozen)
    except (ValueError, KeyError, TypeError, InvalidArgumentException) as exc:
        # Harmless: archived posts are skipped, so listing from the newest only costs requests.
        log.info("@%s: cannot resume the posts listing (%s); listing from the newest post", username, exc)
        return False
    return True


def _current_code(iterator: NodeIterator) -> str:
    """The shortcode of the post just taken from ``iterator`` (for reports)."""
    edges = (iterator.freeze().remaining_data or {}).get("edges") or [{}]
    node = edges[0].get("node") or {}
    return str(node.get("code") or node.get("shortcode") or node.get("pk") or "?")


def _page_done(iterator: NodeIterator) -> tuple[bool, bool]:
    """(last post of instaloader's current page, last post of all) for the post just taken."""
    data = iterator.freeze().remaining_data or {}
    last_of_page = len(data.get("edges") or []) <= 1
    more = bool((data.get("page_info") or {}).get("has_next_page"))
    return last_of_page, last_of_page and not more


# ----- the source -------------------------------------------------------------------


class InstagramSource:
    """The Source for Instagram (protocol in downloader/sources/base.py); blocking."""

    platform = PLATFORM
    phases = ("posts", "stories", "highlights")

    def __init__(
        self,
        *,
        session_file: Path | None = None,
        cookies_file: Path | None = None,
        login_username: str | None = None,
        request_delay: tuple[float, float] = (2.0, 6.0),
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[datetime, str], None] | None = None,
    ):
        self._session_file = Path(session_file) if session_file else None
        self._cookies_file = Path(cookies_file) if cookies_file else None
        self._login_username = login_username
        self._delay = request_delay
        self._timeout = timeout
        self._sleep = sleep
        self._on_wait = on_wait
        self._lock = threading.RLock()
        self._loader: Instaloader | None = None
        self._controller: PoliteRateController | None = None
        self._verified = False
        # The SessionExpired raised, and the login file's stamp at the time.
        self._expired: tuple[SessionExpired, tuple | None] | None = None
        self._checkpoint: Checkpoint | None = None

    @property
    def has_login(self) -> bool:
        """Whether a session file or cookies file is configured."""
        return self._session_file is not None or self._cookies_file is not None

    def check_login(self) -> str:
        """Check the configured login with one request; return the Instagram username it belongs to."""
        if not self.has_login:
            raise LoginRequired(LOGIN_SENTENCE)
        with self._guard(None):
            return self._ready().context.username

    # ---- protocol ----

    def resolve(self, username: str) -> Account:
        """The account from its profile page (one request)."""
        if not USERNAME.fullmatch(username or ""):
            raise InvalidInput(f"'{username}' is not a valid Instagram username.")
        with self._guard(username):
            loader = self._ready()
            profile = Profile.from_username(loader.context, username)
            return Account(
                platform=PLATFORM,
                username=profile.username,
                user_id=str(profile.userid),
                display_name=profile.full_name or "",
                is_private=bool(profile.is_private),
                media_count=_media_count(profile),
            )

    def pages(self, account: Account, phase: str, cursor: str | None) -> Iterator[Page]:
        """Pages of one phase; errors surface as DownloadError from the iterator."""
        if phase == "posts":
            return self._posts(account, cursor)
        if phase == "stories":
            return self._stories(account)
        if phase == "highlights":
            return self._highlights(account, cursor)
        raise ValueError(f"unknown Instagram phase {phase!r}")

    def close(self) -> None:
        """Close instaloader's HTTP session."""
        with self._lock:
            if self._loader is not None:
                self._drain_errors()
                self._loader.close()
            self._loader = None
            self._verified = False

    # ---- phases ----

    def _posts(self, account: Account, cursor: str | None) -> Iterator[Page]:
        with self._guard(account.username):
            loader = self._ready()
            logged_in = loader.context.is_logged_in
            if account.is_private and not logged_in:
                # The profile page said so: no need to ask Instagram again.
                raise LoginRequiredException(f"private profile {account.username}")
            profile = self._profile_stub(loader, account)
            iterator = profile.get_posts()
            thaw(iterator, cursor, account.username)
        while True:
            with self._guard(account.username):
                page = self._next_posts_page(iterator, account.username, per_post=not logged_in)
            if page is None:
                return
            yield page
            if page.cursor is None:
                return

    def _next_posts_page(self, iterator: NodeIterator, username: str, per_post: bool) -> Page | None:
        """Logged out one post per Page (each costs a request); logged in one instaloader page."""
        items: list[MediaItem] = []
        skipped: list[tuple[str, str]] = []
        while True:
            before = iterator.total_index
            try:
                items.extend(post_items(next(iterator), username))
            except StopIteration:
                return Page(items, None, skipped=skipped) if items or skipped else None
            except (BadResponseException, PostChangedException, KeyError) as exc:
                if iterator.total_index == before:
                    raise  # the listing itself failed, not one post
                # One odd or deleted post must not stop the listing of all the others.
                log.info("@%s: skipping a post: %s", username, exc)
                skipped.append((_current_code(iterator), SKIPPED_POST))
            last_of_page, last_of_all = _page_done(iterator)
            if per_post or last_of_page:
                cursor = None if last_of_all else freeze_after(iterator)
                return Page(items, cursor, skipped=skipped)

    def _stories(self, account: Account) -> Iterator[Page]:
        self._require_login()
        with self._guard(account.username):
            loader = self._ready()
            user_id = self._user_id(account)
            items = [
                story_item(item, "story")
                for story in loader.get_stories(userids=[user_id])
                for item in story.get_items()
            ]
        yield Page(items, None, total=len(items))

    def _highlights(self, account: Account, cursor: str | None) -> Iterator[Page]:
        self._require_login()
        with self._guard(account.username):
            loader = self._ready()
            highlights = list(loader.get_highlights(self._profile_stub(loader, account)))
            start = _highlight_start(cursor, [h.unique_id for h in highlights])
        for index in range(start, len(highlights)):
            highlight = highlights[index]
            with self._guard(account.username):
                items = [story_item(i, "highlight", highlight.title) for i in highlight.get_items()]
            more = index + 1 < len(highlights)
            next_cursor = _highlight_cursor(index + 1, highlights[index + 1].unique_id) if more else None
            yield Page(items, next_cursor)

    # ---- helpers ----

    def _require_login(self) -> None:
        if self._checkpoint is not None:
            raise self._checkpoint
        if not self.has_login:
            raise LoginRequired(LOGIN_SENTENCE)

    def _user_id(self, account: Account) -> int:
        if account.user_id:
            return int(account.user_id)
        return int(self.resolve(account.username).user_id or 0)

    def _profile_stub(self, loader: Instaloader, account: Account) -> Profile:
        """A Profile from what resolve() found, so listing does not fetch the page again."""
        return Profile(loader.context, {"username": account.username, "id": self._user_id(account)})

    @contextmanager
    def _guard(self, username: str | None):
        """Serialise instaloader use and translate what it raises (latching checkpoints)."""
        with self._lock:
            if self._checkpoint is not None:
                raise self._checkpoint
            try:
                yield
            except Exception as exc:
                error = self._translate(exc, username)
                self._remember(error)
                if error is exc:
                    raise
                raise error from exc
            finally:
                self._drain_errors()

    def _translate(self, exc: Exception, username: str | None) -> DownloadError:
        logged_in = self._loader is not None and self._loader.context.is_logged_in
        retry_at = self._controller.retry_at() if self._controller else None
        error = translate(exc, username, logged_in=logged_in, retry_at=retry_at)
        if not isinstance(exc, DownloadError):
            log.info("instagram %s: %s -> %s", _who(username), type(exc).__name__, type(error).__name__)
            log.debug("instaloader error", exc_info=exc)
        return error

    def _remember(self, error: DownloadError) -> None:
        """Checkpoints stop every later request; an expired login waits for a new login file."""
        if isinstance(error, Checkpoint):
            self._checkpoint = error
        elif isinstance(error, SessionExpired) and self.has_login:
            self._verified = False
            self._expired = (error, self._login_stamp())

    def _drain_errors(self) -> None:
        # instaloader keeps every error for a final report; a bot runs for months, so log and forget.
        if self._loader is not None:
            for message in self._loader.context.error_log:
                log.debug("instaloader: %s", message)
            self._loader.context.error_log.clear()

    def _login_stamp(self) -> tuple | None:
        return _file_stamp(self._session_file or self._cookies_file)

    def _ready(self) -> Instaloader:
        """The instaloader instance, logged in and verified when a login is configured."""
        if self._expired is not None:
            error, stamp = self._expired
            if self._login_stamp() == stamp:
                raise error  # no request until the login file changes
            self.close()  # a new login: start over with it
            self._expired = None
        if self._loader is None:
            self._loader = self._new_loader()
            if self.has_login:
                self._load_login(self._loader)
        if self.has_login and not self._verified:
            self._verify(self._loader)
        return self._loader

    def _new_loader(self) -> Instaloader:
        def make_controller(context: InstaloaderContext) -> PoliteRateController:
            self._controller = PoliteRateController(
                context, delay=self._delay, sleep=self._sleep, on_wait=self._on_wait
            )
            return self._controller

        return Instaloader(
            sleep=False,
            quiet=True,
            download_pictures=False,
            download_videos=False,
            download_video_thumbnails=False,
            download_geotags=False,
            download_comments=False,
            save_metadata=False,
            compress_json=False,
            max_connection_attempts=MAX_ATTEMPTS,
            request_timeout=self._timeout,
            rate_controller=make_controller,
            # A 401 is not worth retrying: logged in it means the session is gone.
            fatal_status_codes=[401],
        )

    def _load_login(self, loader: Instaloader, username: str | None = None) -> None:
        """Put the configured session into instaloader (no request)."""
        username = username or self._login_username
        try:
            if self._session_file is not None:
                username = username or username_from_session_file(self._session_file) or "instagram"
                loader.load_session_from_file(username, str(self._session_file))
                return
            assert self._cookies_file is not None
            cookies = instagram_cookies(self._cookies_file)
        except (OSError, LoadError, EOFError, ValueError) as exc:
            raise SessionExpired(self._unreadable_sentence()) from exc
        if not cookies.get("sessionid") or not cookies.get("csrftoken"):
            raise SessionExpired(
                f"The cookies file {self._cookies_file.name} has no Instagram sessionid/csrftoken: "
                f"export it from a browser logged in to instagram.com ({README_LOGIN})."
            )
        loader.load_session(username or "instagram", cookies)

    def _unreadable_sentence(self) -> str:
        path = self._session_file or self._cookies_file
        return (
            f"The Instagram login file {path.name if path else ''} cannot be read: log in again "
            f"with `instaloader --login USER` ({README_LOGIN})."
        )

    def _verify(self, loader: Instaloader) -> None:
        """Ask Instagram once who the session belongs to (instaloader's test_login)."""
        context = loader.context
        mark = len(context.error_log)
        name = loader.test_login()
        if name:
            if name != context.username:
                log.info("Instagram session belongs to @%s", name)
                self._load_login(loader, name)
            self._verified = True
            return
        problem = next((m for m in context.error_log[mark:] if "checking if logged in" in m), None)
        if problem is None:
            raise SessionExpired()
        # test_login swallows the error; rebuild it so network trouble is not called "expired".
        raise ConnectionException(problem)


def _media_count(profile: Profile) -> int | None:
    """The post count the profile page showed (the property would cost a request logged in)."""
    node = instaloader.get_json_structure(profile)["node"]
    count = (node.get("edge_owner_to_timeline_media") or {}).get("count")
    for key in ("all_media_count", "media_count"):
        if count is None:
            count = node.get(key)
    return int(count) if count is not None else None


def _highlight_cursor(index: int, highlight_id: int) -> str:
    return json.dumps({"v": CURSOR_VERSION, "next": index, "id": str(highlight_id)})


def _highlight_start(cursor: str | None, ids: list[int]) -> int:
    """Where to resume the highlights: at the saved highlight, found by id if it moved."""
    if not cursor:
        return 0
    try:
        state = json.loads(cursor)
        wanted = str(state.get("id", ""))
        positions = [i for i, hid in enumerate(ids) if str(hid) == wanted]
        return positions[0] if positions else max(0, int(state["next"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return 0
