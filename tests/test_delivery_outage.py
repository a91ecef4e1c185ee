"""Telegram away for several runs: every delivery waits, nothing is skipped, the limit stays per run."""

from __future__ import annotations

import logging

import pytest

from db.models import Delivery, MediaItem
from tests.delivery_kit import (
    bot,
    failed_call,
    finished,
    received,
    rows_become,
    sha,
    too_many,
    until,
    world_parts,
)
from tests.fakes.instagram import NEWEST, FakeStoryItem
from tests.fakes.outage import Relay
from tests.harness import OWNER


@pytest.fixture
def parts(net, tmp_path):
    """Fake Telegram, Instagram (alice: 6 posts, 1 story, no highlights) and TikTok."""
    with world_parts(net, tmp_path) as found:
        yield found


WAITS = "waits 1 s for Telegram"  # the log line of a pass that ended in an outage


@pytest.mark.timeout(300)
async def test_five_runs_while_telegram_is_unreachable_are_all_delivered_afterwards(parts, data_dir, caplog):
    telegram, instagram, _, _ = parts
    alice = instagram.profiles["alice"]
    caplog.set_level(logging.INFO)
    port = int(telegram.url.rsplit(":", 1)[1])
    with Relay(port) as relay:
        relay.up()
        settings = {
            "telegram_api_url": relay.url,
            "notify_backlog_limit": 8,  # each run (5 files) fits; the 25 waiting do not
            "notify_retry_interval": 1,
            "schedule_min_interval": 1,
            "sync_schedule": "off",
        }
        async with bot(parts, data_dir, **settings) as world:
            await world.reply("/add alice")
            await finished(world, world.say("/download alice"))
            await world.reply("/notify alice media")
            await world.reply("/schedule quiet on")  # runs that find nothing say nothing
            await world.reply("/schedule stories every 2s")
            relay.down()  # Telegram is out of reach from here on
            new: list[FakeStoryItem] = []
            for run in range(5):
                batch = [
                    FakeStoryItem(
                        3_600_000_000_000_001_000 + 10 * run + n, taken_at=NEWEST + 3600 * (5 * run + n + 1)
                    )
                    for n in range(5)
                ]
                alice.stories.extend(batch)
                new += batch
                await rows_become(MediaItem.filter(kind="story"), 1 + len(new), timeout=60)  # the run is done
                seen = caplog.text.count(WAITS)
                await until(lambda seen=seen: caplog.text.count(WAITS) > seen, "a pass that met the outage")
            assert await Delivery.filter(state="skipped").count() == 0  # an outage skips nothing
            assert await Delivery.all().count() == 0 and received(telegram) == []
            relay.up()
            await until(lambda: len(received(telegram)) == 25, "all 25 stories", timeout=120)
            await rows_become(Delivery.filter(chat_id=OWNER, state="sent"), 25)
            expected_shas = [sha(instagram.expected_bytes(s.image_url)) for s in new]
            assert [r.sha256 for r in received(telegram)] == expected_shas  # each once, in order
            assert await Delivery.filter(state="skipped").count() == 0
            assert not [m for m in world.bot_messages() if "more files of" in m.plain]
            assert telegram.rate_limited == 0, too_many(telegram)


async def test_first_sync_during_an_outage_keeps_the_limit_and_the_line_reaches_the_chat(parts, data_dir):
    telegram = parts[0]
    async with bot(parts, data_dir, notify_backlog_limit=4, notify_retry_interval=1) as world:
        await world.reply("/add alice media")
        # Telegram's back end is in trouble: every file is answered 502 for a while.
        telegram.bad_gateway.update({"sendPhoto": 0, "sendVideo": 0, "sendMediaGroup": 0})
        mark = world.say("/download alice")
        await finished(world, mark)
        for _ in range(3):  # three passes (the run's own and two pick-ups) end in the outage
            mark = len(telegram.calls)
            await failed_call(telegram, "sendVideo", mark, status=502)
        assert await Delivery.all().count() == 0  # nothing skipped, nothing counted
        assert not [m for m in world.bot_messages() if "more files of" in m.plain]
        telegram.bad_gateway.clear()
        line = await world.message_with("…and 6 more files of @alice in the archive.", timeout=60)
        # The newest that fit in 4 files (post 1, post 0, the story), then the line.
        media = [m for m in world.bot_messages() if m.media_type]
        assert len(media) == 3 and len(received(telegram)) == 3
        assert line.message_id > max(m.message_id for m in media)
        await rows_become(Delivery.filter(state="skipped"), 6)
        assert await Delivery.filter(state="sent").count() == 3
        lines = [m for m in world.bot_messages() if "more files of" in m.plain]
        assert len(lines) == 1
        assert telegram.rate_limited == 0, too_many(telegram)
