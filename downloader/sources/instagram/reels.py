"""Stories and highlights: "has anything changed" first, then items in batched requests.

Stories: the lookup's latest_reel_media says whether there is a story newer than the
newest archived one (Known.stamps["stories"]); only then is the reel asked for. Highlights:
the tray names each highlight with its latest item time; only highlights whose time
differs from the stamp of the last clean run (Known.stamps["highlight:<id>"]) have their
items fetched, REELS_PER_REQUEST per request. ``prefetch`` does the same for many
accounts at once and keeps the answers for the per-account listings that follow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from downloader.sources.base import Account, Known, MediaItem, Page
from downloader.sources.instagram.api import REELS_PER_REQUEST, InstagramAPI
from downloader.sources.instagram.media import graphql_story_item, v1_story_item

CURSOR_VERSION = 1
NO_MEDIA = "Instagram did not give this item's media URL"
# Prefetched answers older than this are not trusted (stories change by the minute).
PREFETCH_TTL = 900.0
Guard = Callable[[], AbstractContextManager]


@dataclass
class Highlight:
    """One entry of an account's highlights tray."""

    id: str  # the number, without "highlight:"
    title: str
    latest: int | None  # latest_reel_media: when its newest item was added

    @property
    def reel_id(self) -> str:
        return f"highlight:{self.id}"

    @property
    def stamp_key(self) -> str:
        return f"highlight:{self.id}"


def _tray(entries: list[dict[str, Any]]) -> list[Highlight]:
    highlights = []
    for entry in entries:
        raw_id = str(entry.get("id") or "").removeprefix("highlight:")
        if raw_id:
            latest = entry.get("latest_reel_media")
            highlights.append(Highlight(raw_id, str(entry.get("title") or raw_id), latest))
    return highlights


def _changed(highlight: Highlight, known: Known | None) -> bool:
    """Whether the tray says this highlight may have items the last clean run did not see."""
    if highlight.latest is None or known is None:
        return True
    return known.stamps.get(highlight.stamp_key) != highlight.latest


def _story_needed(account: Account, known: Known | None) -> bool:
    """False when the lookup says there is no story newer than the newest archived one."""
    latest = account.latest_story_at
    if latest is None:
        return True  # the lookup did not say: ask
    if latest == 0:
        return False
    newest = (known.stamps.get("stories") if known else None) or 0
    return latest > newest


class _Cache:
    """Answers of a prefetch, each taken once and only while fresh."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._entries: dict[str, tuple[float, Any]] = {}
        self._clock = clock

    def put(self, key: str, value: Any) -> None:
        self._entries[key] = (self._clock(), value)

    def take(self, key: str) -> tuple[bool, Any]:
        """(whether a fresh answer was there, the answer)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False, None
        return self._fresh(entry), entry[1]

    def has(self, key: str) -> bool:
        """Whether a fresh answer waits under ``key``."""
        entry = self._entries.get(key)
        return entry is not None and self._fresh(entry)

    def _fresh(self, entry: tuple[float, Any]) -> bool:
        return self._clock() - entry[0] < PREFETCH_TTL


class Reels:
    """Stories and highlights listings over one InstagramAPI, with a prefetch cache."""

    def __init__(self, api: InstagramAPI, clock: Callable[[], float] = time.monotonic):
        self._api = api
        self._cache = _Cache(clock)

    def prefetched(self, account: Account) -> bool:
        """Whether a prefetch left fresh answers for this account (its stories or its tray)."""
        return any(self._cache.has(f"{kind}:{account.user_id}") for kind in ("story", "tray"))

    # ---- many accounts at once ----

    def prefetch(self, phase: str, accounts: list[Account], known: dict[str, Known]) -> None:
        """Fetch stories ("stories") or trays and changed highlights ("highlights") in batches."""
        accounts = [a for a in accounts if a.user_id]
        if phase == "stories":
            wanted = [a.user_id for a in accounts if _story_needed(a, known.get(a.username))]
            reels = self._api.stories(wanted) if wanted else {}
            for account in accounts:
                self._cache.put(f"story:{account.user_id}", reels.get(str(account.user_id)))
        elif phase == "highlights":
            changed: list[str] = []
            for account in accounts:
                tray = self._api.highlights_tray(str(account.user_id))
                self._cache.put(f"tray:{account.user_id}", tray)
                mine = known.get(account.username)
                changed += [h.reel_id for h in _tray(tray) if _changed(h, mine)]
            for reel_id, reel in self._api.reels_media(changed).items():
                self._cache.put(reel_id, reel)
        else:
            raise ValueError(f"nothing to prefetch for phase {phase!r}")

    # ---- stories ----

    def stories(self, account: Account, known: Known | None, guard: Guard) -> Iterator[Page]:
        """One Page with the account's current stories (0 or 1 request)."""
        user_id = str(account.user_id)
        fresh, reel = self._cache.take(f"story:{user_id}")
        if not fresh:
            reel = None
            if _story_needed(account, known):
                with guard():
                    reel = self._api.stories([user_id]).get(user_id)
        nodes = (reel or {}).get("items") or []
        items, skipped = _usable([graphql_story_item(node, "story", account.username) for node in nodes])
        yield Page(items, None, total=len(items), skipped=skipped)

    # ---- highlights ----

    def highlights(
        self, account: Account, cursor: str | None, known: Known | None, guard: Guard
    ) -> Iterator[Page]:
        """One Page per changed highlight (from the cursor on); stamps of all of them on the first."""
        fresh, tray = self._cache.take(f"tray:{account.user_id}")
        if not fresh:
            with guard():
                tray = self._api.highlights_tray(str(account.user_id))
        highlights = _tray(tray)
        stamps = {h.stamp_key: h.latest for h in highlights if h.latest is not None}
        titles = {h.id: h.title for h in highlights}
        start = _highlight_start(cursor, [h.id for h in highlights])
        todo = [index for index in range(start, len(highlights)) if _changed(highlights[index], known)]
        tray_ids = [h.id for h in highlights]
        if not todo:
            yield Page([], None, total=0, stamps=stamps, titles=titles, tray=tray_ids)
            return
        reels: dict[str, dict[str, Any]] = {}
        for position, index in enumerate(todo):
            highlight = highlights[index]
            if highlight.reel_id not in reels:
                batch = [highlights[i].reel_id for i in todo[position : position + REELS_PER_REQUEST]]
                reels.update(self._reels(batch, guard))
            answered = highlight.reel_id in reels and isinstance(reels[highlight.reel_id], dict)
            nodes = (reels.get(highlight.reel_id) or {}).get("items") or []
            pair = (highlight.id, highlight.title)
            items, skipped = _usable([v1_story_item(n, "highlight", account.username, pair) for n in nodes])
            # Only a reel the answer held lists the highlight in full (a missing one proves nothing).
            listed = [i.media_id for i in items] + [media_id for media_id, _ in skipped]
            members = {highlight.id: listed} if answered and listed else {}
            more = position + 1 < len(todo)
            following = highlights[todo[position + 1]] if more else None
            next_cursor = _highlight_cursor(todo[position + 1], following.id) if following else None
            first = position == 0  # the whole tray's stamps and titles ride on the first page
            yield Page(
                items,
                next_cursor,
                skipped=skipped,
                stamps=stamps if first else {},
                titles=titles if first else {},
                tray=tray_ids if first else None,
                members=members,
            )

    def _reels(self, reel_ids: list[str], guard: Guard) -> dict[str, dict[str, Any]]:
        """Reels from the prefetch where it has them; the rest in one request."""
        found: dict[str, dict[str, Any]] = {}
        for reel_id in reel_ids:
            fresh, reel = self._cache.take(reel_id)
            if fresh and reel is not None:
                found[reel_id] = reel
        missing = [r for r in reel_ids if r not in found]
        if missing:
            with guard():
                found.update(self._api.reels_media(missing))
        return found


def _usable(items: list[MediaItem]) -> tuple[list[MediaItem], list[tuple[str, str]]]:
    """Items with a media URL, and the others as (id, reason) to report."""
    usable = [item for item in items if item.url]
    skipped = [(item.media_id, NO_MEDIA) for item in items if not item.url]
    return usable, skipped


def _highlight_cursor(index: int, highlight_id: str) -> str:
    return json.dumps({"v": CURSOR_VERSION, "next": index, "id": str(highlight_id)})


def _highlight_start(cursor: str | None, ids: list[str]) -> int:
    """Where to resume the highlights: at the saved highlight, found by id if it moved."""
    if not cursor:
        return 0
    try:
        state = json.loads(cursor)
        wanted = str(state.get("id", ""))
        positions = [i for i, hid in enumerate(ids) if str(hid) == wanted]
        return positions[0] if positions else max(0, int(state["next"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return 0
