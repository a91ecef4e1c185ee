"""The bot's Instagram login: session files, browser cookies, and what is latched about them.

Loading a session makes no request. Nothing tests the login per run: an expired session
shows itself on the first real request (a 401 on a logged-in request), and is then
latched until the login file changes. ``check_login`` is the one explicit test request.
"""

from __future__ import annotations

import logging
from http.cookiejar import LoadError, MozillaCookieJar
from pathlib import Path

from instaloader import ConnectionException, Instaloader

from downloader.errors import README_LOGIN, Checkpoint, DownloadError, SessionExpired

log = logging.getLogger(__name__)


def username_from_session_file(path: Path) -> str | None:
    """``session-USER`` (what ``instaloader --login USER`` writes) -> USER."""
    name = Path(path).name
    return name.removeprefix("session-") if name.startswith("session-") and len(name) > 8 else None


def instagram_cookies(path: Path) -> dict[str, str]:
    """The instagram.com cookies of a Netscape cookies.txt, by name."""
    jar = MozillaCookieJar()
    # Browsers export session cookies without an expiry: keep them; Instagram decides validity.
    jar.load(str(path), ignore_discard=True, ignore_expires=True)
    return {
        cookie.name: cookie.value or ""
        for cookie in jar
        if cookie.domain.lstrip(".") == "instagram.com" or cookie.domain.endswith(".instagram.com")
    }


def _file_stamp(path: Path | None) -> tuple[int, int] | None:
    try:
        stat = Path(path).stat() if path else None
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size) if stat else None


class Login:
    """The configured login file and what Instagram said about it (latches)."""

    def __init__(self, session_file: Path | None, cookies_file: Path | None, username: str | None):
        self.session_file = Path(session_file) if session_file else None
        self.cookies_file = Path(cookies_file) if cookies_file else None
        self.username = username
        self.checkpoint: Checkpoint | None = None
        # The SessionExpired raised, and the login file's stamp at the time.
        self._expired: tuple[SessionExpired, tuple | None] | None = None

    @property
    def configured(self) -> bool:
        """Whether a session file or cookies file is configured."""
        return self.session_file is not None or self.cookies_file is not None

    @property
    def name(self) -> str | None:
        """Which Instagram account this login is (not which file): shared by workers that use it."""
        if self.username:
            return self.username.lower()
        if self.session_file is not None:
            return (username_from_session_file(self.session_file) or self.session_file.name).lower()
        if self.cookies_file is not None:
            try:
                user_id = instagram_cookies(self.cookies_file).get("ds_user_id")
            except (OSError, LoadError):
                user_id = None
            return f"id {user_id}" if user_id else self.cookies_file.name
        return None

    def remember(self, error: DownloadError) -> None:
        """Checkpoints stop every later request; an expired login waits for a new login file."""
        if isinstance(error, Checkpoint):
            self.checkpoint = error
        elif isinstance(error, SessionExpired) and self.configured:
            self._expired = (error, self._stamp())

    def raise_if_latched(self) -> bool:
        """Raise a latched checkpoint or expiry; True if the login file changed since expiry."""
        if self.checkpoint is not None:
            raise self.checkpoint
        if self._expired is None:
            return False
        error, stamp = self._expired
        if self._stamp() == stamp:
            raise error  # no request until the login file changes
        self._expired = None
        return True

    def load_into(self, loader: Instaloader, username: str | None = None) -> None:
        """Put the configured session into instaloader (no request)."""
        username = username or self.username
        try:
            if self.session_file is not None:
                username = username or username_from_session_file(self.session_file) or "instagram"
                loader.load_session_from_file(username, str(self.session_file))
                return
            assert self.cookies_file is not None
            cookies = instagram_cookies(self.cookies_file)
        except (OSError, LoadError, EOFError, ValueError) as exc:
            raise SessionExpired(self._unreadable_sentence()) from exc
        if not cookies.get("sessionid") or not cookies.get("csrftoken"):
            raise SessionExpired(
                f"The cookies file {self.cookies_file.name} has no Instagram sessionid/csrftoken: "
                f"export it from a browser logged in to instagram.com ({README_LOGIN})."
            )
        loader.load_session(username or "instagram", cookies)

    def check(self, loader: Instaloader) -> str:
        """Ask Instagram once who the session belongs to (instaloader's test_login)."""
        context = loader.context
        mark = len(context.error_log)
        name = loader.test_login()
        if name:
            return name
        problem = next((m for m in context.error_log[mark:] if "checking if logged in" in m), None)
        if problem is None:
            raise SessionExpired()
        # test_login swallows the error; rebuild it so network trouble is not called "expired".
        raise ConnectionException(problem)

    def _stamp(self) -> tuple | None:
        return _file_stamp(self.session_file or self.cookies_file)

    def _unreadable_sentence(self) -> str:
        path = self.session_file or self.cookies_file
        return (
            f"The Instagram login file {path.name if path else ''} cannot be read: log in again "
            f"with `instaloader --login USER` ({README_LOGIN})."
        )
