"""Switching the Instagram login at run time, from a file the owner sent.

A new InstagramSource is built with the new file and checked with one request;
only when that works does it replace the current source. Jobs already running
finish with the old source, which is closed once no Instagram download runs.
The file's path is kept in the settings table, so a restart uses it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from db import queries
from downloader.errors import DownloadError
from downloader.login_file import read_login_file, store_cookies

log = logging.getLogger(__name__)
SETTING = "instagram_login_file"  # path of the login file sent in chat, relative to DATA_DIR
IDLE_CHECK_SECONDS = 2.0


async def stored_login_file(data_dir: Path) -> Path | None:
    """The login file sent in chat earlier, if it is still there (it beats the .env files)."""
    relative = await queries.get_setting(SETTING)
    if not relative:
        return None
    path = Path(data_dir).resolve() / relative
    if not path.is_file():
        log.warning("the Instagram login file sent in chat (%s) is missing; using the settings", relative)
        return None
    return path


class LoginSwitch:
    """Checks a new login file and, when it works, makes it the Instagram login of the service."""

    def __init__(self, service, make_source: Callable[[Path], object]):
        self.service = service
        self.make_source = make_source  # cookies.txt path -> a new InstagramSource
        self._closing: set[asyncio.Task] = set()
        self._retired: list = []

    async def use_file(self, data: bytes) -> str:
        """Validate, store, check and switch; return the Instagram username.

        Raises BadLoginFile (nothing stored) or the check's DownloadError (file removed again)."""
        cookies = read_login_file(data)
        path = await asyncio.to_thread(store_cookies, self.service.data_dir, cookies)
        source = self.make_source(path)
        try:
            username = await asyncio.to_thread(source.check_login)
        except DownloadError:
            await asyncio.to_thread(source.close)
            path.unlink(missing_ok=True)
            raise
        await self._switch(source, path)
        log.info("Instagram login switched to the file sent in chat (@%s)", username)
        return username

    async def _switch(self, source, path: Path) -> None:
        """Make ``source`` current, remember its file, retire the old source and its file."""
        old = self.service.sources.get("instagram")
        self.service.sources["instagram"] = source
        previous = await stored_login_file(self.service.data_dir)
        await queries.set_setting(SETTING, str(path.relative_to(self.service.data_dir)))
        if old is not None:
            self._retired.append(old)
            task = asyncio.create_task(self._close_when_idle(old, previous))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_when_idle(self, old, previous: Path | None) -> None:
        """Close the old source (and delete the old chat login file) once no Instagram job runs."""
        while await self._instagram_busy():
            await asyncio.sleep(IDLE_CHECK_SECONDS)
        await asyncio.to_thread(old.close)
        self._retired.remove(old)
        if previous is not None:
            previous.unlink(missing_ok=True)  # secrets are not kept longer than needed

    async def _instagram_busy(self) -> bool:
        running = await queries.running_downloads("instagram")
        return any(self.service.is_active(job.id) for job in running)

    async def close(self) -> None:
        """At shutdown: stop waiting and close every retired source."""
        for task in list(self._closing):
            task.cancel()
        for old in self._retired:
            await asyncio.to_thread(old.close)
        self._retired.clear()
