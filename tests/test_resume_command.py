"""/resume continues one paused download at once, offers "Resume all" for several; the queued line."""

from __future__ import annotations

import asyncio

from db.models import Job, MediaItem
from tests.harness import OWNER, media_on_disk
from tests.test_phases import world  # noqa: F401 - the shared chat world (alice 30 posts, carol 3)


async def paused_messages(chat, count: int, timeout: float = 30) -> None:
    """Wait until ``count`` status messages in the chat world show the paused state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while sum("⏸ Paused" in m.plain for m in chat.bot_messages()) < count:
        assert asyncio.get_running_loop().time() < deadline, [m.plain for m in chat.bot_messages()]
        await asyncio.sleep(0.05)


async def test_resume_with_one_paused_download_continues_it(world, data_dir):  # noqa: F811
    gate = world.instagram.media_gate
    gate.hold_after(0)  # the download waits mid-file until /pause
    await world.reply("/download alice")
    status = await world.message_with("Downloading @alice posts")
    await gate.until_held()
    assert "Pausing" in await world.reply("/pause")
    gate.open()
    await world.message_with("Paused")
    assert await world.reply("/resume") == "Resuming."
    final = await world.message_with("Completed:")
    assert final.message_id == status.message_id  # the same status message carried on
    assert "Completed: 30 posts (44 files) + 8 stories/highlights" in final.plain
    names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 52
    assert "There is no download to resume." in await world.reply("/resume")


async def test_resume_with_two_offers_resume_all(world, data_dir):  # noqa: F811
    gate = world.instagram.media_gate
    gate.hold_after(0)  # alice's download waits mid-file until both are paused
    await world.reply("/download alice")
    await world.message_with("Downloading @alice posts")
    await gate.until_held()
    await world.reply("/download carol")
    # Only one Instagram download runs at a time, and carol's message says what it waits for.
    waiting = await world.message_with("@carol · Instagram")
    assert "Waiting for the running download of @alice to finish first." in waiting.plain
    assert "Pausing" in await world.reply("/pause carol")
    assert "Pausing" in await world.reply("/pause alice")
    gate.open()
    await paused_messages(world, 2)
    mark = world.say("/resume")
    sent = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    offer = world.telegram.message(OWNER, sent.result["message_id"])
    assert offer.plain == "Which one should I resume?"
    assert list(world.buttons(offer)) == ["▶️ Resume all (2)", "Resume @alice", "Resume @carol"]
    assert await world.press(offer, "Resume all") == "Resuming 2 downloads."
    await world.message_with("Completed: 30 posts (44 files) + 8 stories/highlights")
    await world.message_with("Completed: 3 posts (5 files) + 4 stories/highlights")
    names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 52 + 9
    assert await Job.filter(state="completed").count() == 2
    assert "no download to resume" in await world.press(offer, "Resume all")  # a second tap
    assert world.telegram.rate_limited == 0
