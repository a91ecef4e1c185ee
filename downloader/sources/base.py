"""The small protocol every platform adapter implements.

A Source is blocking (instaloader and yt-dlp are synchronous libraries); the
DownloadService calls it from worker threads. It lists media, page by page,
from an optional cursor, and never writes files itself except through an
item's ``download`` hook, which must write exactly the path it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

# Called by a source-side download with (bytes_done, bytes_total_or_None).
ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Account:
    """An account as the platform describes it."""

    platform: str
    username: str
    user_id: str | None = None
    display_name: str = ""
    is_private: bool = False
    media_count: int | None = None


@dataclass
class MediaItem:
    """One file to archive. ``media_id`` is the platform's stable id for this file.

    Carousel children use ``"<post pk>_<index>"`` so each child has its own id.
    Either ``url`` is set (the service fetches it with its own client) or
    ``download`` is (the source writes the file to the given temporary path).
    """

    media_id: str
    kind: str  # post | reel | story | highlight | video
    taken_at: datetime  # timezone-aware, UTC
    ext: str  # "jpg", "mp4", ...
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    download: Callable[[Path, ProgressFn], None] | None = None
    subdir: str = ""  # below the phase folder, e.g. a sanitised highlight title
    size: int | None = None  # expected size when the platform says so
    # JSON-able metadata of the post this file belongs to; written once per post
    # as "<date>_<group_id>.json" beside the media when metadata files are on.
    metadata: dict | None = None
    group_id: str | None = None


@dataclass
class Page:
    """One page of a listing and where to resume after it (None: listing finished)."""

    items: list[MediaItem]
    cursor: str | None
    total: int | None = None  # items expected in the whole phase, when known
    # Things the platform has that we cannot archive, as (id, reason); reported, never dropped.
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Source(Protocol):
    """One adapter per platform (instagram.py, tiktok.py)."""

    platform: str
    phases: tuple[str, ...]

    def resolve(self, username: str) -> Account:
        """Look the account up (one light request); raise a DownloadError if unusable."""
        ...

    def pages(self, account: Account, phase: str, cursor: str | None) -> Iterator[Page]:
        """Yield pages of media for one phase, starting after ``cursor``."""
        ...

    def close(self) -> None:
        """Release sessions and connections."""
        ...
