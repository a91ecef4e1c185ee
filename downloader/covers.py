"""Video covers: one still image per archived video, fetched once from the CDN beside the video.

Kept under DATA_DIR/covers/<platform>/<media id>.jpg, outside downloads/, so a cover is
never an archived file: no row, no count, never delivered to chat. The gallery makes a
video's tile from it. A cover that cannot be fetched costs nothing but the tile (a
placeholder); it never fails its video.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from downloader.errors import DownloadError
from downloader.fetch import Fetcher
from downloader.paths import resolved
from downloader.sources.base import MediaItem

log = logging.getLogger(__name__)


def covers_root(data_dir: Path) -> Path:
    """DATA_DIR/covers, resolved."""
    return resolved(Path(data_dir) / "covers")


def cover_path(data_dir: Path, platform: str, media_id: str) -> Path:
    """Where the cover of one video lives (names made safe: ids come from the platforms)."""
    folder = re.sub(r"[^a-z0-9]", "_", platform.lower()) or "other"
    name = re.sub(r"[^A-Za-z0-9_-]", "_", media_id)[:120] or "item"
    return covers_root(data_dir) / folder / f"{name}.jpg"


async def keep_cover(fetcher: Fetcher, data_dir: Path, platform: str, item: MediaItem) -> bool:
    """Fetch the item's cover unless it is kept already; False when it could not be had."""
    if not item.cover:
        return False
    target = cover_path(data_dir, platform, item.media_id)
    if await asyncio.to_thread(target.is_file):
        return True  # e.g. a highlight item that is an old story: one cover per media id
    try:
        await fetcher.fetch(item.cover, target, item.headers)  # it makes the folder
    except (OSError, DownloadError) as exc:
        reason = exc.sentence if isinstance(exc, DownloadError) else (exc.strerror or type(exc).__name__)
        log.info("no cover for %s %s: %s", platform, item.media_id, reason)
        return False
    return True
