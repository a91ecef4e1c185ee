"""`python bot.py download <user>`: one job in the terminal, a progress bar per phase."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from tqdm import tqdm

from config import Settings
from db import queries
from downloader.errors import DownloadError
from downloader.events import (
    ItemDone,
    JobFinished,
    PhaseFinished,
    PhaseStarted,
    Waiting,
    Warned,
    shown_as_event,
)
from downloader.events import summary_line as summarize
from downloader.targets import PHASES, parse_target


class TerminalProgress:
    """Renders service events as tqdm bars on stderr."""

    def __init__(self, job_id: int, username: str):
        self.job_id = job_id
        self.username = username
        self.bar: tqdm | None = None
        self.retries = 0  # waits out of network trouble (a rate limit's or a politeness wait is not one)

    def __call__(self, event) -> None:
        if getattr(event, "job_id", None) != self.job_id:
            return
        if isinstance(event, PhaseStarted):
            self._close()
            self.bar = tqdm(
                desc=f"@{self.username} {event.phase}",
                total=event.total,
                unit="item",
                file=sys.stderr,
                leave=True,
            )
        elif isinstance(event, ItemDone) and self.bar is not None:
            self.bar.total = event.total
            self.bar.n = event.done
            self.bar.refresh()
        elif isinstance(event, Waiting):
            self.retries += event.trying_again
            tqdm.write(_wait_line(event), file=sys.stderr)
        elif isinstance(event, Warned):
            tqdm.write(f"warning: {event.message}", file=sys.stderr)
        elif isinstance(event, PhaseFinished):
            if event.result.status == "skipped":
                tqdm.write(f"{event.result.phase} skipped: {event.result.message}", file=sys.stderr)
            self._close()
        elif isinstance(event, JobFinished):
            self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _wait_line(event: Waiting) -> str:
    """One line per wait, e.g. "Network trouble reaching Instagram for @alice; trying again in 15 s."."""
    if event.trying_again:
        seconds = max(1, round((event.until - datetime.now(UTC)).total_seconds()))
        return f"{event.reason} in {seconds} s."
    return f"waiting until {event.until:%H:%M:%S} UTC: {event.reason}"


def _gave_up_line(wait: float) -> str:
    minutes = f"{wait:g} minute" + ("" if wait == 1 else "s")
    return f"Gave up after waiting {minutes}; run it again later, or wait longer with --wait MINUTES."


def _say_events_once() -> None:
    """The terminal shows waits as lines of their own: leave out log records repeating them."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not shown_as_event(record))


async def download_command(
    settings: Settings,
    text: str,
    platform: str | None,
    open_services,
    only: str | None,
    wait: float,
) -> int:
    """Run one download (``only``: one phase; ``wait``: minutes of waiting out network trouble and
    rate limits before giving up); exit 0 when it completed, else print why and return 1."""
    try:
        target = parse_target(text, platform)
    except DownloadError as exc:
        print(exc.sentence, file=sys.stderr)
        return 2
    if only is not None and only not in PHASES[target.platform]:
        print(f"--only {only}: {target.label} has {', '.join(PHASES[target.platform])}.", file=sys.stderr)
        return 2
    services = await open_services(settings, kind="cli")
    try:
        account = await queries.get_or_create_account(target.platform, target.username)
        try:
            # Checks the archive folder and that no other process (the bot) has the account.
            job, _ = await services.jobs.prepare_download(
                account, chat_id=None, phases=[only] if only else None
            )
        except DownloadError as exc:
            print(exc.sentence, file=sys.stderr)
            return 1
        progress = TerminalProgress(job.id, target.username)
        services.service.subscribe(progress)
        services.service.max_wait = wait * 60
        _say_events_once()
        result = await services.service.run(job)
    finally:
        await services.close()
    if result.requests:
        print(result.requests, file=sys.stderr)  # stdout keeps the one summary line
    print(summarize(result))
    if result.state == "interrupted" and progress.retries:  # the network stayed away
        print(_gave_up_line(wait), file=sys.stderr)
    return 0 if result.state == "completed" else 1


async def reindex_command(settings: Settings) -> int:
    """`python bot.py reindex`: rebuild the archive's index from the files, with no request."""
    from db import close_database, open_database
    from downloader.guard import ArchiveGuard
    from downloader.paths import downloads_root
    from downloader.reindex import reindex

    root = downloads_root(settings.data_dir)
    if not root.is_dir():
        print(f"Nothing to reindex: there is no archive folder at {root}.", file=sys.stderr)
        return 1
    await open_database(settings.effective_database_url)
    try:
        try:
            await ArchiveGuard(settings.data_dir).check()  # never index another archive's folder
        except DownloadError as exc:
            print(exc.sentence, file=sys.stderr)
            return 1
        report = await reindex(settings.data_dir)
    finally:
        await close_database()
    print("\n".join(report.lines()))
    return 0
