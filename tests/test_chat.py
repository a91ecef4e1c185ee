"""What the owner touches every day, through the strict fake Telegram and the real bot."""

from __future__ import annotations

import pytest

from db.models import Account, Job, MediaItem
from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import (
    OWNER,
    STRANGER,
    TOKEN,
    files_under,
    is_profile_picture,
    make_settings,
    media_on_disk,
    running_bot,
)


@pytest.fixture
async def world(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram with alice (30 posts), and a fake TikTok."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=30))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    tiktok = FakeTikTok(net, page_size=5)
    tiktok.add_account("bob.dance", videos=6)
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir,
            net=net,
            telegram=telegram,
            instagram_session_file=session,
            status_edit_interval=1.2,
            download_retries=0,
        )
        async with running_bot(settings) as app:
            yield World(telegram, instagram, tiktok, app)


async def test_download_flow_edits_one_status_message(world, data_dir):
    intro = await world.reply("/download alice")
    assert intro.startswith("Download started - including posts, stories, and highlights!")
    assert "not tracked" in intro  # a one-time download says so
    final = await world.message_with("Completed:", timeout=60)
    assert "Completed: 30 posts (44 files) + 8 stories/highlights" in final.plain
    status_messages = [m for m in world.bot_messages() if "@alice" in m.plain and "Instagram" in m.plain]
    assert len(status_messages) == 1 and final.edits >= 1  # ONE message that edited itself
    assert "posts: 30 new (44 files)" in final.plain and "highlights: 6 new" in final.plain
    assert world.buttons(final) == {}  # nothing to press on a finished job
    on_disk = files_under(data_dir / "downloads" / "instagram" / "alice")
    media = [n for n in on_disk if not n.endswith(".json") and not is_profile_picture(n)]
    assert len(media) == 52 == await MediaItem.all().count()
    assert world.telegram.rate_limited == 0


async def test_tiktok_download_shows_only_the_videos_phase(world, data_dir):
    intro = await world.reply("/download https://www.tiktok.com/@bob.dance")
    assert intro.startswith("Download started - TikTok videos and photo posts!")
    final = await world.message_with("Completed:")
    assert "Completed: 6 videos" in final.plain
    assert "stories" not in final.plain and "highlights" not in final.plain
    assert len(list((data_dir / "downloads" / "tiktok" / "bob.dance" / "videos").glob("*.mp4"))) == 6


async def test_second_download_points_at_the_running_one(world):
    gate = world.instagram.media_gate
    gate.hold_after(0)  # the download waits mid-file: still running
    await world.reply("/download alice")
    status = await world.message_with("@alice · Instagram")
    mark = world.say("/download @alice")
    again = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    assert "already downloading" in again.params["text"]
    assert again.params["reply_parameters"]["message_id"] == status.message_id
    assert await Job.filter(kind="download").count() == 1
    status_text = await world.reply("/status")  # answers at once while the download runs
    assert "@alice" in status_text and "running" in status_text
    await world.press(status, "Cancel")
    gate.open()
    await world.message_with("Cancelled:")


async def test_pause_resume_and_cancel_buttons(world, data_dir):
    gate = world.instagram.media_gate
    gate.hold_after(0)  # the download waits mid-file until the Pause is pressed
    await world.reply("/download alice")
    status = await world.message_with("@alice · Instagram")
    await world.message_with("Downloading @alice posts")
    await gate.until_held()
    assert "Pausing" in await world.press(status, "Pause")
    gate.open()
    paused = await world.message_with("Paused")
    assert set(world.buttons(paused)) == {"▶️ Resume", "⏹ Cancel"}
    assert (await Job.get(message_id=status.message_id)).state == "paused"
    assert "Resuming" in await world.press(paused, "Resume")
    final = await world.message_with("Completed:")
    assert final.message_id == status.message_id  # the same message carried on
    assert "Completed: 30 posts (44 files) + 8 stories/highlights" in final.plain
    job = await Job.get(message_id=status.message_id)
    old_press = await world.press_data(final, f"job:pause:{job.id}")  # a stale Pause button
    assert "already finished" in old_press
    names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(names) == len(set(names)) == await MediaItem.all().count() == 52


async def test_cancel_keeps_finished_files(world, data_dir):
    gate = world.instagram.media_gate
    gate.hold_after(6)  # six files whole, then the download waits mid-file for the Cancel
    await world.reply("/download alice")
    status = await world.message_with("Downloading @alice posts")
    await gate.until_held()
    assert "Cancelling" in await world.press(status, "Cancel")
    gate.open()
    await world.message_with("Cancelled:")
    job = await Job.get(message_id=status.message_id)
    assert job.state == "cancelled"
    kept = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(kept) == await MediaItem.all().count()
    assert world.buttons(world.telegram.message(OWNER, status.message_id)) == {}
    assert "already finished" in await world.press_data(status, f"job:resume:{job.id}")


async def test_syncall_of_both_platforms_with_problems(world):
    world.instagram.add_profile(make_profile("hidden", 2002, private=True))
    world.instagram.add_profile(make_profile("carol", 3003, posts=3, highlights=()))
    world.tiktok.add_account("dave_tt", videos=2)
    world.tiktok.add_account("erin_tt", videos=3)
    for name in (
        "alice",
        "hidden",
        "carol",
        "ghost_user",
        "bob.dance tiktok",
        "dave_tt tiktok",
        "erin_tt tiktok",
    ):
        await world.reply(f"/add {name}")
    # ghost_user does not exist: /add refuses it, so track it as if it vanished later.
    assert not await Account.filter(username="ghost_user", tracked=True).exists()
    await Account.create(platform="instagram", username="ghost_user", tracked=True)
    await world.reply("/syncall")
    final = await world.message_with("Completed: ", timeout=90)
    text = final.plain
    assert "7/7 accounts" in text
    assert "@hidden" in text and "private" in text
    assert "@ghost_user" in text and "does not exist" in text
    assert "@dave_tt (TikTok): 2 new" in text and "@alice: 52 new" in text
    assert "with problems" in text
    assert world.telegram.rate_limited == 0, [
        (c.method, c.params.get("chat_id"), round(c.time, 2)) for c in world.telegram.calls if c.status == 429
    ]
    again = world.say("/syncall")
    await world.telegram.await_for("sendMessage", chat_id=OWNER, after=again)


async def test_add_list_remove(world, data_dir):
    added = await world.reply("/add https://www.instagram.com/alice/?hl=en")
    assert "Now tracking @alice" in added and "Alice Example" in added
    assert "already tracked" in await world.reply("/add alice")
    assert "does not exist" in await world.reply("/add nobody_at_all")
    listing = await world.reply("/list")
    assert "@alice" in listing and "never" in listing
    await world.reply("/download alice")
    await world.message_with("Completed: 30 posts (44 files)")
    listing = await world.reply("/list")  # counted as the status message counts them
    assert "30 posts (44 files), 2 stories, 6 highlight items" in listing
    mark = world.say("/remove alice")
    ask = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    question = world.telegram.message(OWNER, ask.result["message_id"])
    await world.press(question, "keep files")
    assert not (await Account.get(username="alice")).tracked
    assert (data_dir / "downloads" / "instagram" / "alice").exists()  # files kept
    assert "No tracked accounts" in await world.reply("/list")


async def test_list_pages_ten_at_a_time(world):
    for i in range(23):
        await Account.create(platform="tiktok", username=f"user_{i:02d}", tracked=True)
    mark = world.say("/list")
    sent = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    page = world.telegram.message(OWNER, sent.result["message_id"])
    assert "page 1/3" in page.plain and page.plain.count("• ") == 10
    await world.press(page, "Next")
    page = world.telegram.message(OWNER, page.message_id)
    assert "page 2/3" in page.plain and "user_10" in page.plain


@pytest.mark.parametrize(
    "command",
    [
        "/download",
        "/download ../../etc/passwd",
        "/download alice bob carol",
        "/download $(id)",
        "/download https://evil.example/alice",
        "/download " + "x" * 300,
        "/download alice youtube",
        "/add",
        "/add ; rm -rf /",
        "/remove",
        "/remove ..",
        "/pause %00",
        "/resume ../x",
        "/cancel <b>x</b>",
        "/syncall now",
        "/list 2",
        "/schedule every banana",
        "/download ａｌｉｃｅ",
    ],
)
async def test_bad_arguments_get_a_reason_and_change_nothing(world, data_dir, command):
    answer = await world.reply(command)
    assert answer and "Traceback" not in answer
    assert any(
        word in answer
        for word in (
            "Usage",
            "not a valid",
            "Only",
            "far too long",
            "Unknown",
            "no download",
            "not tracked",
            "is a",
        )
    ), answer
    assert await Job.all().count() == 0 and await Account.filter(tracked=True).count() == 0
    assert not (data_dir / "downloads").exists()  # not even the archive folder's marker
    assert world.instagram.api_count() == 0 and world.tiktok.count_listing() == 0


async def test_forged_button_cannot_touch_another_chats_job(world):
    await world.reply("/download bob.dance tiktok")
    await world.message_with("Completed:")
    job = await Job.filter(kind="download").first()
    other = STRANGER + 1
    world.app.bot_data.allowed_user_ids = frozenset({OWNER, other})
    mark = world.say("/help", user=other)
    sent = await world.telegram.await_for("sendMessage", chat_id=other, after=mark)
    mark = len(world.telegram.calls)
    world.telegram.press_button(other, sent.result["message_id"], f"job:retry:{job.id}", chat_id=other)
    answer = await world.telegram.await_for("answerCallbackQuery", after=mark)
    assert "not valid here" in answer.params["text"]
    assert await Job.filter(kind="download").count() == 1


async def test_syncall_pause_and_resume_keep_one_message_and_totals(world):
    await world.reply("/add alice")
    await world.reply("/add bob.dance tiktok")
    gate = world.instagram.media_gate
    gate.hold_after(0)  # alice's download waits mid-file until the Pause is pressed
    await world.reply("/syncall")
    status = await world.message_with("Sync all")
    await world.message_with("@alice posts…")  # alice is running
    await gate.until_held()
    assert "Pausing" in await world.press(status, "Pause")
    gate.open()
    paused = await world.message_with("Paused: ")
    assert paused.message_id == status.message_id
    assert set(world.buttons(paused)) == {"▶️ Resume", "⏹ Cancel"}
    assert "Resuming" in await world.press(paused, "Resume")
    final = await world.message_with("Completed: ")
    assert final.message_id == status.message_id  # the same message carried on
    assert "2/2 accounts" in final.plain
    assert "Completed: 58 new items from 2 accounts" in final.plain  # totals from before the pause too
    assert "@alice: 52 new" in final.plain and "@bob.dance (TikTok): 6 new" in final.plain
    assert await MediaItem.all().count() == 58
