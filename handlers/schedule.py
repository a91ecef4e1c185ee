"""Scheduled sync-all through PTB's JobQueue (APScheduler), configured with /schedule.

The schedule lives in the database (settings table) and is restored at start-up;
SYNC_SCHEDULE gives the first value. Runs never overlap a running sync-all, and
after downtime at most one catch-up run happens. ``last_run:<kind>`` in the settings
table is when that schedule last fired or was set; restarts keep counting from it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram import Update
from telegram.ext import Application, ContextTypes

from config import Settings, SettingsError
from db import queries
from db.models import Job
from downloader.errors import DownloadError
from handlers import check_schedule
from handlers.context import BotData, Context

log = logging.getLogger(__name__)
USAGE = (
    "Usage: /schedule — show the schedule\n"
    "/schedule every 6h | daily 03:00 [Europe/Berlin] | off\n"
    "/schedule stories every 6h | stories off — an extra stories-only sync\n"
    "/schedule quiet on|off — stay silent when a scheduled run finds nothing new\n"
    "/schedule check monthly | check off — check every Instagram account for deleted posts once a month"
)
KINDS = {
    "sync": ("schedule", None, "Scheduled sync"),
    "stories": ("stories_schedule", ["stories"], "Scheduled stories sync"),
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CATCH_UP_DELAY = timedelta(seconds=3)  # a missed run starts this soon after start-up
# APScheduler drops a run more than 1 s late by default (a busy loop, a suspended machine);
# run it however late instead, and merge missed runs into one.
JOB_KWARGS = {"misfire_grace_time": None, "coalesce": True}


class ScheduleError(ValueError):
    """Bad /schedule input; the message is shown with the usage line."""


@dataclass(frozen=True)
class Schedule:
    """Either every N seconds, or daily at a time in a time zone, or off."""

    kind: str  # every | daily | off
    seconds: int = 0
    at: str = "03:00"
    tz: str = "UTC"

    def describe(self) -> str:
        """Human form, as the user would type it."""
        if self.kind == "off":
            return "off"
        if self.kind == "daily":
            return f"daily {self.at} {self.tz}"
        return f"every {_duration(self.seconds)}"

    def to_json(self) -> dict:
        """What the settings table stores."""
        return self.__dict__.copy()


def parse_schedule(words: list[str], min_interval: int) -> Schedule:
    """`every 6h`, `daily 03:00 [TZ]` or `off` (keywords in any case); ScheduleError otherwise."""
    keys = [w.lower() for w in words]
    if keys == ["off"]:
        return Schedule("off")
    if len(words) == 2 and keys[0] == "every":
        match = re.fullmatch(r"(\d{1,5})([smhd])", keys[1])
        if not match:
            raise ScheduleError("Write the interval like 30m, 6h or 1d.")
        seconds = int(match[1]) * _UNITS[match[2]]
        if seconds < min_interval:
            raise ScheduleError(f"That is too often: at least every {_duration(min_interval)}.")
        return Schedule("every", seconds=seconds)
    if len(words) in (2, 3) and keys[0] == "daily":
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", words[1]):
            raise ScheduleError("Write the time as HH:MM, for example 03:00.")
        tz = words[2] if len(words) == 3 else "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ScheduleError(f"Unknown time zone {tz[:40]!r}; use a name like Europe/Berlin.") from None
        return Schedule("daily", at=words[1].zfill(5), tz=tz)
    raise ScheduleError("I did not understand that schedule.")


def _duration(seconds: int) -> str:
    """Seconds as the largest whole unit: 21600 -> 6h."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def schedule_command(update: Update, context: Context) -> None:
    """/schedule: show or change the automatic sync."""
    settings: Settings = context.bot_data.extras["settings"]
    try:
        text = await _change(context.application, settings, list(context.args or []))
    except ScheduleError as exc:
        text = f"{exc}\n{USAGE}"
    await update.effective_message.reply_text(text)


async def _change(app: Application, settings: Settings, words: list[str]) -> str:
    """Apply a /schedule change and describe the result."""
    if not words:
        return await describe(app, settings)
    keys = [w.lower() for w in words]
    if keys[0] == "quiet":
        if keys[1:] not in (["on"], ["off"]):
            raise ScheduleError("Quiet mode is on or off.")
        await queries.set_setting("quiet", keys[1] == "on")
        return f"Quiet mode {keys[1]}."
    if keys[0] == "check":
        try:
            await check_schedule.change(app, keys[1:])
        except ValueError as exc:
            raise ScheduleError(str(exc)) from None
        return await describe(app, settings)
    kind = "stories" if keys[0] == "stories" else "sync"
    schedule = parse_schedule(words[1:] if kind == "stories" else words, settings.schedule_min_interval)
    await queries.set_setting(KINDS[kind][0], schedule.to_json())
    await queries.set_setting(f"last_run:{kind}", datetime.now(UTC).isoformat())  # count from now
    install(app, kind, schedule, catch_up=False)
    log.info("schedule %s set to %s", kind, schedule.describe())
    return await describe(app, settings)


async def stored_schedule(kind: str, settings: Settings) -> Schedule:
    """The schedule from the database, or the initial value (SYNC_SCHEDULE / off)."""
    stored = await queries.get_setting(KINDS[kind][0])
    if stored:
        return Schedule(**stored)
    if kind == "stories":
        return Schedule("off")
    try:
        return parse_schedule(settings.sync_schedule.split(), settings.schedule_min_interval)
    except ScheduleError as exc:
        raise SettingsError(f"Setting SYNC_SCHEDULE is invalid: {exc}") from None


async def describe(app: Application, settings: Settings) -> str:
    """The schedule, next runs and quiet mode, in a few lines."""
    lines = []
    for kind, (_, _, title) in KINDS.items():
        schedule = await stored_schedule(kind, settings)
        nxt = next_run(app, kind)
        when = f" — next run {nxt:%Y-%m-%d %H:%M %Z}" if nxt else ""
        lines.append(f"{title}: {schedule.describe()}{when}")
    lines.append(check_schedule.describe(app, await check_schedule.stored()))
    quiet = await queries.get_setting("quiet", False)
    lines.append(f"Quiet mode: {'on' if quiet else 'off'}")
    return "\n".join(lines)


def next_run(app: Application, kind: str) -> datetime | None:
    """When the scheduler will next run this kind, if scheduled."""
    jobs = app.job_queue.get_jobs_by_name(kind)
    times = [j.next_t for j in jobs if j.next_t is not None]
    return min(times) if times else None


def install(
    app: Application,
    kind: str,
    schedule: Schedule,
    *,
    catch_up: bool,
    last_run: datetime | None = None,
) -> None:
    """Replace the JobQueue entry of ``kind`` with ``schedule``."""
    for job in app.job_queue.get_jobs_by_name(kind):
        job.schedule_removal()
    if schedule.kind == "off":
        return
    queue, data = app.job_queue, {"kind": kind}
    if schedule.kind == "every":
        interval = timedelta(seconds=schedule.seconds)
        first = interval
        if last_run is not None:  # keep the rhythm across restarts; overdue: one run soon
            first = max(last_run + interval - datetime.now(UTC), CATCH_UP_DELAY)
        queue.run_repeating(_run, interval, first=first, name=kind, data=data, job_kwargs=JOB_KWARGS)
    else:
        hour, minute = map(int, schedule.at.split(":"))
        at = time(hour, minute, tzinfo=ZoneInfo(schedule.tz))
        queue.run_daily(_run, at, name=kind, data=data, job_kwargs=JOB_KWARGS)
        if catch_up and last_run is not None and last_run < _last_daily(at):
            queue.run_once(_run, CATCH_UP_DELAY, name=kind, data=data, job_kwargs=JOB_KWARGS)


def _last_daily(at: time) -> datetime:
    """The most recent moment the daily schedule should have run."""
    now = datetime.now(at.tzinfo)
    today = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


async def restore(app: Application, settings: Settings) -> None:
    """Install the stored schedules at start-up, with at most one catch-up run each."""
    for kind in KINDS:
        schedule = await stored_schedule(kind, settings)
        stamp = await queries.get_setting(f"last_run:{kind}")
        if stamp is None:  # first start: count from now, so restarts do not postpone runs forever
            stamp = datetime.now(UTC).isoformat()
            await queries.set_setting(f"last_run:{kind}", stamp)
        install(app, kind, schedule, catch_up=True, last_run=datetime.fromisoformat(stamp))
    await check_schedule.restore(app)
    app.bot_data.extras["next_runs"] = lambda: [
        (KINDS[k][2].lower(), t) for k in KINDS if (t := next_run(app, k)) is not None
    ]


async def _run(context: ContextTypes.DEFAULT_TYPE) -> None:
    """A scheduled run: skipped (and logged) while any sync-all runs."""
    kind = context.job.data["kind"]
    data: BotData = context.application.bot_data
    await queries.set_setting(f"last_run:{kind}", datetime.now(UTC).isoformat())
    # Both schedules may fire at once (catch-up after downtime, equal times): the job
    # manager lets only one sync-all exist at a time, so the second is skipped.
    await _start_run(data, kind)


async def _start_run(data: BotData, kind: str) -> None:
    """Create, announce and start the sync-all of one scheduled run, unless one is running."""
    _, phases, title = KINDS[kind]
    settings: Settings = data.extras["settings"]
    chat_id = settings.notify_chat
    try:
        parent, created = await data.jobs.prepare_syncall(chat_id=chat_id, phases=phases)
    except DownloadError as exc:  # the archive folder is missing: say so once, until it is back
        log.warning("%s skipped: %s", title, exc.sentence)
        if chat_id is not None and data.extras.get("told_missing") != exc.sentence:
            data.extras["told_missing"] = exc.sentence
            await data.board.tell(chat_id, exc.sentence)
        return
    data.extras.pop("told_missing", None)
    if not created:
        log.info("%s skipped: a sync-all is still running", title)
        return
    if await Job.filter(parent=parent).count() == 0:
        parent.state = "completed"
        await parent.save(update_fields=["state", "updated_at"])
        log.info("%s: no tracked accounts to sync", title)
        return
    if chat_id is not None:
        quiet = await queries.get_setting("quiet", False)
        await data.board.attach_sync(parent, chat_id, title=title, lazy=True, quiet=quiet)
    log.info("%s started", title)
    data.jobs.start(parent)
