"""/schedule check monthly|off: every tracked Instagram account checked for deleted posts once a month.

One run a day (PTB's JobQueue) checks the accounts checked longest ago (never checked first):
about a thirtieth of them, and no more than fit in a tenth of INSTAGRAM_DAILY_REQUEST_BUDGET
(the day's first account runs whatever it costs, if the day's budget covers it).
The choice lives in the settings table (``check_schedule``); ``last_run:check`` keeps the rhythm
across restarts. Only findings (deleted posts, failures) are posted to the notify chat.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from telegram.ext import Application, ContextTypes

from config import Settings
from db import queries
from db.models import Account, NotifySetting
from downloader.deletions import BudgetRefused, CheckRefused, check_account, guessed_cost, remaining
from downloader.errors import DownloadError, NotFound, Private
from handlers.context import BotData

log = logging.getLogger(__name__)
NAME = "check"  # the JobQueue entry and the last_run:<name> setting
SETTING = "check_schedule"
PERIOD = timedelta(days=30)  # every account once in this time
EVERY = timedelta(days=1)
SHARE = 10  # a day's scheduled checks use at most 1/SHARE of the daily request budget
CATCH_UP_DELAY = timedelta(seconds=3)
JOB_KWARGS = {"misfire_grace_time": None, "coalesce": True}


async def stored() -> str:
    """ "monthly" or "off"."""
    return await queries.get_setting(SETTING, "off")


async def change(app: Application, words: list[str]) -> None:
    """Store and install ``monthly`` or ``off``; ValueError with a sentence otherwise."""
    if words not in (["monthly"], ["off"]):
        raise ValueError("The deleted-posts check is monthly or off: /schedule check monthly")
    await queries.set_setting(SETTING, words[0])
    now = datetime.now(UTC)
    await queries.set_setting(f"last_run:{NAME}", now.isoformat())
    install(app, words[0], now)
    log.info("scheduled check set to %s", words[0])


def describe(app: Application, value: str) -> str:
    """The /schedule line, e.g. "Scheduled check for deleted posts: monthly — next run ..."."""
    jobs = [j.next_t for j in app.job_queue.get_jobs_by_name(NAME) if j.next_t is not None]
    when = f" — next run {min(jobs):%Y-%m-%d %H:%M %Z}" if jobs and value != "off" else ""
    shown = "monthly (a share of the accounts each day)" if value == "monthly" else "off"
    return f"Scheduled check for deleted posts: {shown}{when}"


def install(app: Application, value: str, last_run: datetime | None) -> None:
    """Replace the JobQueue entry: one run a day, counted from ``last_run``."""
    for job in app.job_queue.get_jobs_by_name(NAME):
        job.schedule_removal()
    if value != "monthly":
        return
    first = EVERY
    if last_run is not None:
        first = max(last_run + EVERY - datetime.now(UTC), CATCH_UP_DELAY)
    app.job_queue.run_repeating(run, EVERY, first=first, name=NAME, job_kwargs=JOB_KWARGS)


async def restore(app: Application) -> None:
    """Install the stored choice at start-up."""
    stamp = await queries.get_setting(f"last_run:{NAME}")
    install(app, await stored(), datetime.fromisoformat(stamp) if stamp else None)


async def run(context: ContextTypes.DEFAULT_TYPE) -> None:
    """A scheduled day: check the accounts due, tell the notify chat what was found."""
    data: BotData = context.application.bot_data
    await queries.set_setting(f"last_run:{NAME}", datetime.now(UTC).isoformat())
    settings: Settings = data.extras["settings"]
    for account, line in await check_due(data.service.sources["instagram"]):
        if settings.notify_chat is None:
            continue
        if await told_in_notify_line(settings.notify_chat, account) and "failed" not in line:
            continue  # that chat hears deleted posts in the account's notify line, once
        await data.board.tell(settings.notify_chat, line)


async def due_accounts() -> list[Account]:
    """Tracked Instagram accounts not checked within PERIOD, never checked and longest ago first."""
    since = datetime.now(UTC) - PERIOD
    tracked = await Account.filter(platform="instagram", tracked=True)
    due = [a for a in tracked if not a.gone and (a.checked_at is None or a.checked_at < since)]
    floor = datetime.min.replace(tzinfo=UTC)
    due.sort(key=lambda a: a.checked_at or floor)
    per_day = max(1, -(-len(tracked) // PERIOD.days))
    return due[:per_day]


async def told_in_notify_line(chat_id: int, account: Account) -> bool:
    """Whether the chat has /notify on for the account (its line tells deleted posts)."""
    return await NotifySetting.filter(chat_id=chat_id, account=account).exclude(mode="off").exists()


async def check_due(source) -> list[tuple[Account, str]]:
    """Check today's share of accounts; the sentences worth telling (deletions and failures)."""
    left = remaining(source)
    share = None if left is None else source.budget.daily_limit // SHARE
    spent_before = source.budget.usage()[1] if source.budget is not None else 0
    lines = []
    for account in await due_accounts():
        if share is not None:
            spent = source.budget.usage()[1] - spent_before
            # The day's first account runs even past the share (else a big one would never run).
            if spent and spent + await guessed_cost(account) > share:
                log.info("scheduled check: @%s waits for another day (budget share used)", account.username)
                break
        try:
            result = await check_account(source, account)
        except BudgetRefused as exc:
            log.info("scheduled check stops for today: %s", exc.sentence)
            break
        except (CheckRefused, NotFound, Private) as exc:  # about this account only: its turn is over
            log.info("scheduled check of @%s skipped: %s", account.username, exc.sentence)
            await skip_until_next_month(account)
            continue
        except DownloadError as exc:
            lines.append(
                (
                    account,
                    f"Scheduled check of @{account.username} failed: {exc.sentence} Nothing was marked.",
                )
            )
            break  # a rate limit or checkpoint would fail the next accounts too
        log.info("scheduled check of @%s: %d deleted", account.username, len(result.deleted))
        if result.deleted:
            lines.append((account, result.sentence()))
    return lines


async def skip_until_next_month(account: Account) -> None:
    """An account the check cannot list (no archived posts, gone) waits a month like a checked one."""
    account.checked_at = datetime.now(UTC)
    await account.save(update_fields=["checked_at", "updated_at"])
