"""The doctor's checks of the archive folder, the Instagram login and the download libraries."""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from config import Settings
from downloader.errors import DownloadError

Result = tuple[str, str]  # ("ok" | "warn" | "FAIL", what was found or how to fix it)


async def archive_marker(data_dir: Path, usable: bool) -> Result:
    """downloads/.archive-id is there and names this database's archive (the disk is mounted)."""
    from db import queries
    from db.models import MediaItem
    from downloader.guard import MARKER, SETTING, foreign_sentence, missing_sentence
    from downloader.paths import downloads_root

    root = downloads_root(data_dir)
    marker = root / MARKER
    found = marker.read_text().strip() if marker.is_file() else None
    if not usable:
        state = "is there" if found else "is not there yet (the first download writes it)"
        return "warn", f"{marker} {state}; not compared with the database, which is not available."
    stored, files = await queries.get_setting(SETTING), await MediaItem.all().count()
    if found and stored and found != stored:
        return "FAIL", foreign_sentence(root) + " Mount this archive's disk there, or set DATA_DIR."
    if found:
        return "ok", f"{root} is this archive's folder ({files} files archived)"
    if stored or files:
        return "FAIL", missing_sentence(root) + " Mount the disk (or share) there, then run doctor again."
    return "ok", f"no archive yet: the first download creates {root} and its marker"


async def instagram_login(settings: Settings, usable: bool) -> Result:
    """The login the bot would use answers Instagram (exactly one request), or there is none."""
    from downloader.login import stored_login_file
    from downloader.sources.instagram import InstagramSource

    chat_login = await stored_login_file(settings.data_dir) if usable else None
    if chat_login is not None:
        source = InstagramSource(cookies_file=chat_login, request_delay=(0, 0))
        which = "the file sent in chat"
    elif settings.instagram_session_file or settings.instagram_cookies_file:
        source = InstagramSource(
            session_file=settings.instagram_session_file,
            cookies_file=settings.instagram_cookies_file,
            login_username=settings.instagram_username,
            request_delay=(0, 0),
        )
        which = "INSTAGRAM_SESSION_FILE" if settings.instagram_session_file else "INSTAGRAM_COOKIES_FILE"
    else:
        return "warn", "no login: public posts only; stories and highlights need one (send /login in chat)."
    try:
        name = await asyncio.to_thread(source.check_login)
    except DownloadError as exc:
        return "FAIL", f"{exc.sentence} (checked {which} with one request to Instagram)"
    finally:
        await asyncio.to_thread(source.close)
    return "ok", f"logged in as @{name} ({which}; checked with one request to Instagram)"


def tiktok_impersonation() -> Result:
    """yt-dlp can request TikTok's pages as a browser (curl_cffi); without it TikTok answers empty pages."""
    from downloader.sources.ytdlp import impersonation

    target = impersonation()
    if target is None:
        return "FAIL", (
            "curl_cffi is missing or not supported by this yt-dlp, and TikTok answers plain requests with "
            "empty pages: run .venv/bin/pip install -r requirements.txt."
        )
    return "ok", f"as {target}"


def versions() -> list[tuple[str, str]]:
    """instaloader's and yt-dlp's versions: the first thing to update when a platform changes."""
    found = []
    for package in ("instaloader", "yt-dlp"):
        try:
            found.append((package, f"{version(package)} (update: .venv/bin/pip install -r requirements.txt)"))
        except PackageNotFoundError:
            found.append((package, "not installed: .venv/bin/pip install -r requirements.txt"))
    return found
