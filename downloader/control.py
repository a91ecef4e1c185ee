"""Pause / cancel / stop requests of one job, and waits they interrupt (in threads and on the loop)."""

from __future__ import annotations

import asyncio
import threading
import time

from downloader.errors import StopRequested

POLL = 0.25  # seconds: how quickly a wait on the loop notices a request


class JobControl:
    """What a job was asked to do, checked between items and during every wait."""

    def __init__(self) -> None:
        self.request: str | None = None  # None | "paused" | "cancelled" | "interrupted"
        self.reason: str | None = None  # a sentence when the service itself stopped the job
        self._stop = threading.Event()

    def ask(self, state: str, reason: str | None = None) -> None:
        """Ask the job to stop at the next item boundary, ending in ``state``."""
        if self.request != "cancelled":
            self.request = state
            self.reason = reason or self.reason
        self._stop.set()

    def sleep(self, seconds: float) -> None:
        """Wait in a worker thread; raise StopRequested as soon as the job is asked to stop."""
        if self._stop.wait(max(0.0, seconds)):
            raise StopRequested()

    async def wait(self, seconds: float) -> bool:
        """Wait on the event loop; True (early) when the job was asked to stop meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.request:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(POLL, left))
        return True
