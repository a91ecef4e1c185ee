"""yt-dlp's YoutubeDL as the TikTok source uses it.

It takes output paths literally, trusts an extra CA file in every request handler
(libcurl's impersonating one included) and saves a cookie file back atomically.
Imported when the first TikTok page is read: a process that never reads TikTok (an
Instagram download in the terminal, say) does not spend 0.1 CPU s loading yt-dlp.
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
import tempfile
from pathlib import Path

import yt_dlp

log = logging.getLogger("downloader.sources.ytdlp")


class PlainYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL that trusts an extra CA file and takes output paths literally.

    It knows only the extractors it is asked for by name (``get_info_extractor``):
    registering all ~1,700 costs 40 ms of CPU per YoutubeDL, one per download thread.
    """

    def __init__(self, params: dict, ca_file: str | None):
        self._ca_file = ca_file
        super().__init__(params, auto_init=False)
        if self.params.get("verbose"):
            self.print_debug_header()  # what auto_init would print

    def build_request_director(self, handlers, preferences=None):
        """yt-dlp's request director, with the CA file added to every handler's TLS context."""
        director = super().build_request_director(handlers, preferences)
        if self._ca_file:
            for handler in director.handlers.values():
                if handler.RH_NAME == "curl_cffi":
                    _give_curl_ca_file(handler, self._ca_file)
                else:
                    _add_ca_file(handler, self._ca_file)
        return director

    def save_cookies(self) -> None:
        """yt-dlp's cookie file save (at close), but atomic: a crash never leaves half a file."""
        cookiefile = self.params.get("cookiefile")
        if cookiefile is None:
            return
        if not isinstance(cookiefile, str | os.PathLike):
            super().save_cookies()  # a file object the caller gave: theirs to manage
            return
        try:
            save_cookies_atomically(self.cookiejar, Path(os.path.expanduser(cookiefile)))
        except (OSError, ValueError) as exc:
            log.warning("could not save the TikTok cookie file (the old one is kept): %s", exc)

    def _forceprint(self, key, info_dict):
        # yt-dlp renders the formats, thumbnails and subtitles tables of every video for its
        # print options, printed or not: a tenth of a TikTok download's CPU time.
        if info_dict is None or self._printing(key):
            return super()._forceprint(key, info_dict)
        return dict(info_dict)

    def _printing(self, key: str) -> bool:
        """Whether a --print, --print-to-file or --get-* option may print at ``key``."""
        params = self.params
        if params["forceprint"].get(key) or params["print_to_file"].get(key):
            return True
        return any(value for name, value in params.items() if name.startswith("force"))

    @staticmethod
    def _outtmpl_expandpath(outtmpl):
        # Our output template is a path we built: "~" and "$NAME" in it are literal, and
        # yt-dlp would expand "$NAME" (it cannot be escaped).
        return outtmpl


def save_cookies_atomically(jar, path: Path) -> None:
    """Write ``jar`` (a YoutubeDLCookieJar) to a temp file beside ``path``, then rename it.

    The file holds a login, so it stays private: its mode is kept without group and
    other bits, and a new file is 0600.
    """
    mode = (stat.S_IMODE(path.stat().st_mode) & 0o600) if path.exists() else 0o600
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode or 0o600)
            jar.save(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _add_ca_file(handler, ca_file: str) -> None:
    """Make ``handler`` load ``ca_file`` on top of the store yt-dlp chose.

    yt-dlp has no option for a CA file: it trusts certifi, or with the "no-certifi"
    compat option the system store (which SSL_CERT_FILE replaces). Every handler
    that speaks TLS through Python's ssl builds its contexts with
    ``_make_sslcontext`` (requests, urllib, websockets); curl_cffi does not.
    """
    make_context = handler._make_sslcontext

    def make_context_with_ca(*args, **kwargs):
        context = make_context(*args, **kwargs)
        if context.verify_mode != ssl.CERT_NONE:
            context.load_verify_locations(cafile=ca_file)
        return context

    handler._make_sslcontext = make_context_with_ca


def _give_curl_ca_file(handler, ca_file: str) -> None:
    """Make yt-dlp's curl_cffi handler (browser impersonation) trust ``ca_file``.

    libcurl does not use Python's ssl: its sessions take a CA file path as ``verify``,
    which yt-dlp never sets (curl_cffi then falls back to REQUESTS_CA_BUNDLE from the
    environment, or to certifi). ``ca_file`` is certifi plus CA_BUNDLE, so it is the
    whole trust store, also for an HTTPS proxy.
    """
    import curl_cffi.requests

    def create_session(cookiejar=None):
        return curl_cffi.requests.Session(cookies=cookiejar, verify=ca_file)

    handler._create_instance = create_session
