"""/check <user>: list an Instagram account's whole timeline once and mark deleted posts."""

from __future__ import annotations

import logging

from telegram import Update

from db import queries
from downloader.deletions import CheckRefused, check_account, tracked_instagram
from downloader.errors import DownloadError, InvalidInput
from handlers.arguments import parse_args
from handlers.context import Context
from handlers.downloads import reply

log = logging.getLogger(__name__)


async def check(update: Update, context: Context) -> None:
    """/check <user>: say the cost, list the timeline, reply with the deleted posts (or none)."""
    try:
        target = parse_args(context.args, "check")
        account = await tracked_instagram(target.platform, target.username, queries.find_account)
    except (InvalidInput, CheckRefused) as exc:
        await reply(update, exc.sentence)
        return
    source = context.bot_data.service.sources["instagram"]

    async def announce(cost: int) -> None:
        await reply(
            update,
            f"Checking @{account.username} for deleted posts: about {cost} Instagram requests "
            "(the whole post timeline, 12 posts a request).",
        )

    try:
        result = await check_account(source, account, announce)
    except CheckRefused as exc:
        await reply(update, exc.sentence)
        return
    except DownloadError as exc:
        log.info("check of @%s failed: %s", account.username, exc.sentence)
        await reply(update, f"Could not check @{account.username}: {exc.sentence} Nothing was marked.")
        return
    log.info(
        "checked @%s: %d of %d archived posts deleted", account.username, len(result.deleted), result.archived
    )
    await reply(update, result.sentence())
