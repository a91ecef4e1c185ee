"""Sign-in by one-time link, signed session cookies, CSRF and same-origin checks for POSTs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from db import web_access
from web.keys import CONFIG, SECRET, SESSION, Session

log = logging.getLogger(__name__)
COOKIE = "gallery_session"
LIFETIME = 30 * 86400  # seconds a session lasts
OPEN_PATHS = ("/login/", "/static/")
LINK_WORDS = {
    "expired": "This sign-in link has expired: links work 10 minutes. Send /web to the bot for a new one.",
    "unknown": "This sign-in link was already used or is not valid. Send /web to the bot for a new one.",
}
FOREIGN = "Refused: this form was not sent from the gallery's own pages."
NO_TOKEN = "Refused: the form's security token is missing or old. Go back, reload the page and try again."


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def make_cookie(secret: bytes, epoch: int) -> str:
    """A new session's cookie value: epoch, session id, issue time and signature."""
    body = f"{epoch}.{secrets.token_urlsafe(16)}.{int(time.time())}"
    return f"{body}.{_sign(secret, body)}"


async def read_session(request: web.Request) -> Session | None:
    """The request's session if its cookie is signed, current (no /web logout since) and fresh."""
    value = request.cookies.get(COOKIE, "")
    parts = value.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit():
        return None
    secret = request.app[SECRET]
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_sign(secret, body), parts[3]):
        return None
    if int(parts[0]) != await web_access.session_epoch() or int(parts[2]) + LIFETIME < time.time():
        return None
    return Session(parts[1], _sign(secret, "csrf:" + parts[1])[:32])


def _origins(request: web.Request) -> set[str]:
    """The gallery's own origins: WEB_BASE_URL's, and the one the browser used."""
    base = urlsplit(request.app[CONFIG].base_url)
    return {f"{base.scheme}://{base.netloc}", f"{request.scheme}://{request.host}"}


def same_origin(request: web.Request) -> bool:
    """A POST must come from our pages: by its Origin, or else its Referer."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = urlsplit(request.headers.get("Referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else None
    return origin is not None and origin in _origins(request)


def signin_page(request: web.Request, sentence: str | None = None, status: int = 401) -> web.Response:
    """The only page served without a session: how to sign in."""
    return aiohttp_jinja2.render_template("signin.html", request, {"sentence": sentence}, status=status)


@web.middleware
async def session_middleware(request: web.Request, handler):
    """No page, file or thumbnail without a session; every POST same-origin with its CSRF token."""
    if request.path.startswith(OPEN_PATHS):
        return await handler(request)
    session = await read_session(request)
    if session is None:
        if request.path == "/events":
            return web.Response(status=401, text="send /web to the bot")
        return signin_page(request)
    request[SESSION] = session
    if request.method == "POST":
        if not same_origin(request):
            return web.Response(status=403, text=FOREIGN)
        form = await request.post()
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            return web.Response(status=403, text=NO_TOKEN)
    return await handler(request)


async def login(request: web.Request) -> web.StreamResponse:
    """GET /login/{token}: spend the link, set the session cookie, go to the accounts."""
    outcome = await web_access.spend_link_token(request.match_info["token"])
    if outcome != "ok":
        log.info("web gallery: a sign-in link was refused (%s)", outcome)  # never the token
        return signin_page(request, LINK_WORDS[outcome], status=403)
    epoch = await web_access.session_epoch()
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        COOKIE,
        make_cookie(request.app[SECRET], epoch),
        max_age=LIFETIME,
        httponly=True,
        samesite="Lax",
        secure=request.app[CONFIG].secure_cookies,
        path="/",
    )
    log.info("web gallery: signed in with a /web link")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: forget this browser's session (/web logout in chat ends all of them)."""
    response = web.HTTPSeeOther("/")
    response.del_cookie(COOKIE, path="/")
    raise response


def add_routes(app: web.Application) -> None:
    """Sign-in and sign-out."""
    app.router.add_get("/login/{token}", login, allow_head=False)  # a HEAD must not spend it
    app.router.add_post("/logout", logout)
