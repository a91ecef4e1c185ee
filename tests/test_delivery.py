"""New content comes to the chat: /notify, delivery after each run, /latest, through the strict fakes."""

from __future__ import annotations

import asyncio
import time

import pytest

from db.models import Account, Delivery, NotifySetting
from tests.delivery_kit import (
    GROUP,
    MB,
    bot,
    failed_call,
    finished,
    received,
    rows_become,
    sha,
    too_many,
    world_parts,
)
from tests.fakes.instagram import (
    NEWEST,
    FakeChild,
    FakeInstagram,
    FakePost,
    FakeStoryItem,
    make_profile,
    write_session_file,
)
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, TOKEN, make_settings, run_download, services_for


@pytest.fixture
def parts(net, tmp_path):
    """Fake Telegram, Instagram (alice: 6 posts, 1 story, no highlights) and TikTok."""
    with world_parts(net, tmp_path) as found:
        yield found


def new_carousel(pk: int, day: int = 1) -> FakePost:
    """A carousel (image, video, image) newer than every generated post."""
    children = [FakeChild(pk + 1), FakeChild(pk + 2, is_video=True), FakeChild(pk + 3)]
    return FakePost(
        pk, "carousel", NEWEST + day * 86_400, "New <b>carousel</b> & more #fresh", children=children
    )


def carousel_urls(post: FakePost) -> list[str]:
    return [child.video_url or child.image_url for child in post.children]


async def test_new_posts_and_story_arrive_once_across_a_restart(parts, data_dir):
    telegram, instagram, _, _ = parts
    alice = instagram.profiles["alice"]
    async with bot(parts, data_dir) as world:
        assert "Now tracking @alice" in await world.reply("/add alice")
        mark = world.say("/download alice")
        await finished(world, mark)
        assert received(telegram) == []  # nothing is sent without /notify
        answer = await world.reply("/notify alice media")
        assert "New files of @alice will be sent to this chat" in answer
        carousel = new_carousel(3_100_000_000_000_000_000)
        alice.posts.insert(0, carousel)
        story = FakeStoryItem(3_600_000_000_000_000_001, taken_at=NEWEST + 2 * 86_400)
        alice.stories.append(story)
        mark = world.say("/download alice")
        photo = await world.telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, timeout=60)
        album = world.telegram._find("sendMediaGroup", OWNER, None, mark)
        assert album is not None and len(album.result) == 3  # the carousel is one album
        assert photo.time > album.time  # oldest first: the post, then the newer story
        first = world.telegram.message(OWNER, album.result[0]["message_id"])
        assert first.plain.startswith("@alice · post · ")
        assert "New <b>carousel</b> & more #fresh" in first.plain  # HTML-escaped, shown as typed
        assert first.entities[-1]["url"] == f"https://www.instagram.com/p/{carousel.code}/"
        story_message = world.telegram.message(OWNER, photo.result["message_id"])
        assert story_message.plain.startswith("@alice · story · ")
        expected = [sha(instagram.expected_bytes(u)) for u in [*carousel_urls(carousel), story.image_url]]
        assert [r.sha256 for r in received(telegram)] == expected  # each file once, the right bytes
        assert [r.kind for r in received(telegram)] == ["photo", "video", "photo", "photo"]

    # A restart: nothing is sent again; only the next new story.
    async with bot(parts, data_dir) as world:
        story2 = FakeStoryItem(3_600_000_000_000_000_002, taken_at=NEWEST + 3 * 86_400)
        alice.stories.append(story2)
        mark = world.say("/download alice")
        await world.telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, timeout=60)
        await finished(world, mark)
        assert [r.sha256 for r in received(telegram)] == [
            *expected,
            sha(instagram.expected_bytes(story2.image_url)),
        ]
        assert world.telegram.rate_limited == 0, too_many(telegram)


async def test_too_large_video_becomes_a_line_and_photos_over_10_mb_go_as_documents(parts, data_dir):
    telegram, instagram, _, _ = parts
    alice = instagram.profiles["alice"]
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice media")
        mark = world.say("/download alice")
        # The first sync sends all 9 files (under the limit of 20), the story last.
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, predicate=_story, timeout=60)
        before = len(received(telegram))
        assert before == 9
        big = FakePost(3_200_000_000_000_000_000, "video", NEWEST + 86_400, "Long video", video_size=60 * MB)
        huge_photo = FakePost(3_200_000_000_000_000_100, "image", NEWEST + 2 * 86_400, image_size=11 * MB)
        alice.posts[:0] = [huge_photo, big]
        mark = world.say("/download alice")
        line = await world.telegram.await_for(
            "sendMessage", chat_id=OWNER, after=mark, predicate=lambda c: "Too large" in c.params["text"]
        )
        document = await world.telegram.await_for("sendDocument", chat_id=OWNER, after=mark, timeout=60)
        text = world.telegram.message(OWNER, line.result["message_id"]).plain
        assert "@alice · post" in text and "_3200000000000000000.mp4 (60.0 MB)" in text
        assert "limit 50.0 MB" in text and "in the archive" in text
        uploads = [c for c in world.telegram.calls[mark:] if c.method in ("sendVideo", "sendMediaGroup")]
        assert uploads == []  # the 60 MB video was never attempted
        assert document.result["document"]["file_size"] == 11 * MB
        assert received(telegram)[before:][0].sha256 == sha(instagram.expected_bytes(huge_photo.image_url))
        assert await Delivery.filter(state="too_large").count() == 1


async def test_first_sync_of_a_new_account_sends_at_most_the_backlog_limit(parts, data_dir):
    telegram, instagram, _, _ = parts
    async with bot(parts, data_dir, notify_backlog_limit=4) as world:
        answer = await world.reply("/add alice media")
        assert "New files of @alice will be sent to this chat" in answer
        world.say("/download alice")
        await world.message_with("…and 6 more files of @alice in the archive.", timeout=60)
        # 6 posts (image, video, carousel of 3, reel, image, video) and 1 story. The newest that
        # fit in 4 files: the story, post 0 and post 1; the carousel would make 6, so it stops there.
        assert len(received(telegram)) == 3
        await rows_become(Delivery.filter(state="skipped"), 6)  # settled once the line is in the chat
        # The next run sends nothing old again: only the one new story.
        story = FakeStoryItem(3_600_000_000_000_000_009, taken_at=NEWEST + 5 * 86_400)
        instagram.profiles["alice"].stories.append(story)
        mark = world.say("/download alice")
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, predicate=_story, timeout=60)
        assert len(received(telegram)) == 4 and received(telegram)[-1].sha256 == sha(
            instagram.expected_bytes(story.image_url)
        )
        assert telegram.rate_limited == 0, too_many(telegram)


async def test_summary_mode_says_one_line_and_nothing_when_nothing_is_new(parts, data_dir):
    telegram, instagram, _, _ = parts

    def summary(call) -> bool:
        return str(call.params.get("text", "")).startswith("@alice:")

    async with bot(parts, data_dir) as world:
        await world.reply("/add alice summary")
        mark = world.say("/download alice")
        line = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, predicate=summary)
        assert line.params["text"] == "@alice: 5 new posts, 1 new reel, 1 new story"
        mark = world.say("/download alice")  # nothing new: says nothing
        await finished(world, mark)
        newer = FakeStoryItem(3_600_000_000_000_000_009, taken_at=NEWEST + 86_400)  # moves the tray's time
        instagram.profiles["alice"].stories.append(newer)
        world.say("/download alice")
        line = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, predicate=summary)
        assert line.params["text"] == "@alice: 1 new story"  # the next summary is this run's
        assert received(telegram) == []  # summaries send no files


@pytest.mark.timeout(300)  # Telegram's 20 per minute in a group: the delivery alone takes over a minute
async def test_group_gets_forty_new_files_without_a_single_429(net, tmp_path, data_dir):
    instagram = FakeInstagram(net)
    # 26 posts (6 carousels of 3) = 38 files, and 2 stories: 40 new files.
    instagram.add_profile(make_profile("alice", 1001, posts=26, stories=2, highlights=()))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        parts = (telegram, instagram, FakeTikTok(net), session)
        async with bot(parts, data_dir, notify_backlog_limit=50) as world:
            await world.reply("/add alice media")
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/notify alice media", chat_id=GROUP, chat_type="group")
            await telegram.await_for("sendMessage", chat_id=GROUP, after=mark)
            await finished(world, world.say("/download alice"))
            # 20 messages per minute in a group, an album counting per file: over a minute.
            await media_messages(telegram, GROUP, 40, timeout=150)
            await media_messages(telegram, OWNER, 40, timeout=30)
            assert telegram.rate_limited == 0, too_many(telegram)
            assert len(telegram.received) == 40  # each file uploaded once, then sent by file_id
            assert len({r.sha256 for r in telegram.received}) == 40


async def media_messages(telegram: FakeTelegram, chat: int, count: int, timeout: float) -> None:
    """Wait until the bot has ``count`` photo/video messages in ``chat`` (never more)."""
    deadline = time.monotonic() + timeout
    while (found := len([m for m in telegram.messages(chat) if m.media_type])) < count:
        assert time.monotonic() < deadline, f"only {found} of {count} files in chat {chat}"
        await asyncio.sleep(0.1)
    assert found == count


async def test_latest_sends_the_newest_posts_from_the_archive(parts, data_dir):
    _, instagram, _, _ = parts
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        cdn_before = instagram.cdn_count()
        mark = world.say("/latest alice 3")
        # Newest first in the archive: the story, post 0 (image), post 1 (video); sent oldest first.
        await world.telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, predicate=_story)
        sends = [c.method for c in world.telegram.calls[mark:] if c.method.startswith("send")]
        assert sends == ["sendVideo", "sendPhoto", "sendPhoto"]
        assert instagram.cdn_count() == cdn_before  # from the archive, not fetched again
        assert await Delivery.all().count() == 0  # /latest does not touch what is pending


def _story(call) -> bool:
    return "story" in str(call.params.get("caption"))


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("/notify bob media", "@bob is not tracked: /add bob media"),
        ("/notify alice loud", "Unknown option 'loud': use media, summary or off."),
        ("/notify ../../etc media", "is not a valid instagram name"),
        ("/notify media", "Usage: /notify"),
        ("/notify alice media summary", "Usage: /notify"),
        ("/latest", "Usage: /latest"),
        ("/latest alice 11", "Choose between 1 and 10"),
        ("/latest alice 0", "Choose between 1 and 10"),
        ("/latest alice many", "'many' is not a number of items"),
        ("/latest <b>x</b>", "is not a valid instagram name"),
        ("/latest nobody", "Nothing of @nobody is in the archive yet"),
    ],
)
async def test_bad_input_gets_one_sentence_and_changes_nothing(parts, data_dir, command, needle):
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        answer = await world.reply(command)
        assert needle in answer and "Traceback" not in answer
        assert await NotifySetting.all().count() == 0
        assert await Delivery.all().count() == 0 and world.telegram.received == []


async def test_notify_lists_settings_with_buttons_that_change_them(parts, data_dir):
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await Account.create(platform="tiktok", username="bob.dance", tracked=True)
        mark = world.say("/notify")
        sent = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
        listing = world.telegram.message(OWNER, sent.result["message_id"])
        assert "• @alice: off" in listing.plain and "• @bob.dance (TikTok): off" in listing.plain
        answer = await world.press(listing, "@alice media")
        assert "New files of @alice will be sent" in answer
        listing = world.telegram.message(OWNER, listing.message_id)
        assert "• @alice: media" in listing.plain and "✓ @alice media" in world.buttons(listing)
        assert "not tracked any more" in await world.press_data(listing, "notify:999:media:0")
        assert "not valid" in await world.press_data(listing, "notify:1:loud:0")
        assert "Already so" in await world.reply("/notify alice media")
        assert "No more messages about @alice" in await world.reply("/notify alice off")
        assert (await NotifySetting.get(chat_id=OWNER)).mode == "off"


async def test_a_refused_file_is_tried_three_times_then_reported_once(parts, data_dir):
    telegram, instagram, _, _ = parts
    stories = instagram.profiles["alice"].stories
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
        telegram.max_photo_size = 1000  # Telegram refuses this story's photo (3000 bytes)
        stories.append(FakeStoryItem(3_600_000_000_000_000_011, taken_at=NEWEST + 86_400))
        for _ in range(2):
            await failed_call(telegram, "sendPhoto", world.say("/download alice"))
        mark = world.say("/download alice")
        report = await world.message_with("Could not send 1 file of @alice after 3 tries", timeout=60)
        assert "photo is too big" in report.plain and "in the archive" in report.plain
        # A fourth run does not try it again: only the next new story (a video) is sent.
        stories.append(FakeStoryItem(3_600_000_000_000_000_012, is_video=True, taken_at=NEWEST + 2 * 86_400))
        mark = world.say("/download alice")
        await telegram.await_for("sendVideo", chat_id=OWNER, after=mark, timeout=60)
        attempts = [c for c in telegram.calls if c.method == "sendPhoto" and c.status == 400]
        assert len(attempts) == 3
        reports = [m for m in world.bot_messages() if "Could not send" in m.plain]
        assert len(reports) == 1 and await Delivery.filter(state="given_up").count() == 1
        assert telegram.rate_limited == 0, too_many(telegram)


async def test_a_blocked_chat_costs_one_attempt_per_run_and_is_only_logged(parts, data_dir, caplog):
    telegram, instagram, _, _ = parts
    stories = instagram.profiles["alice"].stories
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        mark = len(telegram.calls)
        telegram.send_message(OWNER, "/notify alice media", chat_id=GROUP, chat_type="group")
        await telegram.await_for("sendMessage", chat_id=GROUP, after=mark)
        await world.reply("/notify alice summary")
        telegram.blocked.add(GROUP)  # the bot was removed from the group
        for number in range(4):
            # Each new story is newer than every archived one (the tray's time moves each run).
            taken_at = NEWEST + (number + 1) * 3600
            stories.append(FakeStoryItem(3_600_000_000_000_000_020 + number, taken_at=taken_at))
            mark = world.say("/download alice")
            await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, predicate=_summary)
            await failed_call(telegram, "sendPhoto", mark, status=403)
        deadline = time.monotonic() + 30
        while len(refused := [c for c in telegram.calls if c.status == 403]) < 5:
            assert time.monotonic() < deadline, [c.method for c in refused]
            await asyncio.sleep(0.05)
        photos = [c.params["photo"].filename for c in refused if c.method == "sendPhoto"]
        # The oldest new story: tried in three runs, then given up; the fourth run tries the next one.
        assert len(photos) == 4 and photos[0] == photos[1] == photos[2] != photos[3]
        assert [c.method for c in refused].count("sendMessage") == 1  # the one report, refused too
        assert telegram.messages(GROUP)[-1].plain.startswith("New files of @alice")  # nothing else
        assert (
            "bot was blocked" in caplog.text
            and "Could not send 1 file of @alice after 3 tries" in caplog.text
        )
        assert await Delivery.filter(chat_id=GROUP, state="given_up").count() == 1


def _summary(call) -> bool:
    return str(call.params.get("text", "")).startswith("@alice:")


async def test_files_archived_while_the_bot_was_down_are_delivered_at_start(parts, data_dir):
    telegram, instagram, _, _ = parts
    async with bot(parts, data_dir) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
    story = FakeStoryItem(3_600_000_000_000_000_031, taken_at=NEWEST + 86_400)
    instagram.profiles["alice"].stories.append(story)
    # The command line downloads it while the bot is stopped.
    services = await services_for(
        make_settings(data_dir, net=instagram.internet, instagram_session_file=parts[3])
    )
    await run_download(services, "instagram", "alice")
    await services.close()
    mark = len(telegram.calls)
    async with bot(parts, data_dir) as world:
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, timeout=30)
        assert [r.sha256 for r in received(telegram)] == [sha(instagram.expected_bytes(story.image_url))]


async def test_local_bot_api_server_takes_large_files_by_path(parts, data_dir):
    telegram, instagram, _, _ = parts
    telegram.local_mode = True
    async with bot(parts, data_dir, telegram_local_mode=True) as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
        big = FakePost(3_300_000_000_000_000_000, "video", NEWEST + 86_400, "Long video", video_size=60 * MB)
        instagram.profiles["alice"].posts.insert(0, big)
        mark = world.say("/download alice")
        sent = await telegram.await_for("sendVideo", chat_id=OWNER, after=mark, timeout=60)
        assert sent.params["video"].startswith("file:///") and sent.params["video"].endswith(".mp4")
        [record] = received(telegram)
        assert record.by_path and record.size == 60 * MB
        assert record.sha256 == sha(instagram.expected_bytes(big.video_url))


async def test_stories_schedule_delivers_a_new_story_by_itself(parts, data_dir):
    telegram, instagram, _, _ = parts
    async with bot(parts, data_dir, schedule_min_interval=1, sync_schedule="off") as world:
        await world.reply("/add alice")
        await finished(world, world.say("/download alice"))
        await world.reply("/notify alice media")
        story = FakeStoryItem(3_600_000_000_000_000_041, taken_at=NEWEST + 86_400)
        instagram.profiles["alice"].stories.append(story)
        mark = world.say("/schedule stories every 2s")
        await telegram.await_for("sendPhoto", chat_id=OWNER, after=mark, predicate=_story, timeout=30)
        assert [r.sha256 for r in received(telegram)] == [sha(instagram.expected_bytes(story.image_url))]
