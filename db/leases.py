"""Live processes and account leases: one writer per account across processes."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.expressions import Q

from db.models import Account, Process
from db.queries import now


async def register(token: str, kind: str, host: str, pid: int) -> None:
    """Announce a process (bot or command line)."""
    await Process.update_or_create(
        token=token, defaults={"kind": kind, "host": host, "pid": pid, "seen_at": now()}
    )


async def heartbeat(token: str, lease: timedelta, running: set[int]) -> None:
    """Say this process is alive and extend the leases of the accounts it is downloading now.

    A lease whose release failed (the database was away) is not renewed: it expires."""
    moment = now()
    await Process.filter(token=token).update(seen_at=moment)
    if running:
        await Account.filter(lease_owner=token, id__in=sorted(running)).update(lease_until=moment + lease)


async def same_process(host: str, pid: int, token: str) -> list[str]:
    """Tokens registered earlier by a process with this host and pid (so: gone)."""
    return await Process.filter(host=host, pid=pid).exclude(token=token).values_list("token", flat=True)


async def tokens_of_kind(kind: str) -> list[str]:
    """Tokens of every registered process of one kind (bot, cli, worker)."""
    return await Process.filter(kind=kind).values_list("token", flat=True)


async def unregister(token: str) -> None:
    """A clean exit: give every lease back and leave the registry."""
    await Account.filter(lease_owner=token).update(lease_owner=None, lease_until=None)
    await Process.filter(token=token).delete()


async def process(token: str | None) -> Process | None:
    """The registered process with this token."""
    return await Process.get_or_none(token=token) if token else None


async def processes_seen_since(moment: datetime) -> list[Process]:
    """Processes whose heartbeat is newer than ``moment``."""
    return await Process.filter(seen_at__gte=moment).order_by("started_at")


async def take(account: Account, token: str, lease: timedelta) -> bool:
    """Take the account's lease if it is free, expired or already ours (atomic)."""
    moment = now()
    free = Q(lease_owner__isnull=True) | Q(lease_owner=token) | Q(lease_until__lt=moment)
    taken = await Account.filter(Q(id=account.id) & free).update(
        lease_owner=token, lease_until=moment + lease
    )
    return taken == 1


async def steal(account: Account, dead_owner: str, token: str, lease: timedelta) -> bool:
    """Take a lease from a process known to be dead (atomic: only if it still holds it)."""
    taken = await Account.filter(id=account.id, lease_owner=dead_owner).update(
        lease_owner=token, lease_until=now() + lease
    )
    return taken == 1


async def give_back(account: Account, token: str) -> None:
    """Release the account's lease if this process holds it."""
    await Account.filter(id=account.id, lease_owner=token).update(lease_owner=None, lease_until=None)


async def holder_of(account: Account) -> str | None:
    """The token holding the account's lease now, if any."""
    row = await Account.filter(id=account.id).values_list("lease_owner", "lease_until")
    if not row:
        return None
    owner, until = row[0]
    return owner if owner and until and until > now() else None


async def last_owner(account: Account) -> str | None:
    """The token in the account's lease, expired or not (a process that died keeps it there)."""
    rows = await Account.filter(id=account.id).values_list("lease_owner", flat=True)
    return rows[0] if rows else None


async def leased_accounts(exclude: str) -> list[tuple[str, str, str]]:
    """(platform, username, owner) of accounts leased by other processes right now."""
    rows = await Account.filter(lease_owner__isnull=False, lease_until__gt=now()).values_list(
        "platform", "username", "lease_owner"
    )
    return [row for row in rows if row[2] != exclude]
