"""One Instagram session, one job at a time across every worker that uses it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from db import cluster
from db import leases as lease_rows
from downloader.control import JobControl
from downloader.leases import BEAT, LEASE, ProcessRegistry

log = logging.getLogger(__name__)
POLL = 1.0  # seconds between looks at a session another worker holds


class SessionSlot:
    """Holds the worker's Instagram session in the database while one of its jobs runs."""

    def __init__(self, name: str, registry: ProcessRegistry):
        self.name = name
        self.registry = registry
        self._keeper: asyncio.Task | None = None

    async def acquire(self, control: JobControl) -> bool:
        """Wait until no other live worker runs a job with this session; False if the job was
        asked to stop meanwhile."""
        said = False
        while not control.request:
            owner = await cluster.take_session(self.name, self.registry.token, LEASE)
            if owner is None:
                self._keeper = asyncio.create_task(self._keep(), name="session-lease")
                return True
            holder = await lease_rows.process(owner)
            if not await self.registry.alive(holder) and await cluster.steal_session(
                self.name, owner, self.registry.token, LEASE
            ):
                log.info("took the Instagram session %s over from a worker that is gone", self.name)
                self._keeper = asyncio.create_task(self._keep(), name="session-lease")
                return True
            if not said:
                log.info("Instagram session %s is busy on another worker; waiting", self.name)
                said = True
            await control.wait(POLL)
        return False

    async def release(self) -> None:
        """The job ended: another worker may use the session."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        await cluster.give_back_session(self.name, self.registry.token)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(BEAT)
            with contextlib.suppress(Exception):  # a busy database: the next beat tries again
                await cluster.extend_session(self.name, self.registry.token, LEASE)
