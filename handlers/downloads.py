"""Download commands and job buttons: /download, /syncall, /status, /pause, /resume, /cancel."""

from __future__ import annotations

import logging
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from db import queries
from db.models import Job
from downloader.errors import DownloadError, InvalidInput
from handlers.arguments import parse_args, parse_request
from handlers.context import Context
from handlers.status_view import limited, plural
from handlers.workers import worker_lines
from version import VERSION

log = logging.getLogger(__name__)
ACTIONS = ("pause", "resume", "cancel", "retry", "resumeall")
SYNC_PHASES = ("posts", "stories", "highlights", "videos")
SYNCALL_USAGE = "Usage: /syncall [posts|stories|highlights|videos]: every tracked account, or one kind"


async def reply(update: Update, text: str, **kwargs) -> None:
    """Answer in the chat of the update (plain text unless parse_mode is given)."""
    await update.effective_message.reply_text(text, **kwargs)


async def download(update: Update, context: Context) -> None:
    """/download <user> [platform] [phase]: one reply, then one self-updating status message."""
    try:
        request = parse_request(context.args, "download", many=False)
    except InvalidInput as exc:
        await reply(update, exc.sentence)
        return
    target, phases = request.target, request.phases
    account = await queries.find_account(target.platform, target.username)
    one_off = account is None or not account.tracked
    if account is None:
        account = await queries.get_or_create_account(
            target.platform, target.username, added_by=update.effective_user.id
        )
    note = ""
    if account.username != target.username:  # found by the name it had before a rename
        await reply(update, f"{target.label} is now @{account.username}: downloading @{account.username}.")
    if one_off:
        note = f"\n{target.label} is not tracked: this is a one-time download (/add to track it)."
    answer = await context.bot_data.desk.download(
        account,
        phases=phases,
        chat_id=update.effective_chat.id,
        say=lambda text: reply(update, text),
        note=note,
    )
    if answer.outcome == "running":
        await _point_at_running(update, context, answer.job, target.label)
    elif answer.outcome == "refused":
        await reply(update, answer.sentence)


async def _point_at_running(update: Update, context: Context, job: Job, label: str) -> None:
    """Reply to the running job's status message instead of starting twice."""
    where = context.bot_data.board.message_of(job.id)
    reply_to = where[1] if where and where[0] == update.effective_chat.id else None
    await context.bot.send_message(
        update.effective_chat.id,
        f"{label} is already downloading — see its status message.",
        reply_to_message_id=reply_to,
    )


async def syncall(update: Update, context: Context) -> None:
    """/syncall [posts|stories|highlights]: every tracked account, one status message for the run."""
    words = [word.lower() for word in context.args or []]
    if len(words) > 1 or (words and words[0] not in SYNC_PHASES):
        await reply(update, SYNCALL_USAGE)
        return
    data = context.bot_data
    try:
        job, created = await data.jobs.prepare_syncall(chat_id=update.effective_chat.id, phases=words or None)
    except DownloadError as exc:  # the archive folder is missing
        await reply(update, exc.sentence)
        return
    if not created:
        await _point_at_running(update, context, job, "A sync of all accounts")
        return
    total = await Job.filter(parent=job).count()
    if total == 0:
        job.state = "completed"
        await job.save(update_fields=["state", "updated_at"])
        skipped = (job.counts or {}).get("skipped", [])
        text = (
            "Nothing to sync: " + "; ".join(skipped)
            if skipped
            else "No tracked accounts yet: add one with /add <user>."
        )
        await reply(update, text)
        return
    title = f"Sync all {words[0]}" if words else "Sync all"
    try:
        await data.board.attach_sync(job, update.effective_chat.id, title=title)
    finally:
        data.jobs.start(job)


async def status(update: Update, context: Context) -> None:
    """/status: running, queued and paused jobs, and the next scheduled sync."""
    jobs = (
        await Job.filter(state__in=("queued", "running", "paused", "interrupted"), parent=None)
        .order_by("id")
        .prefetch_related("account")
    )
    lines = [
        f"• {escape(_job_label(job))}: {job.state}" + (f" ({job.phase})" if job.phase else "") for job in jobs
    ]
    lines = ["<b>Status</b>", *(limited(lines, 30) if lines else ["Nothing is running."])]
    for name, when in context.bot_data.extras.get("next_runs", lambda: [])():
        lines.append(f"Next {escape(name)}: {when:%Y-%m-%d %H:%M %Z}")
    services = context.bot_data.extras.get("services")
    if services is not None:
        await services.budget.refresh()  # what every process spent, not only this one
    lines += [escape(usage()) for usage in context.bot_data.service.usage_lines.values()]
    if context.bot_data.extras.get("queue"):
        lines += await worker_lines(context.bot_data.service.registry)
    lines.append(f"archive-bot {VERSION}")  # what to quote in a bug report, and proof an upgrade took
    await reply(update, "\n".join(lines), parse_mode=ParseMode.HTML)


def _job_label(job: Job) -> str:
    if job.kind == "syncall":
        return "sync of all accounts"
    name = f"@{job.account.username}" if job.account else "?"
    return name + (" (TikTok)" if job.account and job.account.platform == "tiktok" else "")


async def stale_button(update: Update, context: Context) -> None:
    """Any button this bot does not know (an old message, forged data)."""
    await update.callback_query.answer("This button is not valid any more.")


async def _job_for(update: Update, context: Context, command: str, states) -> Job | None:
    """The job a /pause, /resume or /cancel means; replies and returns None when unclear."""
    if context.args:
        try:
            target = parse_args(context.args, command)
        except InvalidInput as exc:
            await reply(update, exc.sentence)
            return None
        account = await queries.find_account(target.platform, target.username)
        job = None
        if account is not None:
            job = await Job.filter(account=account, state__in=states).order_by("-id").first()
        if job is None:
            await reply(update, f"{target.label} has no download to {command}.")
        return job
    jobs = await Job.filter(state__in=states, parent=None).order_by("id").prefetch_related("account")
    if len(jobs) == 1:
        return jobs[0]
    if not jobs:
        await reply(update, f"There is no download to {command}.")
        return None
    await _offer_choice(update, command, jobs)
    return None


async def _offer_choice(update: Update, command: str, jobs: list[Job]) -> None:
    """Several candidates: one button each."""
    rows = [
        [
            InlineKeyboardButton(
                f"{command.capitalize()} {_job_label(j)}", callback_data=f"job:{command}:{j.id}"
            )
        ]
        for j in jobs[:20]
    ]
    if command == "resume":
        rows.insert(0, [InlineKeyboardButton(f"▶️ Resume all ({len(jobs)})", callback_data="job:resumeall:0")])
    await reply(update, f"Which one should I {command}?", reply_markup=InlineKeyboardMarkup(rows))


async def pause(update: Update, context: Context) -> None:
    """/pause [user]: stop at the next item; /resume continues."""
    job = await _job_for(update, context, "pause", ("queued", "running"))
    if job is not None:
        await _act(update, context, job, "pause")


async def resume(update: Update, context: Context) -> None:
    """/resume [user]: continue a paused or interrupted job (a list when there are several)."""
    job = await _job_for(update, context, "resume", queries.RESUMABLE_STATES)
    if job is not None:
        await _act(update, context, job, "resume")


async def cancel(update: Update, context: Context) -> None:
    """/cancel [user]: stop for good; finished files stay archived."""
    job = await _job_for(update, context, "cancel", ("queued", "running", "paused", "interrupted"))
    if job is not None:
        await _act(update, context, job, "cancel")


async def _act(update: Update, context: Context, job: Job, action: str) -> str:
    """Carry out pause/resume/cancel/retry on a job; return the sentence told to the user."""
    desk = context.bot_data.desk
    chat_id = update.effective_chat.id
    if action == "pause":
        text = await desk.pause(job)
    elif action == "cancel":
        text = await desk.cancel(job)
    elif action == "resume":
        text = await desk.resume(job, chat_id)
    else:
        text = await desk.retry(job, chat_id)
    if update.callback_query is None:
        await reply(update, text)
    return text


async def _resume_all(data, chat_id: int) -> str:
    """The "Resume all" button: every paused or interrupted download this chat may touch."""
    jobs = [job for job in await queries.resumable_jobs() if job.chat_id in (None, chat_id)]
    resumed = 0
    for job in jobs:
        resumed += (await data.desk.resume(job, chat_id)) == "Resuming."
    if not resumed:
        return "There is no download to resume."
    return f"Resuming {plural(resumed, 'download')}."


async def button(update: Update, context: Context) -> None:
    """Pause / Resume / Cancel / Retry buttons, validated against the job and the chat."""
    query = update.callback_query
    parts = (query.data or "").split(":")
    if len(parts) != 3 or parts[0] != "job" or parts[1] not in ACTIONS or not parts[2].isdigit():
        await query.answer("This button is not valid any more.")
        return
    if parts[1] == "resumeall":
        await query.answer(await _resume_all(context.bot_data, update.effective_chat.id))
        return
    job = await Job.get_or_none(id=int(parts[2]))
    # Jobs started on the command line (no chat) may be taken over by an allowed chat.
    if job is None or job.chat_id not in (None, update.effective_chat.id):
        await query.answer("This button is not valid here.", show_alert=True)
        return
    if job.state in ("completed", "cancelled") or (job.state == "failed" and parts[1] != "retry"):
        await query.answer(f"This download has already finished ({job.state}).")
        return
    text = await _act(update, context, job, parts[1])
    await query.answer(text)
