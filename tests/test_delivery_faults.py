"""Delivery when Telegram fails: network trouble loses nothing, refusals stay bounded."""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest

from db.models import Delivery
from tests.delivery_kit import (
    GROUP,
    MB,
    WriteLock,
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
from tests.fakes.instagram import (
    NEWEST,
    FakeChild,
    FakePost,
    FakeStoryItem,
)
from tests.fakes.outage import Relay
from tests.harness import OWNER, TOKEN, make_settings, process_env, run_download, services_for
from tests.postgres import own_database, postgres_unavailable
from tests.process import BotProcess

OUTBOX = "delivery-outbox.json"


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


def story(number: int, day: int) -> FakeStoryItem:
    """A story newer than every generated one (the tray's time moves with it)."""
    return FakeStoryItem(3_600_000_000_000_000_100 + number, taken_at=NEWEST + day * 86_400)


async def archive_by_command_line(parts, data_dir, stories: list[FakeStoryItem], **settings) -> None:
    """New stories, downloaded by the command line while the bot is stopped."""
    _, instagram, _, session = parts
    instagram.profiles["alice"].stories.extend(stories)
    options = {"net": instagram.internet, "instagram_session_file": session, **settings}
    services = await services_for(make_settings(data_dir, **options))
    await run_download(services, "instagram", "alice")
    await services.close()


def shas(instagram, stories: list[FakeStoryItem]) -> list[str]:
    return [sha(instagram.expected_bytes(s.image_url)) for s in stories]


def is_photo_of(item: FakeStoryItem):
    return lambda call: str(item.pk) in call.params["photo"].filename


async def test_a_send_whose_database_write_failed_arrives_once_also_across_a_restart(parts, data_dir, caplog):
    telegram, instagram, _, _ = parts
    caplog.set_level(logging.INFO)
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
    first = [story(1, 1), story(2, 2)]
    await archive_by_command_line(parts, data_dir, first)
    lock = WriteLock(data_dir)
    telegram.on_sent = lock.on_sent  # Telegram takes the photo, then the database is locked
    outbox = data_dir / OUTBOX
    async with bot(parts, data_dir):  # the start's pick-up sends what the command line archived
        await until(lambda: "cannot store what Telegram confirmed" in caplog.text, "the failed write")
        [entry] = json.loads(outbox.read_text())
        assert entry["state"] == "sent" and entry["media_id"] == str(first[0].pk)
        assert len(received(telegram)) == 1  # the second waits while the first is not stored
        lock.release()
        await until(lambda: len(received(telegram)) == 2, "the second story")
        await until(lambda: not outbox.exists(), "the outbox to empty")
        assert "the database stores deliveries again" in caplog.text
        assert [r.sha256 for r in received(telegram)] == shas(instagram, first)
        assert await Delivery.filter(chat_id=OWNER, state="sent").count() == 2

    # Locked again at the next send, and the bot is stopped before the database took it.
    third = story(3, 3)
    await archive_by_command_line(parts, data_dir, [third])
    lock.arm()
    caplog.clear()
    async with bot(parts, data_dir):
        await until(lambda: "cannot store what Telegram confirmed" in caplog.text, "the failed write")
    assert json.loads(outbox.read_text())[0]["media_id"] == str(third.pk)  # kept across the stop
    lock.release()
    fourth = story(4, 4)
    async with bot(parts, data_dir) as world:
        instagram.profiles["alice"].stories.append(fourth)
        mark = world.say("/download alice")
        await telegram.await_for(
            "sendPhoto", chat_id=OWNER, after=mark, predicate=is_photo_of(fourth), timeout=60
        )
        await finished(world, mark)
        await until(lambda: not outbox.exists(), "the outbox to empty")
        # Every story once in the chat, in order, each recorded as sent.
        assert [r.sha256 for r in received(telegram)] == shas(instagram, [*first, third, fourth])
        photos = [c for c in telegram.calls if c.method == "sendPhoto"]
        assert len(photos) == 4 and all(c.status == 200 for c in photos)
        assert await Delivery.filter(chat_id=OWNER, state="sent").count() == 4
    assert "Traceback" not in caplog.text


async def test_a_send_whose_answer_was_lost_is_not_repeated_and_the_chat_is_told(parts, data_dir):
    telegram, instagram, _, _ = parts
    alice = instagram.profiles["alice"]
    async with bot(parts, data_dir, notify_retry_interval=1) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
        first = [story(11, 1), story(12, 2)]
        alice.stories.extend(first)
        # Telegram takes the first story's photo, and the connection breaks before its answer.
        telegram.hang_up["sendPhoto"] = 1
        mark = world.say("/download alice")
        note = await world.message_with("1 file of @alice may not have arrived", timeout=60)
        assert "not sent again" in note.plain and "in the archive" in note.plain
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, predicate=is_photo_of(first[1]))
        assert [c.answered for c in telegram.calls if c.method == "sendPhoto"] == [False, True]
        # Periodic pick-ups (every second) and the next run send only what is new.
        third = story(13, 3)
        alice.stories.append(third)
        mark = world.say("/download alice")
        await telegram.await_for(
            "sendPhoto", chat_id=OWNER, after=mark, predicate=is_photo_of(third), timeout=60
        )
        await finished(world, mark)
    async with bot(parts, data_dir) as world:  # and so does a restart
        fourth = story(14, 4)
        alice.stories.append(fourth)
        mark = world.say("/download alice")
        await telegram.await_for(
            "sendPhoto", chat_id=OWNER, after=mark, predicate=is_photo_of(fourth), timeout=60
        )
        await finished(world, mark)
        notes = [m for m in world.bot_messages() if "may not have arrived" in m.plain]
        assert [r.sha256 for r in received(telegram)] == shas(instagram, [*first, third, fourth])
        assert len([c for c in telegram.calls if c.method == "sendPhoto"]) == 4
        assert len(notes) == 1
        await rows_become(Delivery.filter(chat_id=OWNER, state="sent"), 3)
        assert await Delivery.filter(chat_id=OWNER, state="unconfirmed").count() == 1
        await until(lambda: not (data_dir / OUTBOX).exists(), "the outbox to empty")


async def test_a_bot_killed_mid_send_does_not_send_that_file_again(parts, net, data_dir, tmp_path):
    telegram, instagram, _, _ = parts
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
    stories = [story(21, 1), story(22, 2)]
    await archive_by_command_line(parts, data_dir, stories)
    # The real bot.py sends the first story at start; Telegram takes it and, before it can
    # answer, the bot is killed (kill -9).
    taken, answer = threading.Event(), threading.Event()
    telegram.on_sent = lambda call: (taken.set(), answer.wait(30))
    env = process_env(data_dir, net, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.url)
    child = BotProcess(tmp_path, env | {"ALLOWED_USER_IDS": str(OWNER), "SYNC_SCHEDULE": "off"})
    try:
        await until(taken.is_set, "the first story's send", timeout=60)
        [entry] = json.loads((data_dir / OUTBOX).read_text())
        assert entry["state"] == "sending" and entry["media_id"] == str(stories[0].pk)
    finally:
        child.kill()
        telegram.on_sent = None
        answer.set()
    async with bot(parts, data_dir) as world:  # started again: told, not sent again
        note = await world.message_with("1 file of @alice may not have arrived", timeout=60)
        await telegram.await_for("sendPhoto", chat_id=OWNER, predicate=is_photo_of(stories[1]), timeout=60)
        assert [r.sha256 for r in received(telegram)] == shas(instagram, stories)
        photos = [c for c in telegram.calls if c.method == "sendPhoto"]
        assert [c.status for c in photos] == [200, 200], telegram.calls_report()
        assert note.message_id < telegram.messages(OWNER)[-1].message_id  # told before the next file
        await rows_become(Delivery.filter(chat_id=OWNER, state="unconfirmed"), 1)
        await rows_become(Delivery.filter(chat_id=OWNER, state="sent"), 1)
        await until(lambda: not (data_dir / OUTBOX).exists(), "the outbox to empty")
    assert "Traceback" not in child.output


async def test_postgresql_cut_right_after_telegram_took_a_photo_loses_and_doubles_nothing(
    parts, data_dir, caplog
):
    reason = await postgres_unavailable()
    if reason:
        pytest.skip(reason)
    telegram, instagram, _, _ = parts
    async with own_database() as url:
        real = urlsplit(url)
        with Relay(real.port or 5432) as gate:
            gate.up()
            via = urlunsplit(real._replace(netloc=f"{real.username or 'postgres'}@127.0.0.1:{gate.port}"))
            async with bot(parts, data_dir, database_url=via) as world:
                await world.reply("/add alice")
                await finished(world, world.say("/download alice"))
                await world.reply("/notify alice media")
            stories = [story(31, 1), story(32, 2)]
            await archive_by_command_line(parts, data_dir, stories, database_url=via)
            cut = threading.Event()

            def cut_once(call) -> None:  # PostgreSQL goes away the moment Telegram has the photo
                if not cut.is_set():
                    cut.set()
                    gate.down()

            telegram.on_sent = cut_once
            async with bot(parts, data_dir, database_url=via):
                await until(lambda: "cannot store what Telegram confirmed" in caplog.text, "the failed write")
                assert len(received(telegram)) == 1
                assert json.loads((data_dir / OUTBOX).read_text())[0]["state"] == "sent"
                gate.up()
                await until(lambda: len(received(telegram)) == 2, "the second story")
                await until(lambda: not (data_dir / OUTBOX).exists(), "the outbox to empty")
                assert [r.sha256 for r in received(telegram)] == shas(instagram, stories)
                assert len([c for c in telegram.calls if c.method == "sendPhoto"]) == 2
                await rows_become(Delivery.filter(chat_id=OWNER, state="sent"), 2)
                assert caplog.text.count("cannot store what Telegram confirmed") == 1  # one line per outage
