"""Translating what instaloader raises into downloader.errors, from the response's facts.

instaloader keeps the response out of its exceptions but writes its facts in a fixed
shape ("429 Too Many Requests - "fail" status, message "..." when accessing URL", or
'... responded with "401 Unauthorized": {json}'). We read the HTTP status, the JSON
"status", "message" and "error_type" from that shape, never by searching the text for a
word, so a URL or a username can never look like a checkpoint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from instaloader import (
    AbortDownloadException,
    ConnectionException,
    LoginException,
    LoginRequiredException,
    PrivateProfileNotFollowedException,
    ProfileNotExistsException,
    QueryReturnedForbiddenException,
    TooManyRequestsException,
)

from downloader.errors import (
    README_LOGIN,
    Checkpoint,
    DownloadError,
    LoginRequired,
    NotFound,
    Private,
    RateLimited,
    SessionExpired,
    Transient,
)

LOGIN_SENTENCE = f"Instagram login required ({README_LOGIN})."
# What instaloader waits after a 429 (its 11-minute window plus 6 s), when nothing better is known.
RATE_LIMIT_BACKOFF = timedelta(seconds=666)
# "feedback_required": Instagram blocks an action for hours; asking again early prolongs it.
TEMPORARY_BLOCK_BACKOFF = timedelta(hours=2)
CHECKPOINTS = ("checkpoint_required", "challenge_required")
# instaloader's own sentence when a request was redirected to the login page.
LOGIN_REDIRECT = "Redirected to login page"
# instaloader's sentence when the start page has no logged-in token: the cookies were not accepted.
LOGGED_OUT_START_PAGE = "The start page did not contain the token fb_dtsg"

_RESPONSE = re.compile(
    r'(?P<code>\d{3}) [^"]*?(?: - "(?P<status>[^"]*)" status(?:, message "(?P<message>.*)")?)?'
    r" when accessing \S+$"
)
_FATAL = re.compile(
    r'^Query to \S+ responded with "(?P<code>\d{3}) [^"]*"(?: redirect to \S+)?(?:: (?P<body>.*))?$'
)


@dataclass
class Facts:
    """What Instagram answered, as far as instaloader kept it."""

    code: int | None = None
    status: str | None = None  # the JSON "status" ("ok", "fail")
    message: str | None = None  # the JSON "message"
    error_type: str | None = None
    login_redirect: bool = False


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (instaloader wraps the interesting one)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 6:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def facts_of(exc: BaseException) -> Facts:
    """The response facts carried by the innermost exception of the chain that has them."""
    facts = Facts()
    for each in reversed(_chain(exc)):
        text = str(each).split(": ", 1)[-1] if str(each).startswith("JSON Query to ") else str(each)
        if text.startswith(LOGIN_REDIRECT):
            facts.login_redirect = True
        if match := _FATAL.match(text):
            facts = _from_body(int(match["code"]), match["body"], facts)
        elif match := _RESPONSE.match(text):
            facts.code = int(match["code"])
            facts.status, facts.message = match["status"], match["message"]
    return facts


def _from_body(code: int, body: str | None, facts: Facts) -> Facts:
    facts.code = code
    try:
        data = json.loads((body or "").removesuffix("…"))
    except ValueError:
        return facts
    if isinstance(data, dict):
        facts.status, facts.message = data.get("status"), data.get("message")
        facts.error_type = data.get("error_type")
    return facts


def _who(username: str | None) -> str:
    return f"@{username}" if username else "this account"


def rate_limited(username: str | None, retry_at: datetime | None = None) -> RateLimited:
    """Instagram answered 429: when to try again, in a sentence."""
    retry_at = retry_at or datetime.now(UTC) + RATE_LIMIT_BACKOFF
    sentence = (
        f"Instagram is rate limiting the bot (while listing {_who(username)}); "
        f"waiting until {retry_at:%H:%M} UTC before asking again."
    )
    return RateLimited(sentence, retry_at=retry_at)


def temporary_block(username: str | None, feedback: bool) -> RateLimited:
    """feedback_required / "please wait a few minutes": a temporary block, never a latch."""
    retry_at = datetime.now(UTC) + (TEMPORARY_BLOCK_BACKOFF if feedback else RATE_LIMIT_BACKOFF)
    sentence = (
        f"Instagram temporarily blocked the bot's requests (while listing {_who(username)}); "
        f"waiting until {retry_at:%H:%M} UTC before asking again."
    )
    return RateLimited(sentence, retry_at=retry_at)


def not_followed(username: str | None) -> Private:
    """A private account the bot's login does not follow."""
    return Private(
        f"Instagram account {_who(username)} is private and the bot's Instagram login does not follow it."
    )


def login_wall(username: str | None) -> LoginRequired:
    """Instagram shows a login page instead of the (anonymous) profile."""
    return LoginRequired(
        f"Instagram shows a login page instead of {_who(username)} to visitors without a login "
        f"(common from servers); configure an Instagram login ({README_LOGIN})."
    )


def translate(
    exc: BaseException,
    username: str | None = None,
    *,
    logged_in: bool = False,
    retry_at: datetime | None = None,
) -> DownloadError:
    """Turn an instaloader / requests exception into a DownloadError with a sentence.

    ``logged_in`` says whether the failed request carried the session: only then can an
    answer mean "session expired".
    """
    if isinstance(exc, DownloadError):
        return exc
    facts = facts_of(exc)
    if facts.message in CHECKPOINTS or facts.error_type in CHECKPOINTS:
        return Checkpoint()
    if facts.message == "feedback_required" or facts.error_type == "feedback_required":
        return temporary_block(username, feedback=True)
    if facts.code == 429 or any(isinstance(e, TooManyRequestsException) for e in _chain(exc)):
        return rate_limited(username, retry_at)
    if (facts.message or "").lower().startswith("please wait a few minutes"):
        return temporary_block(username, feedback=False)
    if isinstance(exc, ProfileNotExistsException):
        return NotFound(f"Instagram account {_who(username)} does not exist.")
    if isinstance(exc, PrivateProfileNotFollowedException):
        return not_followed(username)
    if facts.login_redirect or facts.code == 401 or facts.message == "login_required":
        if logged_in:
            return SessionExpired()
        return login_wall(username) if facts.login_redirect else LoginRequired(LOGIN_SENTENCE)
    if logged_in and str(exc).startswith(LOGGED_OUT_START_PAGE):
        return SessionExpired()  # the start page Instagram sent us is the logged-out one
    if isinstance(exc, LoginRequiredException):
        return _login_required(str(exc), username, logged_in)
    if isinstance(exc, LoginException):
        return SessionExpired()
    if isinstance(exc, AbortDownloadException):
        # instaloader aborts on answers it will not retry and does not explain: stop asking.
        return Transient(f"Instagram refused a request for {_who(username)} ({facts.code}); try again later.")
    return _other(exc, facts, username)


def _login_required(text: str, username: str | None, logged_in: bool) -> DownloadError:
    if logged_in:
        return SessionExpired()
    if text.startswith("Login required to access the posts of private profile"):
        return LoginRequired(
            f"Instagram account {_who(username)} is private: the bot needs an Instagram login that "
            f"follows it ({README_LOGIN})."
        )
    return LoginRequired(LOGIN_SENTENCE)


def _other(exc: BaseException, facts: Facts, username: str | None) -> DownloadError:
    # Only network trouble is Transient (the service waits and tries again for a while); a
    # refusal, a certificate problem or an answer we cannot read would only repeat itself.
    who = _who(username)
    if isinstance(exc, QueryReturnedForbiddenException) or facts.code == 403:
        return DownloadError(f"Instagram refused a request for {who} (403 Forbidden); try again later.")
    if any(isinstance(e, requests.exceptions.SSLError) for e in _chain(exc)):
        return DownloadError(
            "Instagram's TLS certificate could not be verified; behind a TLS-inspecting proxy, "
            "set CA_BUNDLE to that proxy's certificate authority."
        )
    if isinstance(exc, (ConnectionException, requests.RequestException, OSError)):
        return Transient(f"Network trouble reaching Instagram for {who}; try again later.")
    return DownloadError(f"Instagram sent an answer the bot does not understand for {who}; try again later.")
