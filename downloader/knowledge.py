"""What the archive knows about an account, handed to sources so they can skip requests,
and kept true to the disk (files deleted by hand come back)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from db import archive_state, queries
from db.models import Account, Job
from downloader.errors import DownloadError, StopRequested
from downloader.sources.base import Account as SourceAccount
from downloader.sources.base import Known, Source

log = logging.getLogger(__name__)
KIND_PHASES = {
    "post": "posts",
    "reel": "posts",
    "story": "stories",
    "highlight": "highlights",
    "video": "videos",
    "photo": "videos",  # a TikTok photo post's slides
    "audio": "videos",  # ...and its sound
}


async def known_about(account: Account) -> Known:
    """Stamps of the last clean runs (the newest story of a clean stories run among them) and
    the fully archived posts."""
    stamps = dict(account.stamps or {})
    groups = await archive_state.archived_groups(account) if account.platform == "instagram" else set()
    return Known(stamps=stamps, archived_groups=groups)


def stored_account(account: Account) -> SourceAccount:
    """The account as the source would describe it, from what the database stored."""
    return SourceAccount(account.platform, account.username, account.platform_user_id, account.display_name)


async def prefetch_reels(sources: dict[str, Source], jobs: list[Job]) -> None:
    """Stories and highlights of many accounts in batched requests, before their jobs run."""
    for platform, source in sources.items():
        mine = [job for job in jobs if job.account.platform == platform and job.account.platform_user_id]
        for phase in ("stories", "highlights"):
            wanted = [job.account for job in mine if phase in job.phases]
            if len(wanted) < 2:
                continue
            accounts = [stored_account(a) for a in wanted]
            known = {a.username: await known_about(a) for a in wanted}
            try:
                await asyncio.to_thread(source.prefetch, phase, accounts, known)
            except (DownloadError, StopRequested) as exc:  # each job then asks for itself
                log.info("prefetch of %s %s failed: %s", platform, phase, exc)


async def forget_missing_files(data_dir: Path, account: Account) -> None:
    """Rows whose file was deleted from disk are dropped so the file comes back.

    Only single files: a missing archive folder never gets this far (guard.py).
    """
    rows = await queries.account_media_rows(account)
    missing = await asyncio.to_thread(
        lambda: [(mid, kind) for mid, path, kind in rows if not (data_dir / path).is_file()]
    )
    if missing:
        await queries.forget_media(account.platform, [mid for mid, _ in missing])
        await archive_state.forget_progress(account, {KIND_PHASES.get(kind, "") for _, kind in missing})
        log.info("@%s: %d archived files missing on disk", account.username, len(missing))
