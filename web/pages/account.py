"""An account: posts as a grid (newest first, 60 a page), stories by day, highlights, videos."""

from __future__ import annotations

from itertools import groupby

import aiohttp_jinja2
from aiohttp import web

from db import gallery, queries
from db.models import Account, Highlight
from downloader.gone import vanished_badge
from web.keys import CONFIG, DESK
from web.pages.common import go, page_number, say_next

PAGE = 60
TABS = {"instagram": ("posts", "stories", "highlights"), "tiktok": ("videos",)}
ONLY = {"": None, "stories": ("stories",), "highlights": ("highlights",)}


async def _account(request: web.Request) -> Account:
    account = await Account.get_or_none(id=int(request.match_info["id"]))
    if account is None:
        raise web.HTTPNotFound(text="No such account in the archive.")
    return account


@aiohttp_jinja2.template("account.html")
async def account_page(request: web.Request) -> dict:
    """GET /accounts/<id>?tab=posts|stories|highlights|videos&page=N[&h=<highlight>]."""
    account = await _account(request)
    tabs = TABS.get(account.platform, ("posts",))
    tab = request.query.get("tab", tabs[0])
    if tab not in tabs:
        tab = tabs[0]
    page = page_number(request)
    context = {"account": account, "tabs": tabs, "tab": tab, "page": page, "title": f"@{account.username}"}
    context["former"] = await queries.former_names(account)
    if tab in ("posts", "videos"):
        items = await gallery.post_covers(account, gallery.TAB_KINDS[tab], page, PAGE)
        sizes = await gallery.group_sizes(account.platform, [i.group_id for i in items if i.group_id])
        context |= {"items": items[:PAGE], "more": len(items) > PAGE, "sizes": sizes}
    elif tab == "stories":
        items = await gallery.newest_items(account, ("story",), page, PAGE)
        days = [(day, list(group)) for day, group in groupby(items[:PAGE], key=_day)]
        context |= {"days": days, "more": len(items) > PAGE}
    else:
        context |= await _highlights(request, account, page)
    return context


def _day(item) -> str:
    return f"{item.taken_at:%A, %d %B %Y}" if item.taken_at else "Unknown day"


async def _highlights(request: web.Request, account: Account, page: int) -> dict:
    """The highlight titles, and the chosen highlight's items."""
    found = await gallery.highlights(account)
    chosen_id = request.query.get("h", "")
    chosen = None
    if chosen_id.isdigit():
        chosen = await Highlight.get_or_none(id=int(chosen_id), account=account)
    if chosen is None and found:
        chosen = found[0][0]
    items = await gallery.highlight_items(chosen, page, PAGE) if chosen else []
    taken_out = await gallery.removed_members(chosen) if chosen else {}
    return {
        "highlights": [(h, count, vanished_badge(account, h.removed_at)) for h, count in found],
        "chosen": chosen,
        "chosen_badge": vanished_badge(account, chosen.removed_at) if chosen else "",
        "items": items[:PAGE],
        "badges": {i.media_id: vanished_badge(account, taken_out.get(i.media_id)) for i in items[:PAGE]},
        "more": len(items) > PAGE,
    }


async def download(request: web.Request) -> web.StreamResponse:
    """POST /accounts/<id>/download: Download new / Stories only / Highlights only, as /download."""
    account = await _account(request)
    form = await request.post()
    only = str(form.get("only", ""))
    if only not in ONLY or (only and account.platform != "instagram"):
        raise web.HTTPBadRequest(text="Unknown choice: use the account page's buttons.")
    answer = await request.app[DESK].download(account, phases=ONLY[only], chat_id=request.app[CONFIG].chat_id)
    say_next(request, answer.sentence)
    raise go("/downloads")


def add_routes(app: web.Application) -> None:
    """The account page and its download buttons."""
    app.router.add_get(r"/accounts/{id:\d{1,12}}", account_page)
    app.router.add_post(r"/accounts/{id:\d{1,12}}/download", download)
