"""InstagramSource: the Source protocol for Instagram, on top of InstagramAPI.

It serialises instaloader use, translates what it raises (latching checkpoints and an
expired session), and routes each phase to its listing (lookup, posts, reels).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from downloader.errors import (
    Checkpoint,
    DownloadError,
    InvalidInput,
    LoginRequired,
    NotFound,
    RateLimited,
    StopRequested,
    Transient,
)
from downloader.events import SHOWN_AS_EVENT
from downloader.sources.base import Account, Known, MediaItem, Page
from downloader.sources.instagram import posts
from downloader.sources.instagram.api import InstagramAPI
from downloader.sources.instagram.errors import LOGIN_SENTENCE, rate_limited, translate
from downloader.sources.instagram.lookup import (
    PLATFORM,
    AnonymousPage,
    resolve_anonymous,
    resolve_logged_in,
    resolve_renamed,
)
from downloader.sources.instagram.ratecontrol import Backoff, Budgets
from downloader.sources.instagram.reels import Reels
from downloader.sources.instagram.session import Login

log = logging.getLogger(__name__)

USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")
# Profile pages of anonymous lookups kept for the posts listing that usually follows.
MAX_KEPT_PAGES = 16


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
        budget: Budgets | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._login = Login(session_file, cookies_file, login_username)
        # Requests are counted, capped and rested per login: each source keeps its own session's.
        self.budget = budget.session(self._login.name) if budget is not None else None
        self._api = InstagramAPI(
            self._login,
            delay=request_delay,
            timeout=timeout,
            sleep=sleep,
            on_wait=on_wait,
            budget=self.budget,
        )
        self._reels = Reels(self._api, clock)  # clock: how old a prefetched answer is
        self._pages: dict[str, AnonymousPage] = {}  # profile pages the lookup loaded, by username

    @property
    def login_name(self) -> str | None:
        """The Instagram account of the configured login (None: anonymous)."""
        return self._login.name

    def latch_checkpoint(self, sentence: str) -> None:
        """Another worker with this login met a checkpoint: make no request until restarted."""
        self._login.remember(Checkpoint(sentence))

    @property
    def has_login(self) -> bool:
        """Whether a session file or cookies file is configured."""
        return self._login.configured

    # ---- protocol ----

    def resolve(self, username: str, user_id: str | None = None) -> Account:
        """The account in one request: by stored id or name when logged in, else its profile page."""
        if not USERNAME.fullmatch(username or ""):
            raise InvalidInput(f"'{username}' is not a valid Instagram username.")
        with self._guard(username):
            if self.has_login and self._api.logged_in:
                return resolve_logged_in(self._api, username, user_id)
            try:
                account, page = resolve_anonymous(self._api, username)
            except NotFound:
                if not user_id:
                    raise
                return resolve_renamed(self._api, username, user_id)  # renamed, or gone
            if user_id and account.user_id != user_id:
                # The name now belongs to someone else: follow the stored id instead.
                return resolve_renamed(self._api, username, user_id)
            if page is not None:
                self._remember_page(account.username, page)
            return account

    def pages(
        self, account: Account, phase: str, cursor: str | None, known: Known | None = None
    ) -> Iterator[Page]:
        """Pages of one phase; errors surface as DownloadError from the iterator."""
        if phase == "posts":
            return self._posts(account, cursor, known)
        if phase == "stories":
            return self._logged_in(lambda guard: self._reels.stories(account, known, guard), account)
        if phase == "highlights":
            return self._logged_in(
                lambda guard: self._reels.highlights(account, cursor, known, guard), account
            )
        raise ValueError(f"unknown Instagram phase {phase!r}")

    def prefetch(self, phase: str, accounts: list[Account], known: dict[str, Known]) -> None:
        """Stories or highlights of many accounts in batched requests, for the pages() calls that follow."""
        self._require_login()
        with self._guard(None):
            self._reels.prefetch(phase, accounts, known)

    def prefetched(self, account: Account) -> bool:
        """Whether a prefetch left fresh stories or highlights answers for this account."""
        return self._reels.prefetched(account)

    def check_cost(self, account: Account) -> int:
        """Requests ``timeline_codes`` will make for ``account`` (just resolved), its lookup not counted."""
        pages = max(1, -(-(account.media_count or 0) // posts.TIMELINE_PAGE))
        with self._guard(account.username):
            logged_in = self.has_login and self._api.logged_in
            tokens = 0 if self._api.web_tokens_known() else 1  # the start page, once per session
        if logged_in:
            return pages + tokens
        fresh = self._pages.get(account.username.lower())
        further = pages - 1  # the profile page holds the first 12 codes
        return further + (tokens if further else 0) + (0 if fresh and fresh.fresh() else 1)

    def timeline_codes(self, account: Account) -> list[str]:
        """The shortcodes of every post on the account's timeline (the whole listing, for /check)."""
        with self._guard(account.username):
            logged_in = self.has_login and self._api.logged_in
        page = self._pages.pop(account.username.lower(), None)
        guard = lambda: self._guard(account.username)  # noqa: E731
        return posts.timeline_codes(self._api, guard, account, page, logged_in)

    def revive(self, account: Account, item: MediaItem) -> MediaItem | None:
        """Instagram items are retried from their stored URL: one without it cannot be rebuilt."""
        return None

    def check_login(self) -> str:
        """The username the configured session belongs to (exactly one request)."""
        self._require_login()
        with self._guard(None):
            return self._api.check_login()

    def close(self) -> None:
        """Close instaloader's HTTP session."""
        with self._api.lock:
            self._api.close()

    # ---- phases ----

    def _posts(self, account: Account, cursor: str | None, known: Known | None) -> Iterator[Page]:
        with self._guard(account.username):
            logged_in = self.has_login and self._api.logged_in
        guard = lambda: self._guard(account.username)  # noqa: E731
        if logged_in:
            yield from posts.logged_in_pages(self._api, guard, account, cursor)
            return
        page = self._pages.pop(account.username.lower(), None)
        archived = known.archived_groups if known else set()
        yield from posts.anonymous_pages(self._api, guard, account, cursor, page, archived)

    def _remember_page(self, username: str, page: AnonymousPage) -> None:
        # Lookups without a download (/add) must not pile up pages: keep the latest few.
        self._pages[username.lower()] = page
        while len(self._pages) > MAX_KEPT_PAGES:
            self._pages.pop(next(iter(self._pages)))

    def _logged_in(self, listing: Callable, account: Account) -> Iterator[Page]:
        self._require_login()
        yield from listing(lambda: self._guard(account.username))

    def _require_login(self) -> None:
        if self._login.checkpoint is not None:
            raise self._login.checkpoint
        if not self.has_login:
            raise LoginRequired(LOGIN_SENTENCE)

    @contextmanager
    def _guard(self, username: str | None):
        """Serialise instaloader use and translate what it raises (latching checkpoints)."""
        with self._api.lock:
            if self._login.checkpoint is not None:
                raise self._login.checkpoint
            try:
                yield
            except StopRequested:
                raise  # the job is pausing or stopping during a wait: not an Instagram problem
            except Backoff as exc:
                error = _explained(exc, username)
                if exc.after_429:
                    self._rest(error)
                raise error from None
            except Exception as exc:
                self._api.unsent(exc)  # a connection that never reached Instagram is no request
                error = self._translate(exc, username)
                self._login.remember(error)
                self._rest(error)
                if error is exc:
                    raise
                raise error from exc
            finally:
                self._api.drain_errors()

    def _rest(self, error: DownloadError) -> None:
        """Instagram said to wait: every process with this login waits as long (not only this one)."""
        if isinstance(error, RateLimited) and error.retry_at is not None and self.budget is not None:
            self.budget.rest_until(error.retry_at)

    def _translate(self, exc: Exception, username: str | None) -> DownloadError:
        # Only a request that carried the session can say the session expired.
        logged_in = self.has_login and self._api.session_loaded
        error = translate(exc, username, logged_in=logged_in)
        if not isinstance(exc, DownloadError):
            # Network trouble: the service's wait line (or the job's end) says it to people.
            extra = SHOWN_AS_EVENT if isinstance(error, Transient) else None
            log.info(
                "instagram @%s: %s -> %s", username, type(exc).__name__, type(error).__name__, extra=extra
            )
            log.debug("instaloader error", exc_info=exc)
        return error


def _explained(backoff: Backoff, username: str | None) -> RateLimited:
    """A back-off from the rate controller, with the account and the reason in its sentence."""
    if backoff.after_429:
        return rate_limited(username, backoff.retry_at)
    return RateLimited(
        f"The bot's own Instagram rate window is full; waiting until {backoff.retry_at:%H:%M} UTC "
        "before asking again.",
        retry_at=backoff.retry_at,
    )
