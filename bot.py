"""Entry point: read the command line, then load only what the chosen command needs.

`python bot.py` runs the bot (the Application is built in wiring.py, for this file only);
`python bot.py download <user>` runs one download in the terminal with the same settings,
database and archive. `--help` and `--version` import no third-party library.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import ops
from version import VERSION

if TYPE_CHECKING:
    from config import Settings

DEFAULT_WAIT = 1.0  # minutes a terminal download waits out network trouble and rate limits in all


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: run (default), download, check, reindex or worker."""
    parser = argparse.ArgumentParser(
        prog="bot.py",
        description="Telegram bot that archives Instagram and TikTok accounts. "
        "Settings come from the environment or a .env file (see README).",
    )
    parser.add_argument("--version", action="version", version=f"archive-bot {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the Telegram bot (the default)")
    dl = sub.add_parser(
        "download",
        help="download one account now, in the terminal",
        description="Download an account's new content with a progress bar per phase, "
        "using the same settings, database and archive as the bot.",
    )
    dl.add_argument("target", help="name, @name or profile URL")
    dl.add_argument(
        "--platform", choices=["instagram", "tiktok"], help="default: from the URL, else instagram"
    )
    ck = sub.add_parser(
        "check",
        help="list a tracked Instagram account's whole timeline and mark posts deleted there",
        description="Like /check: says the cost in requests, lists every post once and marks "
        "archived posts Instagram no longer lists (their files stay).",
    )
    ck.add_argument("target", help="name, @name or profile URL")
    sub.add_parser(
        "reindex",
        help="rebuild the archive's index from the files in DATA_DIR/downloads (no requests)",
        description="Register every file already in the archive's folders that the database "
        "does not know (after a lost or restored database). Makes no request; running it "
        "twice changes nothing.",
    )
    wk = sub.add_parser(
        "worker",
        help="download jobs from the task queue (QUEUE_URL) with this machine's settings",
        description="Take download jobs from the task queue until stopped (Ctrl+C / SIGTERM). "
        "Uses this environment's INSTAGRAM_SESSION_FILE, HTTPS_PROXY, DATA_DIR and DATABASE_URL.",
    )
    wk.add_argument("--platform", choices=["instagram", "tiktok"], help="take only this platform's jobs")
    dl.add_argument(
        "--wait",
        type=_minutes,
        default=DEFAULT_WAIT,
        metavar="MINUTES",
        help="how long to wait out network trouble and rate limits before giving up "
        f"(default: {DEFAULT_WAIT:g}; the bot itself waits much longer)",
    )
    dl.add_argument(
        "--only",
        choices=["posts", "stories", "highlights"],
        help="run only this Instagram phase (default: posts, stories and highlights)",
    )
    ops.add_parsers(sub)
    return parser.parse_args(argv)


def _minutes(text: str) -> float:
    """--wait's value: minutes, 0 or more (0: give up at the first trouble)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 24 * 60:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes from 0 to 1440")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sub-command; errors become one sentence and a non-zero exit."""
    args = parse_args(argv)
    # Imported only now: `--help` and `--version` (argparse exits above) load no library.
    from config import SettingsError, load_settings
    from db import DatabaseStartError
    from logsetup import configure_logging

    try:
        settings = load_settings()
        configure_logging(settings)
        settings.check_queue()
        return _run(settings, args)
    except (SettingsError, DatabaseStartError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(settings: Settings, args: argparse.Namespace) -> int:
    """Import what the command needs and run it: the terminal commands never load Telegram."""
    import asyncio

    if args.command in ops.COMMANDS:
        return ops.run(settings, args)
    if args.command == "worker":
        return _worker(settings, args.platform)
    if args.command == "reindex":
        from cli import reindex_command

        return asyncio.run(reindex_command(settings))
    if args.command == "check":
        from cli_check import check_command
        from services import open_services

        return asyncio.run(check_command(settings, args.target, open_services))
    if args.command == "download":
        from cli import download_command
        from services import open_services

        return asyncio.run(
            download_command(settings, args.target, args.platform, open_services, args.only, args.wait)
        )
    from wiring import run_bot

    return run_bot(settings)


def _worker(settings: Settings, platform: str | None) -> int:
    """`python bot.py worker`: needs QUEUE_URL (and so PostgreSQL)."""
    import asyncio

    from config import SettingsError
    from downloader.queue.worker import run_worker
    from services import open_services

    if not settings.queue:
        raise SettingsError("python bot.py worker needs QUEUE_URL: the task queue the bot hands jobs to.")
    return asyncio.run(run_worker(settings, platform, open_services))


if __name__ == "__main__":
    sys.exit(main())
