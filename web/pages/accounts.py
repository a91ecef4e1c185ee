"""The Accounts page: every archived account with its counts, last sync and last problem."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from db import gallery, queries
from downloader.gone import state_words
from downloader.paths import downloads_root
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
    pictures = await queries.newest_pictures(ids)
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
                "picture": account.id in pictures,
                "gone": state_words(account),
            }
        )
    return {"cards": cards, "title": "Accounts"}


async def sync_all(request: web.Request) -> web.StreamResponse:
    """POST /syncall: the same sync of every tracked account as /syncall in chat."""
    answer = await request.app[DESK].syncall(chat_id=request.app[CONFIG].chat_id)
    say_next(request, answer.sentence)
    raise go("/downloads")


async def picture(request: web.Request) -> web.StreamResponse:
    """GET /accounts/<id>/picture: the newest kept profile picture, found by the account id only."""
    account_id = int(request.match_info["id"])
    path = (await queries.newest_pictures([account_id])).get(account_id)
    data_dir = request.app[CONFIG].data_dir
    found = (Path(data_dir) / path).resolve() if path else None
    # The row's path is ours, but a tampered database must still not reach outside the archive.
    if found is None or downloads_root(data_dir) not in found.parents or not found.is_file():
        raise web.HTTPNotFound(text="No profile picture is kept for that account.")
    return web.FileResponse(found, headers={"Cache-Control": "private, max-age=3600"})


def add_routes(app: web.Application) -> None:
    """The accounts page, its Sync all button and the accounts' profile pictures."""
    app.router.add_get("/", accounts_page)
    app.router.add_post("/syncall", sync_all)
    app.router.add_get(r"/accounts/{id:\d{1,12}}/picture", picture)
