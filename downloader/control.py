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
        self._stopped: asyncio.Future | None = None  # completes on a request (see stopped)

    def ask(self, state: str, reason: str | None = None) -> None:
        """Ask the job to stop now (transfers in flight end too), ending in ``state``."""
        if self.request != "cancelled":
            self.request = state
            self.reason = reason or self.reason
        self._stop.set()
        future = self._stopped
        if future is not None and not future.get_loop().is_closed():
            # Thread-safe: a request may come from a thread (a control message, a signal).
            future.get_loop().call_soon_threadsafe(_complete, future)

    def stopped(self) -> asyncio.Future:
        """A future (on the running loop) that completes once the job is asked to stop.

        Transfers race it, so a Pause or Cancel ends them at once instead of at the next
        item boundary. Shared by all of the job's transfers: never cancel it."""
        loop = asyncio.get_running_loop()
        if self._stopped is None or self._stopped.get_loop() is not loop:
            self._stopped = loop.create_future()
            if self.request:
                self._stopped.set_result(None)
        return self._stopped

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


def _complete(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
