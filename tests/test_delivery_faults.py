"""Delivery when Telegram fails: network trouble loses nothing, refusals stay bounded."""

from __future__ import annotations

import pytest

from db.models import Delivery
from tests.delivery_kit import GROUP, MB, bot, failed_call, finished, received, sha, too_many, world_parts
from tests.fakes.instagram import (
    NEWEST,
    FakeChild,
    FakePost,
    FakeStoryItem,
)
from tests.harness import OWNER


@pytest.fixture
def parts(net, tmp_path):
    """Fake Telegram, Instagram (alice: 6 posts, 1 story, no highlights) and TikTok."""
    with world_parts(net, tmp_path) as found:
        yield found


def long_carousel(pk: int, files: int = 12) -> FakePost:
    """A carousel of more than 10 files: two albums."""
    children = [FakeChild(pk + 1 + n, is_video=n == 4) for n in range(files)]
    return FakePost(pk, "carousel", NEWEST + 86_400, "Twelve", children=children)


def urls(post: FakePost) -> list[str]:
    return [child.video_url or child.image_url for child in post.children]


async def test_a_telegram_outage_loses_nothing_and_the_first_album_is_not_sent_again(parts, data_dir):
    telegram, instagram, _, _ = parts
    alice = instagram.profiles["alice"]
    async with bot(parts, data_dir, notify_retry_interval=1) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
        carousel = long_carousel(3_400_000_000_000_000_000)
        story = FakeStoryItem(3_600_000_000_000_000_051, taken_at=NEWEST + 2 * 86_400)
        alice.posts.insert(0, carousel)
        alice.stories.append(story)
        # Telegram takes the first album, then answers 502 to albums and photos for a while.
        telegram.bad_gateway.update({"sendMediaGroup": 1, "sendPhoto": 0})
        mark = world.say("/download alice")
        await finished(world, mark)
        for _ in range(5):  # the periodic pick-up tries again: more runs than the 3 attempts
            mark = len(telegram.calls)
            await failed_call(telegram, "sendMediaGroup", mark, status=502)
        assert await Delivery.filter(state__in=("failed", "given_up")).count() == 0  # nothing counted
        assert await Delivery.filter(chat_id=OWNER, state="sent").count() == 10  # the first album, at once
        telegram.bad_gateway.clear()  # Telegram is back: delivered without a restart or a new run
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, timeout=30)
        expected = [sha(instagram.expected_bytes(u)) for u in [*urls(carousel), story.image_url]]
        assert [r.sha256 for r in received(telegram)] == expected  # every file once, in order
        albums = [c for c in telegram.calls if c.method == "sendMediaGroup" and c.status == 200]
        assert [len(c.result) for c in albums] == [10, 2]
        assert not [m for m in world.bot_messages() if "Could not send" in m.plain]
        # Later pick-ups and runs send only what is new.
        story2 = FakeStoryItem(3_600_000_000_000_000_052, taken_at=NEWEST + 3 * 86_400)
        alice.stories.append(story2)
        mark = world.say("/download alice")
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, timeout=30)
        expected.append(sha(instagram.expected_bytes(story2.image_url)))
        assert [r.sha256 for r in received(telegram)] == expected
        assert telegram.rate_limited == 0, too_many(telegram)


async def test_a_line_for_an_oversize_file_refused_by_the_chat_is_bounded(parts, data_dir):
    telegram, instagram, _, _ = parts
    alice = instagram.profiles["alice"]
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        mark = len(telegram.calls)
        telegram.send_message(OWNER, "/notify alice media", chat_id=GROUP, chat_type="group")
        await telegram.await_for("sendMessage", chat_id=GROUP, after=mark)
        telegram.blocked.add(GROUP)  # the bot was removed from the group
        big = FakePost(3_200_000_000_000_000_000, "video", NEWEST + 86_400, "Long video", video_size=60 * MB)
        alice.posts.insert(0, big)
        for _ in range(3):  # the line naming the file: refused in three runs, then given up
            mark = world.say("/download alice")
            await finished(world, mark)
            await failed_call(telegram, "sendMessage", mark, status=403)
        # A fourth run: only the next new story is tried, not the line again.
        alice.stories.append(FakeStoryItem(3_600_000_000_000_000_061, taken_at=NEWEST + 2 * 86_400))
        mark = world.say("/download alice")
        await failed_call(telegram, "sendPhoto", mark, status=403)
        refused = [c for c in telegram.calls if c.status == 403 and c.params.get("chat_id") == GROUP]
        lines = [c for c in refused if c.method == "sendMessage" and "60.0 MB" in str(c.params["text"])]
        assert len(lines) == 3, [c.params.get("text") for c in refused]
        assert [c.method for c in refused].count("sendMessage") == 4  # the 3 lines and the one report
        assert await Delivery.filter(chat_id=GROUP, state="given_up").count() == 1
        assert [c for c in telegram.calls if c.method == "sendVideo"] == []  # never uploaded
        assert telegram.rate_limited == 0, too_many(telegram)
