"""Workers on a task queue: their /status details, claimed jobs and shared Instagram sessions."""

from __future__ import annotations

from datetime import timedelta

from tortoise.expressions import Q

from db.models import InstagramSession, Job, Process
from db.queries import now


async def set_detail(token: str, detail: dict) -> None:
    """What a worker shows in /status (name, platforms, session, current job)."""
    await Process.filter(token=token).update(detail=detail)


async def workers() -> list[Process]:
    """Registered worker processes, oldest first (alive or not: the caller checks)."""
    return await Process.filter(kind="worker").order_by("started_at")


async def claim_job(job_id: int, token: str) -> bool:
    """Take a queued (or resumable) job for this worker; False when someone else has it."""
    taken = await Job.filter(id=job_id, state__in=("queued", "interrupted")).update(
        state="running", owner=token
    )
    return taken == 1


async def take_over_job(job_id: int, dead_owner: str | None, token: str) -> bool:
    """Take a running job from a worker known to be dead (atomic: only if it still has it)."""
    owner = Q(owner=dead_owner) if dead_owner else Q(owner__isnull=True)
    taken = await Job.filter(Q(id=job_id) & Q(state="running") & owner).update(owner=token)
    return taken == 1


async def take_session(name: str, token: str, lease: timedelta) -> str | None:
    """Hold an Instagram session for one job; None when taken, else the token holding it."""
    await InstagramSession.get_or_create(name=name)
    moment = now()
    free = Q(owner__isnull=True) | Q(owner=token) | Q(until__lt=moment)
    if await InstagramSession.filter(Q(name=name) & free).update(owner=token, until=moment + lease):
        return None
    row = await InstagramSession.get_or_none(name=name)
    return row.owner if row is not None and row.owner else None


async def steal_session(name: str, dead_owner: str, token: str, lease: timedelta) -> bool:
    """Take a session from a process known to be dead (atomic)."""
    taken = await InstagramSession.filter(name=name, owner=dead_owner).update(
        owner=token, until=now() + lease
    )
    return taken == 1


async def extend_session(name: str, token: str, lease: timedelta) -> None:
    """Keep holding a session while its job runs."""
    await InstagramSession.filter(name=name, owner=token).update(until=now() + lease)


async def give_back_session(name: str, token: str) -> None:
    """The job ended: the next worker with this session may start one."""
    await InstagramSession.filter(name=name, owner=token).update(owner=None, until=None)


async def session_checkpoint(name: str) -> str | None:
    """The checkpoint sentence latched for this session, if any."""
    row = await InstagramSession.get_or_none(name=name)
    return row.checkpoint if row is not None else None


async def latch_checkpoint(name: str, sentence: str | None) -> None:
    """Latch (or, with None, clear) a session's checkpoint for every worker."""
    await InstagramSession.get_or_create(name=name)
    await InstagramSession.filter(name=name).update(checkpoint=sentence)
