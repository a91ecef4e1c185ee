"""At start-up: jobs that were running when the process died become `interrupted`."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime

from telegram.error import TelegramError
from telegram.ext import Application

from config import Settings
from db import queries
from downloader import leftovers
from handlers.context import BotData

log = logging.getLogger(__name__)


async def recover_jobs(app: Application, settings: Settings) -> None:
    """Mark dead jobs interrupted, remove temp files, tell each chat (or resume them)."""
    registry = app.bot_data.service.registry
    busy = await registry.busy_folders() if registry is not None else set()
    # Partial files of downloads that may continue (paused, or cut by a crash) are kept.
    unfinished = await queries.unfinished_folders()
    removed = await asyncio.to_thread(leftovers.clear_all, settings.data_dir, busy, unfinished)
    if removed:
        log.info("removed %d leftover temporary file(s)", removed)
    live = await registry.live_tokens() if registry is not None else set()
    jobs = await _newly_interrupted(live)
    if not jobs:
        return
    data: BotData = app.bot_data
    if settings.auto_resume:
        for job in jobs:
            if job.chat_id is not None:
                await _attach(data, job)
            await data.jobs.resume(job)
        log.info("resumed %d interrupted job(s) automatically", len(jobs))
        return
    per_chat = Counter(job.chat_id for job in jobs if job.chat_id is not None)
    for chat_id, count in per_chat.items():
        noun = "download was" if count == 1 else "downloads were"
        try:
            await app.bot.send_message(chat_id, f"{count} {noun} interrupted by a restart — /resume")
        except TelegramError as exc:  # a blocked bot or a wrong chat must not stop start-up
            log.warning("could not tell chat %s about interrupted jobs: %s", chat_id, exc)
    log.info("%d interrupted job(s) wait for /resume", len(jobs))


async def _newly_interrupted(live: set[str]) -> list:
    """Top-level jobs stopped since the previous start: by a crash (still "running" in the
    database) or by a shutdown that saved them as interrupted. Older ones were announced."""
    previous = await queries.get_setting("started_at")
    await queries.mark_interrupted(live)
    await queries.set_setting("started_at", queries.now().isoformat())
    since = datetime.fromisoformat(previous) if previous else None
    return [
        job
        for job in await queries.resumable_jobs()
        if job.state == "interrupted" and (since is None or job.updated_at >= since)
    ]


async def _attach(data: BotData, job) -> None:
    if job.kind == "syncall":
        await data.board.attach_sync(job, job.chat_id)
    else:
        await data.board.attach_job(job, job.chat_id)
