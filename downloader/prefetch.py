"""A sync-all's batched stories and highlights, asked for chunk by chunk just before use.

Prefetched answers are trusted for 15 minutes (stories change by the minute). A long
sync-all that asked for every account at its start threw most of them away and asked
again account by account; here each chunk of CHUNK accounts is asked for when the first
of them gets its turn, and again from any account whose answers went stale meanwhile
(an earlier account in the chunk took long).
"""

from __future__ import annotations

import asyncio
import logging

from db.models import Job
from downloader.knowledge import prefetch_reels, stored_account
from downloader.sources.base import Source

log = logging.getLogger(__name__)
CHUNK = 50  # accounts per prefetch: one Instagram stories request names up to 50 accounts
PHASES = ("stories", "highlights")


class PrefetchPlan:
    """The accounts of one sync-all that can be prefetched, in the order their jobs run."""

    def __init__(self, sources: dict[str, Source], jobs: list[Job], chunk: int = CHUNK):
        self._sources = sources
        self._chunk = chunk
        self._order = [job for job in jobs if _eligible(job)]
        self._asked: set[int] = set()  # jobs a prefetch asked for
        self._started: set[int] = set()  # jobs that have had their turn
        self._lock = asyncio.Lock()

    async def ready(self, job: Job) -> None:
        """Just before ``job`` runs: prefetch its chunk unless fresh answers already wait."""
        if not any(job.id == other.id for other in self._order):
            return
        async with self._lock:
            self._started.add(job.id)
            if self._fresh(job):
                return
            chunk = self._chunk_from(job)
            self._asked.update(other.id for other in chunk)
            try:
                await prefetch_reels(self._sources, chunk)
            except Exception:  # each job then asks for itself
                log.warning("prefetch failed; each account asks for itself", exc_info=True)

    def _fresh(self, job: Job) -> bool:
        """Whether a prefetch asked for this job's account and its answers are still fresh."""
        source = self._sources[job.account.platform]
        return job.id in self._asked and source.prefetched(stored_account(job.account))

    def _chunk_from(self, job: Job) -> list[Job]:
        """``job`` and the next accounts still waiting for their turn without fresh answers
        (jobs take their turns in no fixed order: the ones listed before it come last)."""
        start = next(index for index, other in enumerate(self._order) if other.id == job.id)
        after, before = self._order[start + 1 :], self._order[:start]
        waiting = [o for o in after + before if o.id not in self._started and not self._fresh(o)]
        return [job, *waiting[: self._chunk - 1]]


def _eligible(job: Job) -> bool:
    """Jobs with a phase that is fetched in batches, of an account whose id is known."""
    account = job.account
    return account is not None and bool(account.platform_user_id) and any(p in job.phases for p in PHASES)
