"""The posts listing: logged in 12 described posts per request; logged out codes first.

Logged out, the listing names only shortcodes and describing a post costs one request,
so posts the archive already holds (Known.archived_groups) are passed over without a
request and reported in ``Page.known_groups``; each described post is its own Page so
the service can stop early.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from instaloader import (
    BadResponseException,
    FrozenNodeIterator,
    InvalidArgumentException,
    NodeIterator,
    PostChangedException,
)

from downloader.errors import README_LOGIN, LoginRequired
from downloader.sources.base import Account, MediaItem, Page
from downloader.sources.instagram.api import InstagramAPI
from downloader.sources.instagram.errors import not_followed
from downloader.sources.instagram.lookup import AnonymousPage, resolve_anonymous
from downloader.sources.instagram.media import post_items

log = logging.getLogger(__name__)

CURSOR_VERSION = 1
TIMELINE_PAGE = 12  # posts per timeline request, logged in or out
SKIPPED_POST = "Instagram did not describe this post's media (it may have just been deleted)"
Guard = Callable[[], AbstractContextManager]


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


def parse_cursor(cursor: str | None, username: str) -> FrozenNodeIterator | None:
    """The saved listing state, or None (list from the newest) when it is missing or unusable."""
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
        if state.get("v") != CURSOR_VERSION:
            raise InvalidArgumentException("cursor of another version")
        frozen = FrozenNodeIterator(**state["posts"])
        if not frozen.best_before or datetime.fromtimestamp(frozen.best_before) < datetime.now():
            raise InvalidArgumentException("cursor too old")
        if frozen.remaining_data is None:
            raise InvalidArgumentException("cursor without data")
        return frozen
    except (ValueError, KeyError, TypeError, AttributeError, InvalidArgumentException) as exc:
        # Harmless: archived posts are skipped, so listing from the newest only costs requests.
        log.info("@%s: cannot resume the posts listing (%s); listing from the newest post", username, exc)
        return None


def _page_done(iterator: NodeIterator) -> tuple[bool, bool]:
    """(last post of instaloader's current page, last post of all) for the post just taken."""
    data = iterator.freeze().remaining_data or {}
    last_of_page = len(data.get("edges") or []) <= 1
    more = bool((data.get("page_info") or {}).get("has_next_page"))
    return last_of_page, last_of_page and not more


def _resumed(make: Callable[[FrozenNodeIterator | None], NodeIterator], frozen, username: str):
    """An iterator from the saved state, or from the start if the state does not fit."""
    if frozen is not None:
        try:
            return make(frozen)
        except InvalidArgumentException as exc:
            log.info("@%s: cannot resume the posts listing (%s); listing from the newest post", username, exc)
    return make(None)


def logged_in_pages(api: InstagramAPI, guard: Guard, account: Account, cursor: str | None) -> Iterator[Page]:
    """One Page per timeline request (12 posts, all described)."""
    name = account.username
    with guard():
        own = account.user_id is not None and account.user_id == str(api.context.user_id)
        if account.is_private and account.followed is False and not own:
            raise not_followed(name)  # the lookup said so: Instagram would answer an empty list
        frozen = parse_cursor(cursor, name)
        iterator = _resumed(lambda f: api.timeline(name, f), frozen, name)
    while True:
        items: list[MediaItem] = []
        with guard():
            for post in iterator:
                items.extend(post_items(post, name))
                last_of_page, last_of_all = _page_done(iterator)
                if last_of_page:
                    break
            else:
                last_of_all = True
        if not items and last_of_all:
            return
        yield Page(items, None if last_of_all else freeze_after(iterator))
        if last_of_all:
            return


def anonymous_pages(
    api: InstagramAPI,
    guard: Guard,
    account: Account,
    cursor: str | None,
    page: AnonymousPage | None,
    archived: set[str],
) -> Iterator[Page]:
    """One Page per described post; archived posts cost no request and ride along as known_groups."""
    name = account.username
    if account.is_private:
        raise LoginRequired(
            f"Instagram account @{name} is private: the bot needs an Instagram login that "
            f"follows it ({README_LOGIN})."
        )
    with guard():
        if page is None or not page.fresh():
            _, page = resolve_anonymous(api, name)
        if page is None:
            raise BadResponseException(f"The page of profile {name} did not contain its posts.")
        frozen = parse_cursor(cursor, name)
        iterator = _resumed(lambda f: api.anonymous_timeline(name, page.page_id, page.first, f), frozen, name)
    known: list[str] = []
    while True:
        with guard():
            node = next(iterator, None)
        if node is None:
            if known:
                yield Page([], None, known_groups=known)
            return
        code = str(node.get("code") or "")
        last_of_page, last_of_all = _page_done(iterator)
        if code in archived:
            known.append(code)
            if last_of_page:  # let the cursor move on, so a resume skips them too
                yield Page([], None if last_of_all else freeze_after(iterator), known_groups=known)
                known = []
            continue
        yield _described(api, guard, code, name, iterator, last_of_all, known)
        known = []


def _described(api, guard: Guard, code: str, username: str, iterator, last: bool, known: list[str]) -> Page:
    """The Page of one post, described with one request; a post that vanished is reported."""
    items: list[MediaItem] = []
    skipped: list[tuple[str, str]] = []
    with guard():
        try:
            items = post_items(api.post(code), username)
        except (BadResponseException, PostChangedException, KeyError) as exc:
            # One odd or deleted post must not stop the listing of all the others.
            log.info("@%s: skipping post %s: %s", username, code, exc)
            skipped.append((code, SKIPPED_POST))
    cursor = None if last else freeze_after(iterator)
    return Page(items, cursor, skipped=skipped, known_groups=list(known))


def timeline_codes(
    api: InstagramAPI, guard: Guard, account: Account, page: AnonymousPage | None, logged_in: bool
) -> list[str]:
    """Every post's shortcode on the account's timeline, newest first; no post is described.

    Logged in: 12 posts a request; logged out: the profile page's first 12 codes, then 12 a request."""
    name = account.username
    with guard():
        if logged_in:
            own = account.user_id is not None and account.user_id == str(api.context.user_id)
            if account.is_private and account.followed is False and not own:
                raise not_followed(name)
            iterator = api.timeline(name)
        else:
            if account.is_private:
                raise LoginRequired(
                    f"Instagram account @{name} is private: the bot needs an Instagram login that "
                    f"follows it ({README_LOGIN})."
                )
            if page is None or not page.fresh():
                _, page = resolve_anonymous(api, name)
            if page is None:
                raise BadResponseException(f"The page of profile {name} did not contain its posts.")
            iterator = api.anonymous_timeline(name, page.page_id, page.first)
    codes: list[str] = []
    while True:
        with guard():  # one node at a time: other jobs may use Instagram between two pages
            node = next(iterator, None)
        if node is None:
            return codes
        codes.append(node.shortcode if logged_in else str(node.get("code") or ""))
