"""With QUEUE_URL: the workers in /status, and status messages picked up again after a restart."""

from __future__ import annotations

from html import escape

from telegram.ext import Application

from db import cluster, queries
from db.models import Job
from downloader.budget import ANONYMOUS, session_label, usage_of_sessions, usage_text
from downloader.queue.remote import ENDED, LEFT
from handlers.context import BotData


async def worker_lines(registry) -> list[str]:
    """One line per live worker: its name, platforms, Instagram session, what it does, and the
    session's Instagram requests."""
    live = [p for p in await cluster.workers() if await registry.alive(p)]
    sessions = [_session(p.detail or {}) for p in live]
    usage = await usage_of_sessions(s for s in sessions if s is not None)
    lines = []
    for process, session in zip(live, sessions, strict=True):
        detail = process.detail or {}
        name = detail.get("name") or f"{process.host}-{process.pid}"
        takes = "+".join(detail.get("platforms") or [])
        login = f", {session_label(session)}" if session is not None else ""
        doing = detail.get("doing") or []
        now = f"downloading {', '.join(doing)}" if doing else "idle"
        if session is not None:  # the session's figure, of every process that uses it
            now += "; " + usage_text(None, *usage[session], detail.get("budget") or 0)
        lines.append(f"• {escape(name)} ({escape(takes)}{escape(login)}): {escape(now)}")
    if not lines:
        return ["<b>Workers</b>", "No worker is running: downloads wait in the queue (python bot.py worker)."]
    return ["<b>Workers</b>", *lines]


def _session(detail: dict) -> str | None:
    """The Instagram session a worker uses ("" without a login); None if it takes no Instagram jobs."""
    return (detail.get("session") or ANONYMOUS) if "instagram" in (detail.get("platforms") or []) else None


async def reattach(app: Application) -> int:
    """Follow the jobs workers run (or that wait in the queue) again after a bot restart."""
    data: BotData = app.bot_data
    jobs = Job.filter(state__in=("queued", "running"), parent=None).order_by("id")
    jobs = await jobs.prefetch_related("account")
    for job in jobs:
        if job.chat_id is not None and job.kind == "syncall":
            await data.board.attach_sync(job, job.chat_id)
        elif job.chat_id is not None:
            await data.board.attach_job(job, job.chat_id)
        data.jobs.start(job)
    await _show_ended_meanwhile(data)
    return len(jobs)


async def _show_ended_meanwhile(data: BotData) -> None:
    """Jobs the previous bot left to workers and that ended before this start: their final status."""
    left = await queries.get_setting(LEFT, [])
    if not left:
        return
    for start in range(0, len(left), queries.BATCH):  # a sync-all leaves one id per account
        chunk = left[start : start + queries.BATCH]
        ended = await Job.filter(id__in=chunk, state__in=ENDED, parent=None).prefetch_related("account")
        for job in ended:
            await data.board.show_final(job)
    await queries.set_setting(LEFT, [])
