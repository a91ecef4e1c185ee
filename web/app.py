"""The web gallery's aiohttp application, and the server wiring.py starts and stops for the bot."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from db import web_access
from web import auth, events, files
from web.events import LiveJobs
from web.keys import CONFIG, DESK, FLASH, LIVE, SECRET, SERVICE, SESSION, THUMBS, WebConfig
from web.pages import account, accounts, downloads, item, search
from web.thumbs import Thumbnails

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    # No inline scripts or styles, nothing from elsewhere: only our own files.
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class AccessLog(AbstractAccessLogger):
    """One line per request at DEBUG; a sign-in link's token is never written."""

    def log(self, request, response, time: float) -> None:
        path = "/login/…" if request.path.startswith("/login/") else request.path
        self.logger.debug("%s %s %s %.0f ms", request.method, path, response.status, time * 1000)


async def _template_context(request: web.Request) -> dict:
    session = request.get(SESSION)
    return {"csrf": session.csrf if session else "", "signed_in": session is not None, "path": request.path}


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/static/") and response.status == 200:
        response.headers["Cache-Control"] = "public, max-age=3600"  # the stylesheet, script, icons
    elif request.path.startswith("/login/") or "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"  # pages show private things: keep no copies


def build_app(config: WebConfig, desk, service) -> web.Application:
    """The application: middleware, templates, every page's routes; opened on startup."""
    app = web.Application(middlewares=[auth.session_middleware], client_max_size=64 * 1024)
    app[CONFIG], app[DESK], app[SERVICE] = config, desk, service
    app[THUMBS], app[FLASH] = Thumbnails(config.data_dir), {}
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        context_processors=[_template_context],
    )
    app.router.add_static("/static/", HERE / "static", show_index=False)
    for module in (auth, files, events, accounts, account, item, downloads, search):
        module.add_routes(app)
    app.on_startup.append(_open)
    app.on_shutdown.append(_close)
    app.on_response_prepare.append(_headers)
    return app


async def _open(app: web.Application) -> None:
    app[SECRET] = await web_access.cookie_secret()
    app[LIVE] = LiveJobs(app[SERVICE])


async def _close(app: web.Application) -> None:
    app[LIVE].close()  # open event streams end, so the server stops at once


class WebServer:
    """Serves the gallery on the bot's event loop."""

    def __init__(self, app: web.Application):
        self.app = app
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> str | None:
        """Listen on host:port; a sentence instead when that is impossible (the bot runs on)."""
        runner = web.AppRunner(self.app, access_log_class=AccessLog, shutdown_timeout=3)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"The web gallery is off: port {port} on {host} is already in use "
                    f"(set WEB_PORT to a free port, or 0 to turn it off)."
                )
            return f"The web gallery is off: cannot listen on {host}:{port} ({exc.strerror or exc})."
        self.runner = runner
        return None

    @property
    def port(self) -> int | None:
        """The port actually listened on (WEB_PORT, or the one the system chose in tests)."""
        if self.runner is None or not self.runner.addresses:
            return None
        return self.runner.addresses[0][1]

    async def stop(self) -> None:
        """End open pages and event streams, stop listening."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
