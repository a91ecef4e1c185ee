"""Logging in from chat: a sent cookies.txt or session file, checked, stored 0600, used from then on."""

from __future__ import annotations

import asyncio
import os
import pickle
import stat

import pytest

from db import queries
from db.models import MediaItem
from downloader.login import SETTING
from tests.chat import World
from tests.fakes.instagram import (
    HASH_TEST_LOGIN,
    FakeInstagram,
    make_profile,
    write_cookies_txt,
    write_session_file,
)
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, STRANGER, TOKEN, make_settings, running_bot


class _Hostile:
    """A pickle that would run a shell command if loaded with pickle.load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=3, highlights=()))
    return fake


@pytest.fixture
def telegram():
    with FakeTelegram(TOKEN) as fake:
        yield fake


def settings_for(data_dir, net, telegram, **extra):
    return make_settings(data_dir, net=net, telegram=telegram, status_edit_interval=0.6, **extra)


async def send_file(world: World, name: str, data: bytes, user: int = OWNER) -> tuple[str, int]:
    """Send a document as ``user``; return the bot's answer and the id of the message with the file."""
    mark = len(world.telegram.calls)
    sent = world.telegram.send_document(user, name, data)
    call = await world.telegram.await_for("sendMessage", chat_id=user, after=mark, timeout=20)
    return call.params["text"], sent["message"]["message_id"]


def login_files(data_dir) -> list:
    folder = data_dir / "sessions"
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_good_cookies_file_logs_in_at_once_and_after_a_restart(
    net, data_dir, tmp_path, instagram, telegram
):
    session = instagram.login("newbot", 555)
    cookies = write_cookies_txt(tmp_path / "cookies.txt", session).read_bytes()
    async with running_bot(settings_for(data_dir, net, telegram)) as app:  # no login configured
        world = World(telegram, instagram, FakeTikTok(net), app)
        assert "send me one of these files" in (await world.reply("/login")).lower()
        await world.reply("/download alice")
        first = await world.message_with("Completed:")
        assert "stories: skipped" in first.plain  # anonymous: no stories
        before = instagram.api_count()
        answer, file_message = await send_file(world, "cookies.txt", cookies)
        assert answer.startswith("Logged in to Instagram as @newbot")
        assert "deleted your message holding the file" in answer
        assert telegram.message(OWNER, file_message).deleted
        assert instagram.calls()[before:] == [f"GET /graphql/query {HASH_TEST_LOGIN}"]  # one request
        [stored] = login_files(data_dir)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
        text = stored.read_text()
        assert session.sessionid in text and "example.org" not in text  # other sites' cookies dropped
        assert await queries.get_setting(SETTING) == f"sessions/{stored.name}"
        await world.reply("/download alice")
        second = await world.message_with("Completed: 0 posts + 2 stories/highlights")
        assert "stories: 2 new" in second.plain  # logged in now
    # A restart (no login in the settings at all) still uses the file sent in chat.
    instagram.add_profile(make_profile("alice", 1001, posts=3, stories=3, highlights=()))
    async with running_bot(settings_for(data_dir, net, telegram)) as app:
        world = World(telegram, instagram, FakeTikTok(net), app)
        await world.reply("/download alice stories")
        await world.message_with("Completed: 1 story")
        assert await MediaItem.filter(kind="story").count() == 3


async def test_session_file_beats_the_configured_login(net, data_dir, tmp_path, instagram, telegram):
    old = write_session_file(tmp_path / "session-oldbot", instagram.login("oldbot", 1))
    new = write_session_file(tmp_path / "session-newbot", instagram.login("newbot", 2))
    settings = settings_for(data_dir, net, telegram, instagram_session_file=old)
    async with running_bot(settings) as app:
        world = World(telegram, instagram, FakeTikTok(net), app)
        answer, _ = await send_file(world, "session-newbot", new.read_bytes())
        assert "as @newbot" in answer
        source = app.bot_data.service.sources["instagram"]
        assert await asyncio.to_thread(source.check_login) == "newbot"
    async with running_bot(settings) as app:  # INSTAGRAM_SESSION_FILE still names the old one
        source = app.bot_data.service.sources["instagram"]
        assert await asyncio.to_thread(source.check_login) == "newbot"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.pdf", b"%PDF-1.7 binary \x00\x01", "neither a cookies.txt"),
        (
            "cookies.txt",
            b"# Netscape HTTP Cookie File\n.example.org\tTRUE\t/\tTRUE\t0\tsid\tx\n",
            "no instagram.com",
        ),
        (
            "cookies.txt",
            b".instagram.com\tTRUE\t/\tTRUE\t0\tcsrftoken\tabc\n.instagram.com\tTRUE\t/\tTRUE\t0\tmid\tm\n",
            "no Instagram sessionid cookie",
        ),
        ("session-x", pickle.dumps(["not", "a", "dict"]), "neither a cookies.txt"),
        ("big.txt", b"#" * (65 * 1024), "at most 64 KB"),
    ],
)
async def test_bad_files_are_refused_and_change_nothing(
    net, data_dir, tmp_path, instagram, telegram, name, content, expected
):
    async with running_bot(settings_for(data_dir, net, telegram)) as app:
        world = World(telegram, instagram, FakeTikTok(net), app)
        source = app.bot_data.service.sources["instagram"]
        answer, file_message = await send_file(world, name, content)
        assert expected in answer and "othing changed" in answer
        # Refused files may hold secrets too: deleted from the chat all the same.
        assert "deleted your message holding the file" in answer
        assert telegram.message(OWNER, file_message).deleted
        assert app.bot_data.service.sources["instagram"] is source
        assert login_files(data_dir) == [] and await queries.get_setting(SETTING) is None
        assert instagram.api_count() == 0
        if name == "big.txt":  # refused by its size: never fetched from Telegram
            assert not [c for c in telegram.calls if c.method == "getFile"] and telegram.downloads == []


async def test_hostile_pickle_runs_nothing(net, data_dir, tmp_path, instagram, telegram):
    marker = tmp_path / "pwned"
    async with running_bot(settings_for(data_dir, net, telegram)) as app:
        world = World(telegram, instagram, FakeTikTok(net), app)
        answer, _ = await send_file(world, "session-evil", pickle.dumps(_Hostile(marker)))
    assert "neither a cookies.txt" in answer
    assert not marker.exists() and login_files(data_dir) == []


async def test_stranger_file_is_never_downloaded(net, data_dir, tmp_path, instagram, telegram):
    cookies = write_cookies_txt(tmp_path / "cookies.txt", instagram.login()).read_bytes()
    async with running_bot(settings_for(data_dir, net, telegram)) as app:
        world = World(telegram, instagram, FakeTikTok(net), app)
        answer, _ = await send_file(world, "cookies.txt", cookies, user=STRANGER)
        assert "not allowed" in answer
        await world.reply("/help")  # a marker: the stranger's update is fully handled
    assert not [c for c in telegram.calls if c.method in ("getFile", "deleteMessage")]
    assert telegram.downloads == [] and login_files(data_dir) == []


async def test_expired_files_keep_the_old_login_and_expiry_asks_for_a_new_file(
    net, data_dir, tmp_path, instagram, telegram
):
    current = instagram.login("oldbot", 1)
    old_file = write_session_file(tmp_path / "session-oldbot", current)
    settings = settings_for(data_dir, net, telegram, instagram_session_file=old_file)
    stale = instagram.login("stalebot", 3)
    instagram.expire_session(stale)
    async with running_bot(settings) as app:
        world = World(telegram, instagram, FakeTikTok(net), app)
        before = instagram.api_count()
        stale_file = write_cookies_txt(tmp_path / "c.txt", stale).read_bytes()
        answer, _ = await send_file(world, "cookies.txt", stale_file)
        assert answer.startswith("That login did not work: The Instagram session has expired")
        assert "I keep using the current login" in answer and "deleted your message" in answer
        assert instagram.api_count() - before == 1
        assert login_files(data_dir) == [] and await queries.get_setting(SETTING) is None
        await world.reply("/download alice stories")
        await world.message_with("Completed: 2 stories")  # still the old, working login
        instagram.expire_session(current)
        await world.reply("/download alice highlights")
        failed = await world.message_with("Failed:")
        assert "send me a new cookies.txt or session file (/login explains how)" in failed.plain


async def test_a_login_that_cannot_be_stored_is_explained_and_its_message_deleted(
    net, data_dir, tmp_path, instagram, telegram
):
    cookies = write_cookies_txt(tmp_path / "cookies.txt", instagram.login()).read_bytes()
    async with running_bot(settings_for(data_dir, net, telegram)) as app:
        (data_dir / "sessions").write_text("not a folder")  # the disk refuses: no folder can be made
        world = World(telegram, instagram, FakeTikTok(net), app)
        source = app.bot_data.service.sources["instagram"]
        answer, file_message = await send_file(world, "cookies.txt", cookies)
        assert answer.startswith("I could not store that login on the server")
        assert "deleted your message holding the file" in answer and "Traceback" not in answer
        assert telegram.message(OWNER, file_message).deleted
        assert app.bot_data.service.sources["instagram"] is source
        assert await queries.get_setting(SETTING) is None and instagram.api_count() == 0
        assert not [m for m in world.bot_messages() if "something went wrong" in m.plain]


async def test_a_login_file_in_a_group_is_never_downloaded(net, data_dir, tmp_path, instagram, telegram):
    group = -100500600
    cookies = write_cookies_txt(tmp_path / "cookies.txt", instagram.login()).read_bytes()
    async with running_bot(settings_for(data_dir, net, telegram)):
        mark = len(telegram.calls)
        sent = telegram.send_document(OWNER, "cookies.txt", cookies, chat_id=group)
        call = await telegram.await_for("sendMessage", chat_id=group, after=mark, timeout=20)
        assert call.params["text"] == (
            "Send login files to me in a private chat only, never in a group. I could not delete "
            "your message holding the file: please delete it yourself."
        )
        [delete] = [c for c in telegram.calls if c.method == "deleteMessage"]
        assert delete.params["message_id"] == sent["message"]["message_id"] and delete.status == 400
        # The group's other files and strangers' files get no answer at all.
        telegram.send_document(OWNER, "holiday.pdf", b"%PDF-1.7", chat_id=group)
        telegram.send_document(STRANGER, "cookies.txt", cookies, chat_id=group)
        mark = len(telegram.calls)
        telegram.send_message(OWNER, "/help", chat_id=group, chat_type="group")
        await telegram.await_for("sendMessage", chat_id=group, after=mark, timeout=20)  # a marker
        answers = [c for c in telegram.calls if c.method == "sendMessage" and c.params["chat_id"] == group]
        assert len(answers) == 2  # the one sentence and /help
        assert len([c for c in telegram.calls if c.method == "deleteMessage"]) == 1
    assert not [c for c in telegram.calls if c.method == "getFile"] and telegram.downloads == []
    assert login_files(data_dir) == [] and instagram.api_count() == 0
