"""Accounts gone from their platform (deleted, banned, private and not followed): noted, told, backed off.

A sync that finds a known account gone ends with one sentence instead of a failure; the
account keeps its archive. Syncs of all accounts try a gone account once a day only; the
first normal answer clears the state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from db import queries
from db.models import Account
from downloader.errors import DownloadError, NotFound, Private
from downloader.words import site_name

BACKOFF = timedelta(hours=24)  # a gone account is tried once a day by syncs of all accounts


class Banned(NotFound):
    """The platform says the account was banned (suspended)."""

    default_sentence = "This account was banned by the platform."


def gone_kind(exc: DownloadError) -> str | None:
    """The gone state an error proves ("deleted", "banned", "private"), or None."""
    if isinstance(exc, Banned):
        return "banned"
    if isinstance(exc, NotFound):
        return "deleted"
    if isinstance(exc, Private):
        return "private"
    return None


def state_words(account: Account) -> str | None:
    """ "deleted on Instagram since 2026-12-03", or None for an account that is not gone."""
    if not account.gone:
        return None
    platform = site_name(account.platform)
    what = {"private": f"private on {platform} (not followed)"}.get(
        account.gone, f"{account.gone} on {platform}"
    )
    since = f" since {account.gone_since:%Y-%m-%d}" if account.gone_since else ""
    return what + since


def gone_sentence(account: Account) -> str:
    """What a sync of a gone account says instead of failing."""
    return (
        f"@{account.username} is {state_words(account)}: nothing to sync, the archive keeps its files; "
        "syncs of all accounts try it once a day."
    )


async def mark_gone(account: Account, kind: str) -> str:
    """Store the gone state (the first date stays while the state is the same); return the sentence."""
    if account.gone != kind or account.gone_since is None:
        account.gone, account.gone_since = kind, queries.now()
        await account.save(update_fields=["gone", "gone_since", "updated_at"])
    return gone_sentence(account)


async def clear_gone(account: Account) -> None:
    """The account answered normally again."""
    if account.gone is not None:
        account.gone, account.gone_since = None, None
        await account.save(update_fields=["gone", "gone_since", "updated_at"])


def backoff_reason(account: Account, now: datetime) -> str | None:
    """Why a sync of all accounts leaves a gone account alone now (tried < 24 h ago), or None."""
    if not account.gone or account.last_sync_at is None:
        return None
    next_try = account.last_sync_at + BACKOFF
    if now >= next_try:
        return None
    return f"{state_words(account)}; tried once a day, next after {next_try:%Y-%m-%d %H:%M} UTC"


def vanished_badge(account: Account, removed_at: datetime | None) -> str:
    """A gallery badge: "deleted on Instagram 2026-12-03" for a deleted/banned account's things,
    "removed from Instagram 2026-12-03" for a removed highlight or item, else ""."""
    site = site_name(account.platform)
    if account.gone in ("deleted", "banned") and account.gone_since is not None:
        return f"{account.gone} on {site} {account.gone_since:%Y-%m-%d}"
    return f"removed from {site} {removed_at:%Y-%m-%d}" if removed_at is not None else ""
