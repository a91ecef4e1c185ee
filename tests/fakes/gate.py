"""A CDN that stalls on cue, so a test acts while a download is surely in the middle of a file.

Slowing the fake CDN down (``media_delay``) only makes it *likely* that a download is still
running when the test acts; on a loaded machine the download wins the race now and then.
A gate makes it certain: after ``hold_after(n)`` the next ``n`` files are served whole, every
further file stops half-way (its temporary file is on disk) until ``open()``. Tests wait for
``wait_held()`` instead of guessing how long a download takes.

The fakes serve from their own event loop thread; tests call from theirs: the state is guarded
by a lock and the waiting handlers are woken with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading


class Gate:
    """Lets files through, or holds them half-sent until opened (open at the start)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._passing: int | None = None  # files still served whole; None: open
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self.held = 0  # files stopped half-way right now

    def hold_after(self, passing: int = 0) -> None:
        """Serve the next ``passing`` files whole, then hold every further file half-way."""
        with self._changed:
            self._passing = passing

    def open(self) -> None:
        """Let every held file finish, and every later one through."""
        with self._changed:
            self._passing = None
            waiting, self._waiting = self._waiting, []
        for loop, future in waiting:
            loop.call_soon_threadsafe(_settle, future)

    def wait_held(self, count: int = 1, timeout: float = 60) -> None:
        """Block until ``count`` files are held (call it through ``asyncio.to_thread``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.held >= count, timeout):
                raise AssertionError(f"{self.held} of {count} downloads reached the held CDN in {timeout} s")

    async def until_held(self, count: int = 1, timeout: float = 60) -> None:
        """``wait_held`` for async tests."""
        await asyncio.to_thread(self.wait_held, count, timeout)

    def admit(self) -> bool:
        """At the start of a file: False when this file is to be held half-way."""
        with self._changed:
            if self._passing is None:
                return True
            if self._passing > 0:
                self._passing -= 1
                return True
            return False

    async def hold(self) -> None:
        """Half-way through a file that was not admitted: wait for ``open()`` (at once if open)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._changed:
            if self._passing is None:
                return
            self._waiting.append((loop, future))
            self.held += 1
            self._changed.notify_all()
        try:
            await future
        finally:
            with self._changed:
                self.held -= 1


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
