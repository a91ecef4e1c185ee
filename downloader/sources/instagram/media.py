"""Media items from what Instagram's answers describe: posts, stories and highlight items.

Everything here is parsing: no function makes a request. Video URLs are taken from the
answer (the largest version), never from instaloader's ``video_url``, which logged in
HEADs every version to find the largest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import instaloader
from instaloader import Post

from downloader.sources.base import MediaItem


def _utc(moment: datetime) -> datetime:
    """instaloader's naive UTC datetimes, made aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _raw(structure: Post) -> dict[str, Any]:
    """The node instaloader holds for a post, as its JSON export shows it."""
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

    def item(media_id: str, url: str | None, is_video: bool, cover: str | None = None) -> MediaItem:
        return MediaItem(
            media_id,
            kind,
            taken_at,
            "mp4" if is_video else "jpg",
            url=url,
            metadata=metadata,
            group_id=post.shortcode,
            caption=post.caption,
            link=metadata["url"],
            cover=cover,
        )

    if post.typename == "GraphSidecar":
        slides = raw.get("carousel_media") or []
        items = []
        for index, node in enumerate(post.get_sidecar_nodes(), start=1):
            if node.is_video:
                versions = slides[index - 1].get("video_versions") if index <= len(slides) else None
                url = best_video_url(versions) or node.video_url
                # The slide's still is its cover (a video slide's display_url is its first frame).
                items.append(item(f"{post.mediaid}_{index}", url, True, node.display_url))
            else:
                items.append(item(f"{post.mediaid}_{index}", node.display_url, False))
    elif post.is_video:
        # Not post.video_url: logged in it HEADs every version to find the largest.
        url = best_video_url(raw.get("video_versions")) or post.video_url
        items = [item(str(post.mediaid), url, True, _cover(raw) or post.url)]
    else:
        items = [item(str(post.mediaid), post.url, False)]
    metadata["files"] = len(items)  # so a rebuilt index knows a post is whole (bot.py reindex)
    return items


def _cover(raw: dict[str, Any]) -> str | None:
    """A video's still as the listing describes it (the largest candidate), no request spent."""
    return _largest((raw.get("image_versions2") or {}).get("candidates"))


def story_link(username: str, media_id: str) -> str:
    """Where a story item is shown on Instagram."""
    return f"https://www.instagram.com/stories/{username}/{media_id}/"


def _largest(candidates: list[dict] | None) -> str | None:
    """The largest image of a list of candidates (``url``/``width`` or ``src``/``config_width``)."""
    return best_video_url(candidates)


def graphql_story_item(node: dict[str, Any], kind: str, username: str) -> MediaItem:
    """A story item as the GraphQL stories query describes it."""
    is_video = bool(node.get("is_video"))
    if is_video:
        url = best_video_url(node.get("video_resources")) or node.get("video_url")
    else:
        url = node.get("display_url") or _largest(node.get("display_resources"))
    media_id = str(node["id"])
    return MediaItem(
        media_id,
        kind,
        datetime.fromtimestamp(int(node["taken_at_timestamp"]), UTC),
        "mp4" if is_video else "jpg",
        url=url,
        link=story_link(username, media_id),
        cover=(node.get("display_url") or _largest(node.get("display_resources"))) if is_video else None,
    )


def v1_story_item(
    node: dict[str, Any], kind: str, username: str, highlight: tuple[str, str] | None = None
) -> MediaItem:
    """A story or highlight item as the mobile API (reels_media) describes it.

    ``highlight`` is (id, title) for an item of a highlight.
    """
    is_video = node.get("media_type") == 2
    if is_video:
        url = best_video_url(node.get("video_versions"))
    else:
        url = _largest((node.get("image_versions2") or {}).get("candidates"))
    media_id = str(node["pk"])
    return MediaItem(
        media_id,
        kind,
        datetime.fromtimestamp(int(node["taken_at"]), UTC),
        "mp4" if is_video else "jpg",
        url=url,
        subdir=highlight[1] if highlight else "",
        link=story_link(username, media_id),
        highlight_id=highlight[0] if highlight else None,
        highlight_title=highlight[1] if highlight else None,
        cover=_cover(node) if is_video else None,
    )
