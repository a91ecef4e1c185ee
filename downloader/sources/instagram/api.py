"""InstagramAPI: the one class that knows Instagram's endpoints, batching limits and costs.

Every request goes through instaloader's context (its sessions, headers, retries and
rate windows) and through our rate controller (politeness delay, budget, counting).
Listing classes (lookup, posts, reels) sit on top and never build a request themselves.

Costs, in API requests (the CDN not counted):
- user_info (by stored id, logged in) 1; user_by_name (logged in) 1; profile_page (anonymous) 1
- user_by_id (anonymous, only when a stored account's name is not found) 1 (+1 start page once)
- timeline: 1 per page of 12 (+1 start page once per process for the web app's tokens)
- anonymous listing: the profile page holds the first 12 codes; 1 per further 12; post() 1 each
- stories(user_ids): 1 per STORIES_PER_QUERY accounts; reels_media(ids): 1 per REELS_PER_REQUEST
- highlights_tray(user_id): 1
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from instaloader import (
    BadResponseException,
    FrozenNodeIterator,
    Instaloader,
    InstaloaderContext,
    NodeIterator,
    Post,
    QueryReturnedNotFoundException,
)

from downloader.sources.instagram.connections import share_connections
from downloader.sources.instagram.ratecontrol import Budget, PoliteRateController
from downloader.sources.instagram.session import Login

# instaloader's get_stories() asks for at most 50 accounts' reels per GraphQL query.
STORIES_PER_QUERY = 50
# gallery-dl asks reels_media for at most 5 highlight reels at a time; Instagram's web app
# does the same. The fake refuses more, as Instagram answers larger batches partially.
REELS_PER_REQUEST = 5
HASH_STORIES = "303a4ae99711322310f25250d988f3b7"
DOC_TIMELINE = "29104886249145907"
DOC_ANON_TIMELINE = "28904005159232689"
# The profile query by user id (instaloader's Profile.from_id), answered to logged-out visitors too.
DOC_PROFILE = "27937681195819736"
MAX_ATTEMPTS = 3


def chunks(items: list, size: int) -> Iterator[list]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class InstagramAPI:
    """Instagram's endpoints on top of one instaloader instance; blocking, one caller at a time."""

    def __init__(
        self,
        login: Login,
        *,
        delay: tuple[float, float],
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[datetime, str], None] | None = None,
        budget: Budget | None = None,
    ):
        self.login = login
        self._delay = delay
        self._timeout = timeout
        self._sleep = sleep
        self._on_wait = on_wait
        self._budget = budget
        self.lock = threading.RLock()
        self._loader: Instaloader | None = None
        self._controller: PoliteRateController | None = None

    # ---- the instaloader instance ----

    @property
    def loader(self) -> Instaloader:
        """instaloader, with the configured session loaded (no request)."""
        if self.login.raise_if_latched():
            self.close()  # a new login file: start over with it
        if self._loader is None:
            loader = self._new_loader()
            if self.login.configured:
                self.login.load_into(loader)
            self._loader = loader
        return self._loader

    @property
    def context(self) -> InstaloaderContext:
        """instaloader's context (sessions, headers, rate control)."""
        return self.loader.context

    @property
    def logged_in(self) -> bool:
        """Whether requests carry the bot's session."""
        return self.login.configured and self.context.is_logged_in

    @property
    def session_loaded(self) -> bool:
        """Whether a session is loaded now (never loads one: safe while handling an error)."""
        return self._loader is not None and self._loader.context.is_logged_in

    def close(self) -> None:
        """Close instaloader's HTTP session."""
        if self._loader is not None:
            self.drain_errors()
            self._loader.close()
        self._loader = None

    def web_tokens_known(self) -> bool:
        """Whether instaloader holds the web app's tokens for this session (no start page to load)."""
        context = self.context
        sessionid = context._session.cookies.get_dict().get("sessionid", "")
        return sessionid in context._web_api_tokens_cache  # instaloader's own cache, read only

    def drain_errors(self) -> None:
        """Forget instaloader's error log (it keeps everything for a final report; we run for months)."""
        if self._loader is not None:
            self._loader.context.error_log.clear()

    def _new_loader(self) -> Instaloader:
        share_connections()  # one TLS connection per Instagram host, not one per GraphQL page

        def make_controller(context: InstaloaderContext) -> PoliteRateController:
            self._controller = PoliteRateController(
                context, delay=self._delay, sleep=self._sleep, on_wait=self._on_wait, budget=self._budget
            )
            return self._controller

        loader = Instaloader(
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
        self._watch_retries(loader.context)
        return loader

    def _watch_retries(self, context: InstaloaderContext) -> None:
        """instaloader reports each failed attempt it retries through ``context.error``, inside
        its ``except`` block: an attempt that never reached Instagram is taken back from the
        count there (the last attempt's error reaches ``unsent`` through the caller)."""
        report = context.error

        def error(msg, repeat_at_end=True):
            self.unsent(sys.exc_info()[1])
            report(msg, repeat_at_end=repeat_at_end)

        context.error = error

    def unsent(self, error: BaseException | None) -> None:
        """A request failed with ``error``: if it never reached Instagram, it is not counted."""
        if self._controller is not None:
            self._controller.unsent(error)

    def _kind(self, kind: str | None) -> None:
        if self._controller is not None:
            self._controller.kind(kind)

    def _iphone(self, kind: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        context = self.context
        self._kind(kind)
        try:
            return context.get_iphone_json(path, params)
        finally:
            self._kind(None)

    # ---- lookups ----

    def check_login(self) -> str:
        """The username the session belongs to (one request)."""
        loader = self.loader
        self._kind("login_check")
        try:
            return self.login.check(loader)
        finally:
            self._kind(None)

    def user_info(self, user_id: str) -> dict[str, Any] | None:
        """A user by id through the mobile API (logged in): counts, privacy, latest story."""
        try:
            return self._iphone("profile", f"api/v1/users/{user_id}/info/", {}).get("user")
        except QueryReturnedNotFoundException:
            return None

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        """A user by name through the web API (logged in; never the anonymous profile page)."""
        context = self.context
        self._kind("profile")
        try:
            data = context.get_json("api/v1/users/web_profile_info/", params={"username": username})
        except QueryReturnedNotFoundException:
            return None
        finally:
            self._kind(None)
        return (data.get("data") or {}).get("user")

    def user_by_id(self, user_id: str) -> dict[str, Any] | None:
        """A user by id through the web app's profile query (works logged out): the current name."""
        context = self.context
        self._kind("profile")
        try:
            variables = {"id": str(user_id), "render_surface": "PROFILE"}
            data = context.doc_id_graphql_query(DOC_PROFILE, variables, web_api=True)
        except QueryReturnedNotFoundException:
            return None
        finally:
            self._kind(None)
        return (data.get("data") or {}).get("user")

    def profile_page(self, username: str) -> list[dict[str, Any]]:
        """The data blobs of the public profile page, as a logged-out visitor sees it."""
        context = self.context
        self._kind("profile_page")
        try:
            return context.get_page_data(f"{username.lower()}/")
        except QueryReturnedNotFoundException:
            return []
        finally:
            self._kind(None)

    # ---- posts ----

    def timeline(self, username: str, frozen: FrozenNodeIterator | None = None) -> NodeIterator[Post]:
        """The logged-in posts listing, 12 described posts per request; resumes from ``frozen``."""
        context = self.context
        iterator = NodeIterator(
            context=context,
            query_hash=None,
            edge_extractor=lambda d: d["data"]["xdt_api__v1__feed__user_timeline_graphql_connection"],
            node_wrapper=lambda n: Post.from_iphone_struct(context, n),
            # The variables instaloader 4.16 sends for a profile's posts tab.
            query_variables={
                "data": {
                    "count": 12,
                    "include_reel_media_seen_timestamp": True,
                    "include_relationship_info": True,
                    "latest_besties_reel_media": True,
                    "latest_reel_media": True,
                },
                "first": 12,
                "include_multi_captions": True,
                "username": username,
                "__relay_internal__pv__PolarisMultiCaptionCarouselEnabledrelayprovider": True,
                "__relay_internal__pv__PolarisShortDramaEnabledrelayprovider": True,
                "__relay_internal__pv__PolarisSEOIsCrawlerrelayprovider": False,
                "__relay_internal__pv__PolarisThreadsStyleCommentsEnabledrelayprovider": False,
                "__relay_internal__pv__PolarisReelsRecoDebugOverlayEnabledrelayprovider": False,
            },
            query_referer=f"https://www.instagram.com/{username}/",
            doc_id=DOC_TIMELINE,
            web_api=True,
            # Resuming: the saved page is the first data, so no request is wasted on page 1.
            first_data=frozen.remaining_data if frozen else None,
        )
        if frozen is not None:
            iterator.thaw(frozen)
        return iterator

    def anonymous_timeline(
        self, username: str, page_id: str, first: dict[str, Any], frozen: FrozenNodeIterator | None = None
    ) -> NodeIterator[dict]:
        """The logged-out listing of post codes (12 per request); nodes stay raw dicts."""
        iterator = NodeIterator(
            context=self.context,
            query_hash=None,
            edge_extractor=lambda d: d["data"]["node"]["polaris_ordered_timeline_connection"],
            node_wrapper=lambda n: n,
            query_variables={"id": page_id, "__relay_internal__pv__PolarisSEOIsCrawlerrelayprovider": False},
            query_referer=f"https://www.instagram.com/{username}/",
            doc_id=DOC_ANON_TIMELINE,
            web_api=True,
            first_data=frozen.remaining_data if frozen else first,
        )
        if frozen is not None:
            iterator.thaw(frozen)
        return iterator

    def post(self, code: str) -> Post:
        """One post by shortcode, described (one request)."""
        context = self.context
        self._kind("post")
        try:
            return Post.from_shortcode(context, code)
        finally:
            self._kind(None)

    # ---- reels: stories and highlights ----

    def stories(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The current story reel of each account that has one, by user id (batched)."""
        reels: dict[str, dict[str, Any]] = {}
        context = self.context
        for chunk in chunks(list(dict.fromkeys(user_ids)), STORIES_PER_QUERY):
            self._kind("stories")
            try:
                variables = {"reel_ids": [int(i) for i in chunk], "precomposed_overlay": False}
                data = context.graphql_query(HASH_STORIES, variables)["data"]
            finally:
                self._kind(None)
            for reel in data.get("reels_media") or []:
                reels[str(reel.get("id") or (reel.get("user") or {}).get("id"))] = reel
        return reels

    def highlights_tray(self, user_id: str) -> list[dict[str, Any]]:
        """An account's highlights with their latest item time (one request)."""
        data = self._iphone("highlights_tray", f"api/v1/highlights/{user_id}/highlights_tray/", {})
        tray = data.get("tray")
        if not isinstance(tray, list):
            raise BadResponseException("The highlights tray had no list of highlights.")
        return tray

    def reels_media(self, reel_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Reels (``highlight:<id>`` or user ids) with their items, REELS_PER_REQUEST at a time."""
        reels: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(dict.fromkeys(reel_ids)), REELS_PER_REQUEST):
            data = self._iphone("reels", "api/v1/feed/reels_media/", {"reel_ids": chunk})
            found = data.get("reels")
            if not isinstance(found, dict):
                raise BadResponseException("The reels answer had no reels.")
            reels.update({str(key): value for key, value in found.items()})
        return reels
