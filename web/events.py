"""Live progress for the download manager: the service's events, pushed as server-sent events."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp_jinja2
from aiohttp import web

from db import gallery
from db.models import Job
from downloader.events import ItemDone, ItemProgress, JobFinished, JobStarted, PhaseStarted, Waiting
from downloader.words import started_text, summary_line
from web.jobview import Progress, job_row
from web.keys import LIVE, SESSION

log = logging.getLogger(__name__)
KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing the stream
GATHER = 0.3  # seconds of events folded into one update per job


class LiveJobs:
    """Follows the service's events: progress per job, and a queue per open page."""

    def __init__(self, service):
        self.progress: dict[int, Progress] = {}
        self._pages: set[asyncio.Queue] = set()
        self._unsubscribe = service.subscribe(self.on_event)

    def on_event(self, event) -> None:
        """Remember progress and tell every open page which job changed (and what to toast)."""
        job_id = getattr(event, "job_id", None)
        if job_id is None:
            return
        toast = None
        progress = self.progress.setdefault(job_id, Progress())
        if isinstance(event, JobStarted):
            toast = started_text(event.platform, event.phases)
        elif isinstance(event, PhaseStarted):
            progress.phase, progress.done, progress.total, progress.waiting = (
                event.phase,
                0,
                event.total,
                None,
            )
        elif isinstance(event, ItemDone):
            progress.phase, progress.done, progress.total, progress.waiting = (
                event.phase,
                event.done,
                event.total,
                None,
            )
        elif isinstance(event, Waiting):
            progress.waiting = f"until {event.until:%H:%M:%S} UTC ({event.reason})"
        elif isinstance(event, JobFinished):
            self.progress.pop(job_id, None)
            toast = summary_line(event.result)
        elif isinstance(event, ItemProgress):
            return  # bytes of one file: too fine for a page, the next ItemDone counts it
        for queue in list(self._pages):
            queue.put_nowait((job_id, toast))

    def listen(self) -> asyncio.Queue:
        """A queue of (job id, toast or None) for one open page; ``None`` ends it."""
        queue: asyncio.Queue = asyncio.Queue()
        self._pages.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue) -> None:
        """The page was closed."""
        self._pages.discard(queue)

    def close(self) -> None:
        """Stop following events and end every open stream (the bot is stopping)."""
        self._unsubscribe()
        for queue in list(self._pages):
            queue.put_nowait(None)


async def _gather(queue: asyncio.Queue) -> tuple[dict[int, list[str]], bool]:
    """Wait for changes, then fold those of the next moments: {job id: toasts}, and whether to end."""
    first = await asyncio.wait_for(queue.get(), KEEPALIVE)
    if first is None:
        return {}, True
    await asyncio.sleep(GATHER)  # one update per job for a burst of events, not one per file
    changed: dict[int, list[str]] = {}
    items = [first]
    while not queue.empty():
        items.append(queue.get_nowait())
    for item in items:
        if item is None:
            return changed, True
        job_id, toast = item
        changed.setdefault(job_id, [])
        if toast:
            changed[job_id].append(toast)
    return changed, False


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /events: rendered job rows and toasts, as they change, while the page is open."""
    live: LiveJobs = request.app[LIVE]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = live.listen()
    try:
        await response.write(b"retry: 3000\n\n")
        # What changed between rendering the page and this stream (a Pause that landed in between).
        for job_id in await gallery.jobs_to_refresh():
            await _send_job(request, response, live, job_id, [])
        while True:
            try:
                changed, end = await _gather(queue)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            for job_id, toasts in changed.items():
                await _send_job(request, response, live, job_id, toasts)
            if end:
                break
    except ConnectionResetError:
        pass  # the page was closed
    finally:
        live.leave(queue)
    return response


async def _send_job(request, response, live: LiveJobs, job_id: int, toasts: list[str]) -> None:
    job = await Job.get_or_none(id=job_id).prefetch_related("account")
    if job is None:
        return
    row = job_row(job, live.progress.get(job_id))
    html = aiohttp_jinja2.render_string("_job.html", request, {"job": row, "csrf": request[SESSION].csrf})
    data = {"id": job_id, "html": html, "parent": job.parent_id, "active": job.state in ("queued", "running")}
    await response.write(f"event: job\ndata: {json.dumps(data)}\n\n".encode())
    if job.parent_id is None:  # a sync-all's accounts would toast one by one
        for text in toasts:
            await response.write(f"event: toast\ndata: {json.dumps({'text': text})}\n\n".encode())


def add_routes(app: web.Application) -> None:
    """The event stream."""
    app.router.add_get("/events", stream)
