"""What the web application holds: its settings and the services it calls (typed app keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass
class WebConfig:
    """The web gallery's settings, from config.Settings (wiring.py fills it in)."""

    data_dir: Path
    base_url: str  # WEB_BASE_URL or http://WEB_HOST:WEB_PORT, without a trailing slash
    chat_id: int | None = None  # where jobs started on the web show their status message
    platforms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # phases per platform

    @property
    def secure_cookies(self) -> bool:
        """Behind HTTPS the session cookie is sent over HTTPS only."""
        return self.base_url.startswith("https://")


@dataclass
class Session:
    """A signed-in browser: its session id and the CSRF token its forms carry."""

    sid: str
    csrf: str


CONFIG = web.AppKey("config", WebConfig)
DESK = web.AppKey("desk")  # downloader.desk.JobDesk
SERVICE = web.AppKey("service")  # downloader.service.DownloadService
LIVE = web.AppKey("live")  # web.events.LiveJobs
THUMBS = web.AppKey("thumbs")  # web.thumbs.Thumbnails
SECRET = web.AppKey("secret", bytes)
FLASH = web.AppKey("flash", dict)
SESSION = web.RequestKey("session", Session)  # the Session of a signed-in request
