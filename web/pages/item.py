"""An item: every file of a post in order, its caption, date and links."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from db import gallery
from db.models import Account, MediaItem
from web.thumbs import is_video


def safe_link(link: str | None) -> str | None:
    """The original on Instagram or TikTok; anything but an https address is not linked."""
    return link if link and link.startswith("https://") else None


@aiohttp_jinja2.template("item.html")
async def item_page(request: web.Request) -> dict:
    """GET /items/<id>: a post (carousel), story or video."""
    item = await MediaItem.get_or_none(id=int(request.match_info["id"]))
    if item is None:
        raise web.HTTPNotFound(text="No such item in the archive.")
    files = await gallery.post_files(item)
    account = await Account.get_or_none(id=item.account_id) if item.account_id else None
    newer, older = await gallery.neighbours(item) if item.account_id else (None, None)
    caption = next((f.caption for f in files if f.caption), None)
    return {
        "item": item,
        "files": [(f, "audio" if f.kind == "audio" else is_video(f.path)) for f in files],
        "account": account,
        "caption": caption,
        "link": safe_link(item.link),
        "newer": newer,
        "older": older,
        "title": f"@{account.username}" if account else "Item",
    }


def add_routes(app: web.Application) -> None:
    """The item page."""
    app.router.add_get(r"/items/{id:\d{1,12}}", item_page)
