"""Thumbnails (~320 px JPEG), made once per image on first view, off the event loop.

Kept under DATA_DIR/thumbnails/<platform>/<media id>.jpg, outside downloads/, so the
archive itself stays exactly what was downloaded. The downloader does not know them.
A video's tile is made from the cover the downloader kept for it (DATA_DIR/covers/);
a video without one gets the placeholder.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

from PIL import Image, ImageOps

from downloader.covers import cover_path

log = logging.getLogger(__name__)
SIZE = 320
QUALITY = 80
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".mkv"}
Image.MAX_IMAGE_PIXELS = 80_000_000  # a larger "image" is refused as a decompression bomb


def is_video(path: Path | str) -> bool:
    """Whether an archived file is a video (by its name, which the downloader chose)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def make_thumbnail(source: Path, target: Path) -> bool:
    """Write a JPEG thumbnail of ``source``; False when Pillow cannot read it as an image."""
    try:
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((SIZE, SIZE))
            image = image.convert("RGB")
            target.parent.mkdir(parents=True, exist_ok=True)
            temp = target.with_suffix(".part")
            image.save(temp, "JPEG", quality=QUALITY, optimize=True)
        os.replace(temp, target)  # never a half-written thumbnail
        return True
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        log.info("no thumbnail for %s: %s", source.name, exc)
        return False


class Thumbnails:
    """Makes and finds thumbnails; at most two are made at once, each file only once."""

    def __init__(self, data_dir: Path, workers: int = 2):
        self.data_dir = Path(data_dir).resolve()
        self.root = self.data_dir / "thumbnails"
        self._slots = asyncio.Semaphore(workers)
        self._making: dict[Path, asyncio.Task] = {}

    def target(self, platform: str, media_id: str) -> Path:
        """Where one file's thumbnail lives (names made safe: ids come from the platforms)."""
        folder = re.sub(r"[^a-z0-9]", "_", platform.lower()) or "other"
        name = re.sub(r"[^A-Za-z0-9_-]", "_", media_id)[:120] or "item"
        return self.root / folder / f"{name}.jpg"

    async def get(self, platform: str, media_id: str, source: Path) -> Path | None:
        """The thumbnail of an archived image, or of a video's cover, made now if needed;
        None: show a placeholder."""
        target = self.target(platform, media_id)
        if target.exists():
            return target
        failed = target.with_suffix(".none")
        if is_video(source):
            source = cover_path(self.data_dir, platform, media_id)
            if not source.is_file():
                return None  # no cover (yet): not marked failed, a later download may bring one
        if failed.exists():
            return None
        task = self._making.get(target)
        if task is None:
            task = asyncio.ensure_future(self._make(source, target, failed))
            self._making[target] = task
            task.add_done_callback(lambda _: self._making.pop(target, None))
        return target if await asyncio.shield(task) else None

    async def _make(self, source: Path, target: Path, failed: Path) -> bool:
        async with self._slots:
            made = await asyncio.to_thread(make_thumbnail, source, target)
        if not made:
            await asyncio.to_thread(_mark, failed)  # an undecodable file is not tried again on every view
        return made


def _mark(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
