"""What one pass delivers to a chat: pending files per download run, within NOTIFY_BACKLOG_LIMIT.

The limit is per run (one job): the first sync of a newly added account, or a very large
run, sends the newest posts that fit and names the rest in one "…and N more" line. Files
of several runs that waited (Telegram was away, the bot was down) are all sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from db import delivery_queries as dq
from db.models import MediaItem, NotifySetting


@dataclass
class Run:
    """The pending files of one download run: posts to send (oldest first) and what the limit leaves out."""

    units: list[list[MediaItem]]
    cut: list[MediaItem] = field(default_factory=list)


def units_of(items: list[MediaItem]) -> list[list[MediaItem]]:
    """Files grouped per post (album), story or video, in the order given."""
    units: dict[str, list[MediaItem]] = {}
    for item in items:
        units.setdefault(item.group_id or item.media_id, []).append(item)
    return list(units.values())


def within_limit(units: list[list[MediaItem]], limit: int) -> tuple[list[list[MediaItem]], list[MediaItem]]:
    """The newest posts that fit in ``limit`` files (oldest first), and the files left over."""
    chosen: list[list[MediaItem]] = []
    rest: list[MediaItem] = []
    used = 0
    for index in range(len(units) - 1, -1, -1):
        unit = units[index]
        if used + len(unit) <= limit:
            chosen.append(unit)
            used += len(unit)
            continue
        if not chosen:  # one post larger than the limit: its first files only
            chosen.append(unit[:limit])
            rest.extend(unit[limit:])
            index -= 1
        rest.extend(item for older in units[: index + 1] for item in older)
        break
    return list(reversed(chosen)), rest


async def runs(setting: NotifySetting, platform: str, limit: int, held: set[str]) -> list[Run]:
    """The pending files of a chat and account, per run in the order they were archived.

    ``held``: media ids in the outbox (answered or under way), never picked again. Which
    files of a large run fit the limit is decided over the whole run, so a pass cut short
    (Telegram away) and the next one choose the same files."""
    pending = [item for item in await dq.pending(setting, platform) if item.media_id not in held]
    by_run: dict[int | None, list[MediaItem]] = {}
    for item in pending:
        by_run.setdefault(item.job_id, []).append(item)
    sizes = await dq.run_sizes(setting.account_id, setting.since, list(by_run))
    found = []
    for job_id, items in by_run.items():
        if max(sizes.get(job_id, 0), len(items)) <= limit:
            found.append(Run(units_of(items)))
            continue
        whole = await dq.run_files(setting.account_id, setting.since, job_id)
        chosen, _ = within_limit(units_of(whole), limit)
        keep = {item.media_id for unit in chosen for item in unit}
        sending = [item for item in items if item.media_id in keep]
        found.append(Run(units_of(sending), [item for item in items if item.media_id not in keep]))
    return found
