"""What every page needs: the flash sentence after a POST, page numbers, redirects."""

from __future__ import annotations

from aiohttp import web

from web.keys import FLASH, SESSION

MOST_FLASHES = 100  # sessions whose one pending sentence is kept


def say_next(request: web.Request, sentence: str) -> None:
    """Show ``sentence`` as a toast on the next page this browser opens (after a redirect)."""
    flashes: dict = request.app[FLASH]
    flashes.pop(request[SESSION].sid, None)
    while len(flashes) >= MOST_FLASHES:
        flashes.pop(next(iter(flashes)))
    flashes[request[SESSION].sid] = sentence


def take_flash(request: web.Request) -> str | None:
    """The pending toast of this browser, once."""
    return request.app[FLASH].pop(request[SESSION].sid, None)


def page_number(request: web.Request) -> int:
    """?page=N (1-based in the address, 0-based here); anything else is the first page."""
    text = request.query.get("page", "1")
    return max(0, min(int(text), 100_000) - 1) if text.isdigit() else 0


def go(location: str) -> web.HTTPSeeOther:
    """After a POST: see the result on a page of ours (a GET)."""
    return web.HTTPSeeOther(location)
