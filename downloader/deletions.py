"""Deleted posts: list an Instagram account's whole timeline once and mark archived posts it lacks.

A post missing from a full listing gets ``media_items.deleted_at`` (the first date it was
seen missing, never overwritten); one listed again gets it cleared. Files are never touched.
A listing that fails part-way marks nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from db.models import Account, MediaItem
from downloader.errors import DownloadError
from downloader.sources.base import Account as SourceAccount

POST_KINDS = ("post", "reel")


class CheckRefused(DownloadError):
    """The check cannot run (not tracked, not Instagram, no budget left); nothing changed."""


class BudgetRefused(CheckRefused):
    """Today's request budget cannot cover the check."""


@dataclass
class CheckResult:
    """What a full listing found: the archived posts missing from it, with their posting dates."""

    account: Account
    archived: int  # archived posts (carousels once)
    deleted: list[datetime | None] = field(default_factory=list)  # posting dates, newest first

    def sentence(self) -> str:
        """The reply, e.g. "@alice: 2 posts deleted on Instagram since they were archived (...)"."""
        name = f"@{self.account.username}"
        if not self.deleted:
            noun = "archived post is" if self.archived == 1 else "archived posts are"
            return f"{name}: all {self.archived} {noun} still on Instagram."
        dates = ", ".join(f"{d:%Y-%m-%d}" if d else "date unknown" for d in self.deleted)
        if len(self.deleted) == 1:
            return (
                f"{name}: 1 post deleted on Instagram since it was archived (posted {dates}); "
                "its files stay in the archive."
            )
        return (
            f"{name}: {len(self.deleted)} posts deleted on Instagram since they were archived "
            f"(posted {dates}); their files stay in the archive."
        )


def remaining(source) -> int | None:
    """Instagram requests left in today's budget for the source's session (None: no limit)."""
    budget = source.budget
    if budget is None or budget.daily_limit <= 0:
        return None
    return max(0, budget.daily_limit - budget.usage()[1])


def refusal(account: Account, cost: int, left: int) -> str:
    """The one sentence when today's budget cannot cover a check."""
    return (
        f"Checking @{account.username} needs about {cost} Instagram requests but only {left} are "
        "left in today's budget (INSTAGRAM_DAILY_REQUEST_BUDGET); nothing was checked, try again later."
    )


async def tracked_instagram(platform: str, username: str, find) -> Account:
    """The tracked Instagram account to check, or CheckRefused with a clear sentence."""
    if platform != "instagram":
        raise CheckRefused(f"/check is for Instagram accounts only; @{username} is on TikTok.")
    account = await find(platform, username)
    if account is None or not account.tracked:
        raise CheckRefused(f"@{username} is not tracked on Instagram: /add it first.")
    return account


async def check_account(
    source, account: Account, announce: Callable[[int], Awaitable[None]] | None = None
) -> CheckResult:
    """Look the account up, refuse if the budget cannot cover the listing, list it, mark and unmark."""
    if not await _archived_posts(account):
        raise CheckRefused(f"@{account.username} has no archived posts yet, so there is nothing to check.")
    left = remaining(source)
    guess = await guessed_cost(account)  # before any request: from the archive
    if left is not None and left < guess:
        raise BudgetRefused(refusal(account, guess, left))
    info: SourceAccount = await asyncio.to_thread(source.resolve, account.username, account.platform_user_id)
    cost = 1 + await asyncio.to_thread(source.check_cost, info)
    left = remaining(source)
    if left is not None and left < cost - 1:
        raise BudgetRefused(refusal(account, cost, left + 1))
    if announce is not None:
        await announce(cost)
    started = datetime.now(UTC)  # a post archived by a sync meanwhile may be newer than the listing
    codes = set(await asyncio.to_thread(source.timeline_codes, info))
    return await mark(account, codes, started)


async def mark(account: Account, listed: set[str], started: datetime) -> CheckResult:
    """After a full listing: mark archived posts not listed, unmark listed ones, stamp checked_at.

    Only rows archived before the listing ``started`` count (a concurrent sync's are newer)."""
    now = datetime.now(UTC)
    rows = await MediaItem.filter(
        account=account, kind__in=POST_KINDS, group_id__not_isnull=True, created_at__lt=started
    ).values_list("group_id", "taken_at")
    posted: dict[str, datetime | None] = {}
    for group, taken_at in rows:
        known = posted.get(group)
        posted[group] = taken_at if known is None or (taken_at and taken_at < known) else known
    gone = [group for group in posted if group not in listed]
    back = [group for group in posted if group in listed]
    base = MediaItem.filter(account=account, kind__in=POST_KINDS)
    for chunk in _chunks(gone):  # chunks: a database caps the values one query may carry
        await base.filter(group_id__in=chunk, deleted_at__isnull=True).update(deleted_at=now)
    for chunk in _chunks(back):
        await base.filter(group_id__in=chunk, deleted_at__not_isnull=True).update(deleted_at=None)
    account.checked_at = now
    await account.save(update_fields=["checked_at", "updated_at"])
    floor = datetime.min.replace(tzinfo=UTC)
    dates = sorted((posted[g] for g in gone), key=lambda d: d or floor, reverse=True)
    return CheckResult(account, len(posted), dates)


async def guessed_cost(account: Account) -> int:
    """A check's requests as the archive suggests them (its lookup and a page per 12 archived posts)."""
    return 1 + _pages(await _archived_posts(account))


def _pages(posts: int) -> int:
    return max(1, -(-posts // 12))


async def _archived_posts(account: Account) -> int:
    rows = MediaItem.filter(account=account, kind__in=POST_KINDS, group_id__not_isnull=True)
    return len(set(await rows.values_list("group_id", flat=True)))


def _chunks(groups: list[str], size: int = 500) -> list[list[str]]:
    return [groups[start : start + size] for start in range(0, len(groups), size)]
