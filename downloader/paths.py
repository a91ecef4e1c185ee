"""Where files go under DATA_DIR, with every path checked to stay inside it."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import datetime
from pathlib import Path

PHASE_FOLDERS = {
    "posts": "posts",
    "stories": "stories",
    "highlights": "highlights",
    "videos": "videos",
}
TEMP_SUFFIX = ".part"
# Beside a partial file: what proves it may be continued (see partials.py).
RESUME_SUFFIX = ".resume" + TEMP_SUFFIX
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


class UnsafePath(ValueError):
    """A computed path would leave DATA_DIR."""


def downloads_root(data_dir: Path) -> Path:
    """DATA_DIR/downloads, resolved."""
    return resolved(Path(data_dir) / "downloads")


def resolved(path: Path) -> Path:
    """``path`` resolved; an absolute one once per process (a lstat per component on every file
    of a download was a visible share of its CPU). Relative paths depend on the working folder."""
    return _resolved_once(path) if path.is_absolute() else path.resolve()


@functools.lru_cache(maxsize=64)
def _resolved_once(path: Path) -> Path:
    return path.resolve()


def sanitize_component(text: str, fallback: str = "untitled") -> str:
    """Make one safe folder name from arbitrary text (highlight titles)."""
    text = unicodedata.normalize("NFC", text or "")
    text = _UNSAFE.sub("_", text).strip().strip(".").strip()
    text = re.sub(r"\s+", " ", text)
    # Keep names short in bytes: many filesystems allow 255 bytes per component.
    while len(text.encode()) > 120:
        text = text[:-1]
    return text or fallback


def phase_dir(data_dir: Path, platform: str, username: str, phase: str, subdir: str = "") -> Path:
    """The folder of one phase of one account, e.g. downloads/instagram/alice/posts."""
    parts = [platform, username, PHASE_FOLDERS[phase]]
    if subdir:
        parts.append(sanitize_component(subdir))
    return inside(downloads_root(data_dir), *parts)


def media_filename(taken_at: datetime, media_id: str, ext: str) -> str:
    """Date first (sorts by time), then the platform's id (never collides)."""
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", media_id)
    safe_ext = re.sub(r"[^A-Za-z0-9]", "", ext)[:8] or "bin"
    return f"{taken_at:%Y-%m-%d_%H-%M-%S}_{safe_id}.{safe_ext}"


def inside(root: Path, *parts: str) -> Path:
    """Join and resolve, refusing anything that ends up outside ``root``."""
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise UnsafePath(f"refusing path outside {root}")
    return path
