"""A MediaItem as JSON, so a failed file can be tried again by a later run without listing."""

from __future__ import annotations

from datetime import datetime

from downloader.sources.base import MediaItem

_FIELDS = (
    "media_id",
    "kind",
    "ext",
    "url",
    "url_expires",
    "headers",
    "subdir",
    "size",
    "metadata",
    "group_id",
    "caption",
    "link",
    "highlight_id",
    "highlight_title",
    "cover",
)


def to_recipe(item: MediaItem) -> dict:
    """The item's fields as JSON (a source-side ``download`` hook cannot be stored)."""
    recipe = {name: getattr(item, name) for name in _FIELDS}
    recipe["taken_at"] = item.taken_at.isoformat()
    return recipe


def from_recipe(recipe: dict) -> MediaItem:
    """The item again; ``download`` is None (a source's ``revive`` restores it)."""
    values = {name: recipe.get(name) for name in _FIELDS}
    values["headers"] = values["headers"] or {}
    values["subdir"] = values["subdir"] or ""
    values["url_expires"] = bool(values["url_expires"])  # absent from recipes stored before it
    return MediaItem(taken_at=datetime.fromisoformat(recipe["taken_at"]), **values)
