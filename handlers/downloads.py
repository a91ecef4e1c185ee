"""Download commands and job buttons: /download, /syncall, /status, /pause, /resume, /cancel."""

from __future__ import annotations

import logging
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode

from db import queries
from db.models import Job
from downloader.errors import InvalidInput
from downloader.targets import Target, parse_target
from handlers.context import Context
from handlers.status_view import limited

log = logging.getLogger(__name__)
USAGE = {
    "download": "Usage: /download <user or profile URL> [instagram|tiktok]",
    "add": "Usage: /add <user or profile URL> [instagram|tiktok] [media|summary|off]",
    "remove": "Usage: /remove <user or profile URL> [instagram|tiktok]",
    "pause": "Usage: /pause [user]",
    "resume": "Usage: /resume [user]",
    "cancel": "Usage: /cancel [user]",
}
STARTED = {
    "instagram": "Download started - including posts, stories, and highlights!",
    "tiktok": "Download started - TikTok videos!",
}
ACTIONS = ("pause", "resume", "cancel", "retry")


def parse_args(args: list[str], command: str) -> Target:
    """`<user or URL> [platform]` -> Target; InvalidInput carries the usage line."""
    if not args or len(args) > 2:
        raise InvalidInput(USAGE[command])
    try:
        return parse_target(args[0], args[1] if len(args) == 2 else None)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.sentence}\n{USAGE[command]}") from None


async def reply(update: Update, text: str, **kwargs) -> None:
    """Answer in the chat of the update (plain text unless parse_mode is given)."""
    await update.effective_message.reply_text(text, **kwargs)


async def download(update: Update, context: Context) -> None:
    """/download <user>: one immediate reply, then one self-updating status message."""
    try:
        target = parse_args(context.args, "download")
    except InvalidInput as exc:
        await reply(update, exc.sentence)
        return
    data = context.bot_data
    account = await queries.find_account(target.platform, target.username)
    one_off = account is None or not account.tracked
    if account is None:
        account = await queries.get_or_create_account(
            target.platform, target.username, added_by=update.effective_user.id
        )
    paused = await queries.resumable_job_for(account)
    if paused is not None and not data.service.is_active(paused.id):
        await reply(update, f"{target.label} has a paused download: continuing it.")
        await _resume(data, paused, update.effective_chat.id)
        return
    job, created = await data.jobs.prepare_download(account, chat_id=update.effective_chat.id)
    if not created:
        await _point_at_running(update, context, job, target.label)
        return
    intro = STARTED[target.platform]
    if one_off:
        intro += f"\n{target.label} is not tracked: this is a one-time download (/add to track it)."
    await reply(update, intro)
    await data.board.attach_job(job, update.effective_chat.id)
    data.jobs.start(job)


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
    """/syncall: every tracked account, one status message for the whole run."""
    if context.args:
        await reply(update, "Usage: /syncall (no arguments)")
        return
    data = context.bot_data
    job, created = await data.jobs.prepare_syncall(chat_id=update.effective_chat.id)
    if not created:
        await _point_at_running(update, context, job, "A sync of all accounts")
        return
    total = await Job.filter(parent=job).count()
    if total == 0:
        job.state = "completed"
        await job.save(update_fields=["state", "updated_at"])
        await reply(update, "No tracked accounts yet: add one with /add <user>.")
        return
    await data.board.attach_sync(job, update.effective_chat.id)
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
    if len(jobs) == 1 and command != "resume":  # /resume always lists, with a button each
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
    data = context.bot_data
    chat_id = update.effective_chat.id
    if action == "pause":
        done = await data.jobs.pause(job)
        text = "Pausing at the next file…" if done else "That download is not running."
    elif action == "cancel":
        live = data.service.is_active(job.id) or data.jobs.is_running(job.id)
        done = await data.jobs.cancel(job)
        if done and not live:  # nothing runs to report it: update the message here
            await data.board.show_final(job)
        text = "Cancelling; files already downloaded stay archived." if done else "Nothing to cancel."
    elif action == "resume":
        text = await _resume(data, job, chat_id)
    else:
        text = await _retry(data, job, chat_id)
    if update.callback_query is None:
        await reply(update, text)
    return text


async def _resume(data, job: Job, chat_id: int) -> str:
    """Resume, showing progress on the original status message when it still exists."""
    await job.refresh_from_db()
    if job.state not in queries.RESUMABLE_STATES:
        return "That download is not paused."
    if job.kind == "syncall":
        await data.board.attach_sync(job, chat_id)
    else:
        await data.board.attach_job(job, chat_id)
    return "Resuming." if await data.jobs.resume(job) else "That download is not paused."


async def _retry(data, job: Job, chat_id: int) -> str:
    """Start a new job for the same account (or a new sync-all) after a failure."""
    if job.kind == "syncall":
        new, created = await data.jobs.prepare_syncall(chat_id=chat_id)
        if created:
            await data.board.attach_sync(new, chat_id)
    else:
        await job.fetch_related("account")
        new, created = await data.jobs.prepare_download(job.account, chat_id=chat_id)
        if created:
            await data.board.attach_job(new, chat_id)
    if created:
        data.jobs.start(new)
    return "Retrying." if created else "It is already running."


async def button(update: Update, context: Context) -> None:
    """Pause / Resume / Cancel / Retry buttons, validated against the job and the chat."""
    query = update.callback_query
    parts = (query.data or "").split(":")
    if len(parts) != 3 or parts[0] != "job" or parts[1] not in ACTIONS or not parts[2].isdigit():
        await query.answer("This button is not valid any more.")
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
