"""The downloader's exception tree: every error carries a sentence a person understands.

Platform adapters translate their library's exceptions (instaloader, yt-dlp, HTTP)
into these at the adapter boundary; handlers and the command line show
``error.sentence`` and never a traceback.
"""

from __future__ import annotations

from datetime import datetime

README_LOGIN = "see 'Instagram login' in the README"


class DownloadError(Exception):
    """Base class; ``sentence`` is what the user is shown."""

    default_sentence = "The download failed."

    def __init__(self, sentence: str | None = None):
        self.sentence = sentence or self.default_sentence
        super().__init__(self.sentence)


class InvalidInput(DownloadError):
    """The user typed something that is not an account name or profile URL."""

    default_sentence = "That is not a valid account name."


class NotFound(DownloadError):
    """The account does not exist (or was renamed or deleted)."""

    default_sentence = "This account does not exist."


class Private(DownloadError):
    """The account is private and the logged-in user does not follow it."""

    default_sentence = "This account is private and not followed by the bot's login."


class LoginRequired(DownloadError):
    """The platform wants a logged-in session for this request."""

    default_sentence = f"Instagram login required ({README_LOGIN})."


class SessionExpired(LoginRequired):
    """A session was configured but the platform no longer accepts it."""

    default_sentence = (
        "The Instagram session has expired: send me a new cookies.txt or session file (/login explains how)."
    )


class RateLimited(DownloadError):
    """The platform answered 429 or an equivalent; ``retry_at`` says when to try again."""

    default_sentence = "Rate limited by the platform."

    def __init__(self, sentence: str | None = None, retry_at: datetime | None = None):
        self.retry_at = retry_at
        if sentence is None and retry_at is not None:
            sentence = f"Rate limited by the platform; try again after {retry_at:%H:%M} UTC."
        super().__init__(sentence)


class BudgetExhausted(DownloadError):
    """The daily Instagram request budget is spent; ``retry_at`` says when it allows more."""

    default_sentence = "The daily Instagram request budget is spent."

    def __init__(self, sentence: str | None = None, retry_at: datetime | None = None):
        self.retry_at = retry_at
        if sentence is None and retry_at is not None:
            sentence = (
                "The daily Instagram request budget (INSTAGRAM_DAILY_REQUEST_BUDGET) is spent; "
                f"further Instagram work is deferred to {retry_at:%H:%M} UTC."
            )
        super().__init__(sentence)


class Checkpoint(DownloadError):
    """Instagram asks the account owner to confirm a checkpoint/challenge; stop all requests."""

    default_sentence = (
        "Instagram asked for a security check (checkpoint). All Instagram requests are "
        "stopped: open Instagram in a browser or the app with the bot's account, confirm "
        "it was you, then log in again and restart the bot."
    )


class Transient(DownloadError):
    """Network trouble or a server error that may go away on its own."""

    default_sentence = "Network trouble reaching the platform; try again later."


class Cancelled(DownloadError):
    """The job was cancelled by the user."""

    default_sentence = "Cancelled."


class StopRequested(Exception):
    """Raised by the service's wait function inside a source thread: the job was asked to
    pause, cancel or stop for shutdown during a wait. Sources let it propagate untouched."""
