"""TikTok's and yt-dlp's errors as DownloadErrors, each with a sentence a person understands."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from downloader.errors import (
    DownloadError,
    LoginRequired,
    NotFound,
    Private,
    RateLimited,
    Transient,
)

RATE_LIMITED = (
    "TikTok is rate limiting or has blocked this IP address; try again in an hour or so "
    "(another network or proxy usually helps)."
)
COOKIES_HINT = (
    "export the cookies of a logged-in TikTok account from a browser as cookies.txt and "
    'give it to yt-dlp with YTDLP_OPTIONS={"cookiefile": "/path/to/cookies.txt"}'
)
LOGIN_REQUIRED = f"TikTok wants a login for this: {COOKIES_HINT}."
CERTIFICATE = (
    "TikTok's TLS certificate could not be verified; behind a TLS-inspecting proxy, set "
    "CA_BUNDLE to that proxy's certificate authority."
)
# yt-dlp's words for a video page TikTok answers without the video (region lock, removal,
# restriction): it may pass, so the video is remembered as failed and tried again.
NOT_AVAILABLE = "Video not available, status code"


def not_found_sentence(username: str | None) -> str:
    """What the user reads for an account that does not exist."""
    return f"TikTok account {_who(username)} does not exist."


def private_sentence(username: str | None) -> str:
    """What the user reads for a private account."""
    return (
        f"TikTok account {_who(username)} is private; to archive it, {COOKIES_HINT} "
        "(that account must follow it)."
    )


def no_videos_sentence(username: str | None) -> str:
    """What the user reads for an account without videos (not a failure)."""
    return f"TikTok account {_who(username)} has not posted any videos."


def _who(username: str | None) -> str:
    return f"@{username}" if username else "this account"


# ---- error translation ---------------------------------------------------------


def translate(exc: BaseException, *, username: str | None = None) -> DownloadError:
    """Turn a yt-dlp, network or TikTok error into a DownloadError carrying a sentence."""
    if isinstance(exc, DownloadError):
        return exc
    from yt_dlp.networking.exceptions import HTTPError  # yt-dlp is loaded by then: it raised

    chain = list(_causes(exc))
    message = " | ".join(str(error) for error in chain)
    status = next((error.status for error in chain if isinstance(error, HTTPError)), None)
    if status == 429 or "IP address is blocked" in message:
        return RateLimited(RATE_LIMITED)
    if (status == 404 and username) or "Unable to extract secondary user ID" in message:
        return NotFound(not_found_sentence(username))
    if "does not have any videos posted" in message:
        return DownloadError(no_videos_sentence(username))
    if "account is private" in message:
        return Private(private_sentence(username))
    if "log in" in message.lower() or "login" in message.lower():
        return LoginRequired(LOGIN_REQUIRED)
    if status is not None:
        return _http_error(status)
    if NOT_AVAILABLE in message:
        code = message.split(NOT_AVAILABLE, 1)[1].split()[0].strip(".;,")
        return Transient(f"TikTok does not offer it here (status {code}: region-locked, removed or private).")
    return _network_error(chain) or DownloadError(f"TikTok download failed: {_short(chain[0])}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: yt-dlp's ``exc_info`` and ``cause``, Python's ``__cause__``."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop(0)
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        wrapped = getattr(error, "exc_info", None)
        cause = getattr(error, "cause", None)
        pending += [
            wrapped[1] if isinstance(wrapped, tuple) and len(wrapped) > 1 else None,
            cause if isinstance(cause, BaseException) else None,
            error.__cause__,
            error.__context__,
        ]


def _http_error(status: int) -> DownloadError:
    if status == 404:
        return NotFound("TikTok answered HTTP 404: it is gone.")
    if status >= 500:
        return Transient(f"TikTok's servers answered HTTP {status}; try again later.")
    return DownloadError(f"TikTok refused the request (HTTP {status}).")


def _network_error(chain: list[BaseException]) -> DownloadError | None:
    from yt_dlp.networking.exceptions import CertificateVerifyError, ProxyError
    from yt_dlp.networking.exceptions import TransportError as YtDlpTransportError

    if any(isinstance(error, CertificateVerifyError) for error in chain):
        return DownloadError(CERTIFICATE)
    if any(isinstance(error, ProxyError) for error in chain):
        return Transient("The proxy to TikTok failed; check HTTPS_PROXY or try again later.")
    if any(isinstance(error, YtDlpTransportError | ConnectionError | TimeoutError) for error in chain):
        return Transient("Network trouble reaching TikTok; try again later.")
    if any(isinstance(error, OSError) for error in chain):
        oserror = next(error for error in chain if isinstance(error, OSError))
        return DownloadError(f"Could not write the TikTok video: {oserror.strerror or oserror}.")
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.removeprefix("ERROR: ")
    return text if len(text) <= 200 else text[:197] + "..."


def for_video(error: DownloadError, video_id: str) -> DownloadError:
    """The same kind of error, with a sentence naming the video."""
    return type(error)(f"TikTok video {video_id}: {error.sentence}")


@contextmanager
def translated(username: str | None = None) -> Iterator[None]:
    """Raise yt-dlp's and the network's errors as DownloadErrors."""
    try:
        yield
    except DownloadError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or is_ytdlp_error(exc):
            raise translate(exc, username=username) from exc
        raise


def is_ytdlp_error(exc: BaseException) -> bool:
    """One of yt-dlp's errors (without loading yt-dlp: were it not loaded, it raised nothing)."""
    utils = sys.modules.get("yt_dlp.utils")
    return utils is not None and isinstance(exc, utils.YoutubeDLError)
