"""Figure 3: /syncall of many small tracked accounts through the real bot and a strict fake Telegram.

The bot (harness.running_bot: the Application wiring.py builds for bot.py, polling) runs in this process
with its production status-edit interval; the fake Telegram answers 429 exactly as
Telegram's flood limits would. Counted at the fake: status edits and 429 answers.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from pathlib import Path

import wiring
from bench.sizes import Size
from bench.table import Row, Section, seconds
from bench.world import fake_instagram, session_file
from config import Settings
from db import close_database
from db.models import Account
from tests.fakes.instagram import make_profile
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN, make_settings, running_bot

TIMEOUT = 600
CHAT_METHODS = ("sendMessage", "editMessageText")


def run(size: Size) -> Section:
    """Track ``size.sync_accounts`` accounts, send /syncall, wait for the final status."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp,
        fake_instagram(size.latency, size.bandwidth) as (net, instagram),
        FakeTelegram(TOKEN) as telegram,
    ):
        names = [f"acct{index:03d}" for index in range(size.sync_accounts)]
        for index, name in enumerate(names):
            profile = make_profile(
                name, 5000 + index, posts=size.sync_posts, stories=1, highlights=("Trips",)
            )
            instagram.add_profile(profile)
        work = Path(tmp)
        settings = make_settings(
            work / "data",
            net=net,
            telegram=telegram,
            instagram_session_file=session_file(instagram, work / "sessions"),
            # The product's default, not the tests' fast 0.5 s: this figure is about real limits.
            status_edit_interval=Settings.model_fields["status_edit_interval"].default,
        )
        started, finished, text = asyncio.run(_sync_all(settings, telegram, names))
        calls = [c for c in telegram.calls if started <= c.time and c.method in CHAT_METHODS]
        rate_limited = sum(1 for c in calls if c.status == 429)
        edits = sum(1 for c in calls if c.method == "editMessageText" and c.status == 200)
        sends = sum(1 for c in calls if c.method == "sendMessage" and c.status == 200)
        refused = sum(1 for c in calls if c.status not in (200, 429))
        api = instagram.api_count()
    wall = finished - started
    label = f"3. Sync-all of {len(names)} accounts via /syncall"
    rows = [
        Row(f"{label}: 429 answers from Telegram", str(rate_limited), target="0", met=rate_limited == 0),
        Row(f"{label}: status edits sent", f"{edits} ({edits / wall:.2f}/s)"),
        Row(f"{label}: total time", seconds(wall)),
    ]
    notes = [
        f"Sync-all: {sends} message(s) sent and {edits} edits in {wall:.1f} s ({refused} other Telegram "
        f"errors), {api} Instagram API requests; "
        f"status edit interval {settings.status_edit_interval:g} s. Final status: {text.splitlines()[-1]!r}.",
        "Sync-all: instaloader's rate-window sleeps are skipped (as in figures 1-2) through open_services' "
        "sleep parameter; with real sleeps, 100 accounts wait out instaloader's 11-minute windows.",
    ]
    return Section(rows, notes)


async def _sync_all(settings: Settings, telegram: FakeTelegram, names: list[str]) -> tuple[float, float, str]:
    """Run the bot, track the accounts, /syncall; (start, end) in the fake's clock and the final text."""
    original = wiring.open_services
    # wiring._post_init opens the services with real sleeps; inject the instant sleep that
    # harness.services_for uses, through open_services' own parameter.
    wiring.open_services = functools.partial(original, sleep=lambda seconds: None)
    try:
        async with running_bot(settings):
            # Inserted directly: /add would cost one Telegram reply per account, which is not this figure.
            await Account.bulk_create(
                [Account(platform="instagram", username=n, tracked=True, added_by=OWNER) for n in names]
            )
            started = time.time()
            telegram.send_message(OWNER, "/syncall")
            final = await _final_status(telegram, len(names))
            return started, final.time, str(final.params.get("text", ""))
    finally:
        wiring.open_services = original
        # A bot that failed in post_init never runs post_shutdown; free the database for later figures.
        await close_database()


async def _final_status(telegram: FakeTelegram, total: int):
    """The status message's last state ("Completed: N new items from T accounts")."""
    marker = f"new items from {total} accounts"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for call in reversed(list(telegram.calls)):
            if call.method in CHAT_METHODS and call.status == 200 and marker in str(call.params.get("text")):
                return call
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no final sync-all status within {TIMEOUT} s")
