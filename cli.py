"""`python bot.py download <user>`: one job in the terminal, a progress bar per phase."""

from __future__ import annotations

import sys

from tqdm import tqdm

from config import Settings
from db import queries
from downloader.errors import DownloadError
from downloader.events import ItemDone, JobFinished, PhaseFinished, PhaseStarted, Waiting, Warned
from downloader.events import summary_line as summarize
from downloader.targets import PHASES, parse_target


class TerminalProgress:
    """Renders service events as tqdm bars on stderr."""

    def __init__(self, job_id: int, username: str):
        self.job_id = job_id
        self.username = username
        self.bar: tqdm | None = None

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
            tqdm.write(f"waiting until {event.until:%H:%M:%S} UTC: {event.reason}", file=sys.stderr)
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


async def download_command(
    settings: Settings, text: str, platform: str | None, open_services, only: str | None = None
) -> int:
    """Run one download (``only``: one phase); exit 0 when it completed, else print why and return 1."""
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
        services.service.subscribe(TerminalProgress(job.id, target.username))
        result = await services.service.run(job)
    finally:
        await services.close()
    if result.requests:
        print(result.requests, file=sys.stderr)  # stdout keeps the one summary line
    print(summarize(result))
    return 0 if result.state == "completed" else 1
