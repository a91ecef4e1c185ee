"""TikTok's user page and item_list pages, read through yt-dlp's TikTok user extractor."""

from __future__ import annotations

from downloader.errors import LoginRequired, NotFound, Private, RateLimited, Transient
from downloader.sources.base import Account
from downloader.sources.tiktok.errors import (
    LOGIN_REQUIRED,
    RATE_LIMITED,
    not_found_sentence,
    private_sentence,
)

PLATFORM = "tiktok"
# statusCode values of TikTok's webapp.user-detail / webapp.video-detail / item_list.
_USER_MISSING = (10202, 10221)
_ACCOUNT_PRIVATE = 10222
_POST_PRIVATE = 10216
_IP_BLOCKED = 10204
# Like yt-dlp: never page back before TikTok existed, and step a week back over empty pages.
_TIKTOK_EPOCH_MS = 1_472_706_000_000
_WEEK_MS = 7 * 86_400_000


def account_from(username: str, detail: dict) -> Account:
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


def fetch_page(extractor, account: Account, position: int, seen: set[str]) -> dict:
    """One item_list request (more only if TikTok repeats a page, as yt-dlp retries it)."""
    from yt_dlp.utils import ExtractorError  # loaded already: ``extractor`` is yt-dlp's

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


def next_position(response: dict, position: int) -> tuple[int, bool]:
    """The cursor after this page and whether TikTok has older videos."""
    items = response.get("itemList") or []
    last = items[-1].get("createTime") if items else None
    following = int(last) * 1000 if last else 0
    if following <= 0 or following >= position:
        following = position - _WEEK_MS  # an empty page: TikTok pages by time, look further back
    more = bool(response.get("hasMorePrevious")) and following >= _TIKTOK_EPOCH_MS
    return following, more
