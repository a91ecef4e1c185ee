"""The Accounts page: every archived account with its counts, last sync and last problem."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from db import gallery, queries
from web.keys import CONFIG, DESK
from web.pages.common import go, say_next


@aiohttp_jinja2.template("accounts.html")
async def accounts_page(request: web.Request) -> dict:
    """GET /: the accounts."""
    rows = await gallery.accounts()
    ids = [a.id for a in rows]
    counts = await queries.media_counts_of(ids)
    highlights = await gallery.highlight_counts(ids)
    posts = await gallery.post_counts(ids)
    cards = []
    for account in rows:
        kinds = counts.get(account.id, {})
        cards.append(
            {
                "account": account,
                "posts": posts.get(account.id, 0),
                "stories": kinds.get("story", (0, 0))[1],
                "highlights": highlights.get(account.id, 0),
                "videos": kinds.get("video", (0, 0))[1],
                "photo_posts": kinds.get("photo", (0, 0))[0],
            }
        )
    return {"cards": cards, "title": "Accounts"}


async def sync_all(request: web.Request) -> web.StreamResponse:
    """POST /syncall: the same sync of every tracked account as /syncall in chat."""
    answer = await request.app[DESK].syncall(chat_id=request.app[CONFIG].chat_id)
    say_next(request, answer.sentence)
    raise go("/downloads")


def add_routes(app: web.Application) -> None:
    """The accounts page and its Sync all button."""
    app.router.add_get("/", accounts_page)
    app.router.add_post("/syncall", sync_all)
