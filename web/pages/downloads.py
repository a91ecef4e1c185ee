"""The download manager: running, queued, paused and recent jobs; Pause / Resume / Cancel."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from db.models import Job
from web.jobview import ACTIONS, ACTIVE, job_row
from web.keys import CONFIG, DESK, LIVE
from web.pages.common import go, say_next, take_flash

RECENT = 20


@aiohttp_jinja2.template("downloads.html")
async def downloads_page(request: web.Request) -> dict:
    """GET /downloads: every unfinished job, then the most recent finished ones."""
    live = request.app[LIVE]
    active = await Job.filter(state__in=ACTIVE).order_by("-id").prefetch_related("account")
    recent = (
        await Job.filter(state__not_in=ACTIVE, parent_id=None)
        .order_by("-id")
        .limit(RECENT)
        .prefetch_related("account")
    )
    return {
        "active": [job_row(job, live.progress.get(job.id)) for job in active],
        "recent": [job_row(job, None) for job in recent],
        "toast": take_flash(request),
        "title": "Downloads",
    }


async def act(request: web.Request) -> web.StreamResponse:
    """POST /jobs/<id>/<pause|resume|cancel>: the same calls as the chat's buttons."""
    job = await Job.get_or_none(id=int(request.match_info["id"]))
    action = request.match_info["action"]
    if job is None or action not in ACTIONS.get(job.state, ()):
        state = job.state if job is not None else "gone"
        say_next(request, f"That download cannot {action} now ({state}).")
        raise go("/downloads")
    desk = request.app[DESK]
    if action == "pause":
        sentence = await desk.pause(job)
    elif action == "cancel":
        sentence = await desk.cancel(job)
    else:
        sentence = await desk.resume(job, job.chat_id or request.app[CONFIG].chat_id)
    say_next(request, sentence)
    raise go("/downloads")


def add_routes(app: web.Application) -> None:
    """The download manager and its buttons."""
    app.router.add_get("/downloads", downloads_page)
    app.router.add_post(r"/jobs/{id:\d{1,12}}/{action:(pause|resume|cancel)}", act)
