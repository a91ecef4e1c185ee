"""What vanished, told in the notify line once: posts deleted, highlights removed, gone,
a new name, a new profile picture (also sent as a photo in media mode); never twice, also
across a restart. The real bot against fake Telegram and Instagram."""

from __future__ import annotations

import contextlib

import pytest

from db import archive_state, queries
from db.models import Account, Highlight, HighlightItem, MediaItem, NotifySetting
from handlers.delivery import vanished
from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN, make_settings, running_bot


@pytest.fixture
async def world(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram with alice; ``world.restart()`` restarts the bot."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=4))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir, net=net, telegram=telegram, instagram_session_file=session, download_retries=0
        )
        async with contextlib.AsyncExitStack() as stack:
            world = World(telegram, instagram, None, await stack.enter_async_context(running_bot(settings)))

            async def restart() -> None:
                await stack.aclose()
                world.app = await stack.enter_async_context(running_bot(settings))

            world.restart = restart
            yield world


def said(world: World, needle: str) -> list[str]:
    return [m.plain for m in world.bot_messages() if needle in (m.plain or "")]


async def test_summary_line_tells_each_change_once_across_a_restart(world):
    assert "Now tracking" in await world.reply("/add alice summary")
    world.say("/download alice")
    await world.message_with("@alice: 3 new posts, 1 new reel")
    alice = world.instagram.profiles["alice"]
    alice.highlights.pop(0)
    alice.change_picture()
    group = (await MediaItem.filter(group_size=3).first()).group_id  # a carousel: one post, three files
    await MediaItem.filter(group_id=group).update(deleted_at=queries.now())  # as /check would

    world.say("/download alice")
    line = "@alice: 1 post deleted; 1 highlight removed; new profile picture"
    await world.message_with(line)

    await world.restart()
    world.instagram.rename("alice", "alice.new")
    world.say("/download alice")
    await world.message_with("@alice.new: now @alice.new")
    assert said(world, ": now @alice.new") == ["@alice.new: now @alice.new"]
    assert said(world, "deleted") == [line] and said(world, "profile picture") == [line]


async def test_media_mode_sends_the_new_picture_and_says_it_went_private_once(world):
    assert "Now tracking" in await world.reply("/add alice media")
    world.say("/download alice")
    await world.message_with("Completed:")
    alice = world.instagram.profiles["alice"]
    alice.change_picture()
    alice.is_private = True
    mark = world.say("/download alice")
    await world.message_with("@alice: went private; new profile picture")
    caption = "@alice: new profile picture"
    photo = await world.telegram.await_for(
        "sendPhoto", chat_id=OWNER, after=mark, predicate=lambda c: c.params.get("caption") == caption
    )
    assert photo.result["photo"]  # sent as a photo

    alice.is_private = False
    alice.change_picture()
    world.say("/download alice")
    # After the stories and highlights a private account hid (several sends at the chat's pace).
    await world.telegram.await_for(
        "sendMessage",
        chat_id=OWNER,
        after=mark,
        predicate=lambda c: c.params.get("text") == caption,
        timeout=60,
    )
    assert len(said(world, "went private")) == 1


@pytest.mark.parametrize("any_db", ["sqlite", "postgres"], indirect=True)
async def test_the_marks_and_the_told_moment_on_both_databases(any_db):
    account = await Account.create(platform="instagram", username="alice")
    setting = await NotifySetting.create(chat_id=OWNER, account=account, mode="summary", since=queries.now())
    kept = await archive_state.add_highlight(account, "1", "Kept", "Kept")
    gone = await archive_state.add_highlight(account, "2", "Gone", "Gone")
    await archive_state.add_members(kept, ["a", "b"])
    await archive_state.mark_tray(account, ["1"], queries.now())
    await archive_state.mark_members(kept, ["b"], queries.now())
    await MediaItem.create(
        platform="instagram", media_id="p1", kind="post", account=account, path="x", group_id="P"
    )
    await MediaItem.filter(media_id="p1").update(deleted_at=queries.now())
    account.gone, account.gone_since = "private", queries.now()
    await account.save()

    news = await vanished.take_news(setting, account)
    assert news.parts == [
        "1 post deleted",
        "1 highlight removed",
        "1 highlight item taken out",
        "went private",
    ]
    assert (await vanished.take_news(setting, account)).parts == []  # told once
    await archive_state.mark_tray(account, ["1", "2"], queries.now())
    assert (await Highlight.get(id=gone.id)).removed_at is None
    assert (await HighlightItem.get(media_id="a")).removed_at is not None
