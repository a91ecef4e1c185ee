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
    # Instagram: the newest story's time (epoch s; 0: no story) when the lookup said so,
    # and whether the bot's login follows the account (None: unknown).
    latest_story_at: int | None = None
    followed: bool | None = None
    # The profile as the lookup described it (None: this lookup did not say), kept as history.
    biography: str | None = None
    external_url: str | None = None
    followers: int | None = None
    picture_url: str | None = None


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
    # The URL is signed for a few hours (TikTok's photo CDN): a later run that retries the
    # file asks the source's ``revive`` for a fresh one before using the stored one.
    url_expires: bool = False
    download: Callable[[Path, ProgressFn], None] | None = None
    subdir: str = ""  # below the phase folder, e.g. a sanitised highlight title
    size: int | None = None  # expected size when the platform says so
    # JSON-able metadata of the post this file belongs to; written once per post
    # as "<date>_<group_id>.json" beside the media when metadata files are on.
    metadata: dict | None = None
    group_id: str | None = None
    group_size: int | None = None  # files in the post (a carousel's slides); set by the service
    # What delivery to chat shows: the post's caption and a link to it on the platform.
    caption: str | None = None
    link: str | None = None
    # Highlight items: the highlight's stable id and its current title. An item is usually
    # an old story (same media_id): the archive keeps one file and links it into the
    # highlight's folder.
    highlight_id: str | None = None
    highlight_title: str | None = None
    # A video's still image on the CDN (from the listing, no extra request): kept once as its
    # cover for the gallery's tile, fetched with ``headers``; never an archived file.
    cover: str | None = None


@dataclass
class Page:
    """One page of a listing and where to resume after it (None: listing finished)."""

    items: list[MediaItem]
    cursor: str | None
    total: int | None = None  # items expected in the whole phase, when known
    # Things the platform has that we cannot archive, as (id, reason); reported, never dropped.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # "Has anything changed" stamps the source saw (e.g. "highlight:<id>" -> latest media
    # time); the service stores them when the phase ends clean and hands them back in Known.
    stamps: dict[str, int] = field(default_factory=dict)
    # Collections the listing named, id -> current title (every highlight in the tray, changed
    # or not), so a retitled highlight's folder is renamed even when its items are the same.
    titles: dict[str, str] = field(default_factory=dict)
    # The whole tray's collection ids (on the first page of a complete tray answer; None on
    # other pages): a stored highlight missing from it was removed on the platform.
    tray: list[str] | None = None
    # Collection id -> every media id the platform listed in it (only for collections it
    # answered in full): a stored member missing from its list was taken out.
    members: dict[str, list[str]] = field(default_factory=dict)
    # Posts (group ids, e.g. shortcodes) the listing named that Known.archived_groups says are
    # archived: not described, no request spent. Each counts as an archived post for the early stop.
    known_groups: list[str] = field(default_factory=list)


@dataclass
class Known:
    """What the archive already knows about an account, so a source can skip requests.

    ``stamps`` holds what earlier clean runs stored from ``Page.stamps``, plus
    ``"stories"``: the newest story time (epoch seconds) of the last clean stories run.
    """

    stamps: dict[str, int] = field(default_factory=dict)
    # Group ids (Instagram shortcodes) of this account's posts whose files are all archived:
    # an anonymous listing names only shortcodes and would pay one request per post to describe it.
    archived_groups: set[str] = field(default_factory=set)


class Source(Protocol):
    """One adapter per platform (instagram.py, tiktok.py)."""

    platform: str
    phases: tuple[str, ...]

    def resolve(self, username: str, user_id: str | None = None) -> Account:
        """Look the account up (one light request; by ``user_id`` when stored); raise a DownloadError."""
        ...

    def pages(
        self, account: Account, phase: str, cursor: str | None, known: Known | None = None
    ) -> Iterator[Page]:
        """Yield pages of media for one phase, starting after ``cursor``."""
        ...

    def prefetch(self, phase: str, accounts: list[Account], known: dict[str, Known]) -> None:
        """Fetch one phase of many accounts in batched requests ahead of their pages() calls
        (a platform without batching does nothing)."""
        ...

    def prefetched(self, account: Account) -> bool:
        """Whether a prefetch left answers for this account that are still fresh."""
        ...

    def revive(self, account: Account, item: MediaItem) -> MediaItem | None:
        """A file that failed in an earlier run and has no stored URL, made downloadable again
        (None: it cannot be)."""
        ...

    def close(self) -> None:
        """Release sessions and connections."""
        ...
