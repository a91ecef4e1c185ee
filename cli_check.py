"""`python bot.py check <user>`: /check in the terminal (the cost on stderr, the finding on stdout)."""

from __future__ import annotations

import sys

from config import Settings
from db import queries
from downloader.deletions import check_account, tracked_instagram
from downloader.errors import DownloadError
from downloader.targets import parse_target


async def check_command(settings: Settings, text: str, open_services) -> int:
    """Check one tracked Instagram account for deleted posts; 0 when the listing was complete."""
    try:
        target = parse_target(text, None)
    except DownloadError as exc:
        print(exc.sentence, file=sys.stderr)
        return 2
    services = await open_services(settings, kind="cli")
    try:
        try:
            account = await tracked_instagram(target.platform, target.username, queries.find_account)
        except DownloadError as exc:
            print(exc.sentence, file=sys.stderr)
            return 1

        async def announce(cost: int) -> None:
            print(f"Checking @{account.username}: about {cost} Instagram requests.", file=sys.stderr)

        try:
            result = await check_account(services.service.sources["instagram"], account, announce)
        except DownloadError as exc:
            print(f"Could not check @{account.username}: {exc.sentence} Nothing was marked.", file=sys.stderr)
            return 1
    finally:
        await services.close()
    print(result.sentence())
    return 0
