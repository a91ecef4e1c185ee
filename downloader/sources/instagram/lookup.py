"""Account lookups: logged in by the stored id (or by name), logged out from the profile page.

With a session the anonymous profile page is never loaded: Instagram puts a login wall
in front of it for many server addresses, and its refusal says nothing about the session.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from downloader.errors import NotFound
from downloader.sources.base import Account
from downloader.sources.instagram.api import InstagramAPI

PLATFORM = "instagram"
# How long the posts listing may reuse the profile page that the lookup loaded.
PAGE_REUSE_SECONDS = 600.0


@dataclass
class AnonymousPage:
    """What the logged-out profile page held for the listing: its page id and first codes."""

    page_id: str
    first: dict[str, Any]
    loaded_at: float

    def fresh(self) -> bool:
        """Whether it is recent enough to stand in for loading the page again."""
        return time.monotonic() - self.loaded_at < PAGE_REUSE_SECONDS


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


def _following(user: dict[str, Any]) -> bool | None:
    friendship = user.get("friendship_status")
    if isinstance(friendship, dict) and "following" in friendship:
        return bool(friendship["following"])
    if "followed_by_viewer" in user:
        return bool(user["followed_by_viewer"])
    return None


def account_from_user(user: dict[str, Any]) -> Account:
    """An Account from a mobile-API or web-API user object."""
    count = user.get("media_count")
    if count is None:
        count = (user.get("edge_owner_to_timeline_media") or {}).get("count")
    return Account(
        platform=PLATFORM,
        username=str(user["username"]),
        user_id=str(user.get("pk") or user.get("id")),
        display_name=user.get("full_name") or "",
        is_private=bool(user.get("is_private")),
        media_count=_int(count),
        latest_story_at=_int(user.get("latest_reel_media")),
        followed=_following(user),
        **_profile(user),
    )


def _profile(user: dict[str, Any]) -> dict[str, Any]:
    """Biography, link, followers and picture, where the user object carries them."""
    followers = user.get("follower_count")
    if followers is None:
        followers = (user.get("edge_followed_by") or {}).get("count")
    picture = (user.get("hd_profile_pic_url_info") or {}).get("url")
    return {
        "biography": user.get("biography"),
        "external_url": user.get("external_url") or ("" if "external_url" in user else None),
        "followers": _int(followers),
        "picture_url": picture or user.get("profile_pic_url_hd") or user.get("profile_pic_url"),
    }


def resolve_logged_in(api: InstagramAPI, username: str, user_id: str | None) -> Account:
    """One request: the mobile API by stored id, else the web API by name."""
    user = api.user_info(user_id) if user_id else None
    if user is None:
        user = api.user_by_name(username)
    if not user or not (user.get("pk") or user.get("id")):
        raise NotFound(f"Instagram account @{username} does not exist.")
    return account_from_user(user)


def resolve_anonymous(api: InstagramAPI, username: str) -> tuple[Account, AnonymousPage | None]:
    """One request: the public profile page (its first 12 post codes are kept for the listing)."""
    user: dict[str, Any] = {}
    timeline: dict[str, Any] | None = None
    for data in api.profile_page(username):
        node = data.get("xig_user_by_username") or {}
        if "polaris_ordered_timeline_connection" in node:
            timeline = node
        else:
            user.update(node)
    if not user.get("pk"):
        raise NotFound(f"Instagram account @{username} does not exist.")
    account = _page_account(user, username)
    page = None
    if timeline is not None and timeline.get("id"):
        first = timeline["polaris_ordered_timeline_connection"]
        page = AnonymousPage(str(timeline["id"]), first, time.monotonic())
    return account, page


def resolve_renamed(api: InstagramAPI, username: str, user_id: str) -> Account:
    """Logged out, a stored account's name was not found: ask by its id (one request).

    An answer under another name is a rename; no answer means the account is gone."""
    user = api.user_by_id(user_id)
    if not user or not user.get("username"):
        raise NotFound(f"Instagram account @{username} does not exist.")
    return account_from_user(user)


def _page_account(user: dict[str, Any], username: str) -> Account:
    """The account from the profile page's details blob."""
    return Account(
        platform=PLATFORM,
        username=str(user.get("username") or username),
        user_id=str(user["pk"]),
        display_name=user.get("full_name") or "",
        is_private=bool(user.get("is_private")),
        media_count=_int(user.get("all_media_count")),
        **_profile(user),
    )
