"""One writer per account, across the bot, the command line and a restart.

Each process registers itself with a heartbeat; a job holds its account's lease in
the database until it ends. A lease whose holder stopped beating (or, on this host,
whose process is gone) is free again, so a crash never blocks an account for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from db import leases, queries
from db.models import Account, Process
from db.patience import connection_lost
from db.queries import now

log = logging.getLogger(__name__)
BEAT = 20.0  # seconds between heartbeats
LEASE = timedelta(seconds=90)  # a lease lasts this long without a heartbeat
STALE = timedelta(seconds=75)  # a process silent this long is taken for dead
KIND_NAMES = {"bot": "the bot", "cli": "the command line", "worker": "a worker"}
REAP_EVERY = 5  # beats between looks for jobs of dead processes
TakeoverHook = Callable[[Account], Awaitable[None]]


@dataclass(frozen=True)
class Holder:
    """Who holds an account: for the sentence the user reads."""

    kind: str
    pid: int
    host: str

    def describe(self) -> str:
        """ "the command line (pid 123 on nas)"."""
        return f"{KIND_NAMES.get(self.kind, self.kind)} (pid {self.pid} on {self.host})"


class ProcessRegistry:
    """This process's identity, heartbeat and account leases."""

    def __init__(self, kind: str, beat: float = BEAT):
        self.kind = kind
        self.beat = beat  # seconds between heartbeats
        self.token = secrets.token_hex(8)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._task: asyncio.Task | None = None
        self._beats = 0
        self._held: set[int] = set()  # accounts whose jobs run here now: only their leases are renewed

    async def start(self, on_day=None) -> None:
        """Register and start the heartbeat (``on_day``: an extra chore run once a day).

        Every few beats, jobs left queued or running by a process that died (a command-line
        download killed with kill -9) are marked interrupted, so /status and /resume see them."""
        for earlier in await leases.same_process(self.host, self.pid, self.token):
            # This host and pid were a process that is gone (a container restarts as pid 1).
            await leases.unregister(earlier)
        await leases.register(self.token, self.kind, self.host, self.pid)
        self._task = asyncio.create_task(self._beat(on_day), name="heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat and give every lease back."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):  # the database may already be gone
            await leases.unregister(self.token)

    async def _beat(self, on_day) -> None:
        per_day = int(86_400 / self.beat)
        while True:
            await asyncio.sleep(self.beat)
            try:
                await leases.heartbeat(self.token, LEASE, self._held)
                self._beats += 1
                if self._beats % REAP_EVERY == 0:
                    # Jobs of a dead worker are the queue's to deliver again, not ours to stop.
                    spared = await self.live_tokens() | set(await leases.tokens_of_kind("worker"))
                    await queries.mark_interrupted(spared)
                if on_day is not None and self._beats % per_day == 0:
                    await on_day()
            except Exception as exc:  # a busy or lost database must not end the heartbeat for good
                if not connection_lost(exc):  # a lost one is logged once for the whole outage
                    log.warning("heartbeat failed", exc_info=True)

    async def acquire(self, account: Account, on_takeover: TakeoverHook | None = None) -> Holder | None:
        """Take the account's lease; None when taken, else who holds it.

        ``on_takeover`` is awaited, holding the lease, when its previous holder died holding it
        (killed, crashed, its machine gone): what that process left half done is ours to clear."""
        previous = await leases.last_owner(account)  # an expired lease keeps its dead owner's token
        if await leases.take(account, self.token, LEASE):
            self._held.add(account.id)
            if previous not in (None, self.token) and not await self.alive(await leases.process(previous)):
                await self._took_over(account, on_takeover)
            return None
        owner = await leases.holder_of(account)
        if owner is None:  # released between the two queries
            if await leases.take(account, self.token, LEASE):
                self._held.add(account.id)
                return None
            return await self._holder(account)
        holder = await leases.process(owner)
        if not await self.alive(holder) and await leases.steal(account, owner, self.token, LEASE):
            self._held.add(account.id)
            await self._took_over(account, on_takeover)
            return None
        return _describe(holder)

    async def _took_over(self, account: Account, on_takeover: TakeoverHook | None) -> None:
        log.info("took over @%s from a process that is gone", account.username)
        if on_takeover is not None:
            await on_takeover(account)

    async def _holder(self, account: Account) -> Holder | None:
        return _describe(await leases.process(await leases.holder_of(account)))

    async def release(self, account: Account) -> None:
        """Give the account's lease back (if that fails, it is no longer renewed and expires)."""
        self._held.discard(account.id)
        await leases.give_back(account, self.token)

    async def holder(self, account: Account) -> Holder | None:
        """Another live process holding the account, if any."""
        owner = await leases.holder_of(account)
        if owner is None or owner == self.token:
            return None
        process = await leases.process(owner)
        return _describe(process) if await self.alive(process) else None

    async def alive(self, process: Process | None) -> bool:
        """Whether a registered process still runs (its heartbeat; on this host, its pid)."""
        if process is None:
            return False
        if process.token == self.token:
            return True
        if process.host == self.host:
            return _pid_alive(process.pid)
        return process.seen_at > now() - STALE

    async def live_tokens(self) -> set[str]:
        """Tokens of every process that is alive now (this one included)."""
        candidates = await leases.processes_seen_since(now() - timedelta(days=3650))
        return {p.token for p in candidates if await self.alive(p)}

    async def busy_folders(self) -> set[tuple[str, str]]:
        """(platform, username) of accounts other live processes are downloading."""
        live = await self.live_tokens()
        rows = await leases.leased_accounts(exclude=self.token)
        return {(platform, username) for platform, username, owner in rows if owner in live}


def _describe(process: Process | None) -> Holder | None:
    if process is None:
        return Holder("another process", 0, "?")
    return Holder(process.kind, process.pid, process.host)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
