"""What one listed TikTok post becomes: a video, a photo post (slides and sound), or a named skip.

A photo post ("photo mode") has no playable video; the item_list answer the web app
gets carries its slides (``imagePost.images[].imageURL.urlList``) and its sound
(``music.playUrl``). Those are plain CDN files: the service's own fetcher downloads
them (atomic writes, retries), yt-dlp is needed only for videos.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from downloader.sources.base import MediaItem, ProgressFn

VIDEO_URL = "https://www.tiktok.com/@{username}/video/{post_id}"
PHOTO_URL = "https://www.tiktok.com/@{username}/photo/{post_id}"
# TikTok's CDN refuses media requests that do not come from its web app.
REFERER = {"Referer": "https://www.tiktok.com/"}
LIVE_REPLAY = "live replay, not supported"
UNKNOWN_KIND = "neither a video nor photos, not supported"
NO_SLIDES = "photo post without photos, not supported"
IMAGE_EXTS = {"jpeg": "jpg", "jpg": "jpg", "png": "png", "webp": "webp", "heic": "heic"}
AUDIO_EXTS = {"mp3", "m4a", "aac", "ogg", "wav"}

# A video's download hook: (page URL, video id, temp path, progress) -> None.
VideoDownload = Callable[[str, str, object, ProgressFn], None]


def describe(username: str, post: dict, video_download: VideoDownload) -> tuple[list[MediaItem], str | None]:
    """The files of one listed post, or ([], why it cannot be archived)."""
    if post.get("liveRoomInfo"):
        # LIVE room data: a LIVE or its replay, which has no video page yt-dlp could fetch.
        return [], LIVE_REPLAY
    if "imagePost" in post:
        items = photo_items(username, post)
        return (items, None) if items else ([], NO_SLIDES)
    if not post.get("video"):
        return [], UNKNOWN_KIND
    return [video_item(username, post, video_download)], None


def video_item(username: str, post: dict, video_download: VideoDownload) -> MediaItem:
    """A video, downloaded by yt-dlp from its page when its turn comes."""
    video_id = str(post["id"])
    url = VIDEO_URL.format(username=username, post_id=video_id)
    taken_at = _taken_at(post)
    return MediaItem(
        media_id=video_id,
        kind="video",
        taken_at=taken_at,
        ext="mp4",
        download=functools.partial(video_download, url, video_id),
        metadata=metadata(post, url, taken_at),
        group_id=video_id,
        caption=post.get("desc") or None,
        link=url,
        headers=dict(REFERER),  # sent with the cover (the video itself comes through yt-dlp)
        cover=_cover_url(post),
    )


def _cover_url(post: dict) -> str | None:
    """The video's still from the listing (``video.cover``, else ``originCover``): no extra request."""
    video = post.get("video") or {}
    return video.get("cover") or video.get("originCover") or None


def photo_items(username: str, post: dict) -> list[MediaItem]:
    """A photo post's slides in order ("<id>_1", "<id>_2", ...) and its sound ("<id>"), as one post."""
    post_id = str(post["id"])
    link = PHOTO_URL.format(username=username, post_id=post_id)
    taken_at = _taken_at(post)
    urls = [_slide_url(image) for image in (post.get("imagePost") or {}).get("images") or []]
    if not urls or not all(urls):
        return []  # a slide without an address: the post cannot be kept whole
    details = metadata(post, link, taken_at) | {"type": "photo", "images": len(urls)}
    common = {"taken_at": taken_at, "headers": dict(REFERER), "url_expires": True, "group_id": post_id}
    common |= {"metadata": details}
    common |= {"caption": post.get("desc") or None, "link": link}
    items = [
        MediaItem(f"{post_id}_{number}", "photo", ext=_ext(url, IMAGE_EXTS, "jpg"), url=url, **common)
        for number, url in enumerate(urls, start=1)
    ]
    sound = (post.get("music") or {}).get("playUrl")
    if sound:  # the sound once per post, named by the post's id
        items.append(MediaItem(post_id, "audio", ext=_ext(sound, AUDIO_EXTS, "mp3"), url=sound, **common))
    details["files"] = len(items)  # so a rebuilt index knows the post is whole (bot.py reindex)
    return items


def metadata(post: dict, url: str, taken_at: datetime) -> dict:
    """The post's JSON sidecar: what a person would want to keep besides the files."""
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


def _taken_at(post: dict) -> datetime:
    # TikTok ids carry their creation time in the high 32 bits: a fallback for createTime.
    created = int(post.get("createTime") or int(str(post["id"])) >> 32)
    return datetime.fromtimestamp(created, UTC)


def _slide_url(image: dict) -> str | None:
    """The full-size slide, a JPEG where TikTok offers one (its other formats are webp/heic)."""
    urls = [url for url in ((image.get("imageURL") or {}).get("urlList") or []) if url]
    jpeg = [url for url in urls if _ext(url, IMAGE_EXTS, "") == "jpg"]
    return (jpeg or urls or [None])[0]


def _ext(url: str, known, default: str) -> str:
    """The file type from the URL's path (TikTok's image names end in "~tplv-...-image.jpeg")."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower().lstrip(".")
    if isinstance(known, dict):
        return known.get(suffix, default)
    return suffix if suffix in known else default
