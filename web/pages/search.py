"""Search: account names and captions."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from db import gallery

MOST = 60


@aiohttp_jinja2.template("search.html")
async def search_page(request: web.Request) -> dict:
    """GET /search?q=...: matching accounts, then posts whose caption holds the words."""
    text = request.query.get("q", "").strip()[:200]
    accounts, items = await gallery.search(text, MOST) if text else ([], [])
    return {"q": text, "accounts": accounts, "items": items, "title": "Search"}


def add_routes(app: web.Application) -> None:
    """The search page."""
    app.router.add_get("/search", search_page)
