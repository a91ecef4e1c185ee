"""A TikTok photo post in chat: the status summary, /notify media (album + audio), /latest and /list."""

from __future__ import annotations

import pytest

from db.models import Delivery
from tests.delivery_kit import bot, finished, received, rows_become, sha, world_parts
from tests.fakes.tiktok import NEWEST, FakePost, post_id_for
from tests.harness import OWNER


@pytest.fixture
def parts(net, tmp_path):
    """Fake Telegram, Instagram and TikTok (painter: 2 videos)."""
    with world_parts(net, tmp_path) as found:
        found[2].add_account("painter", videos=2)
        yield found


def new_photo_post(desc: str = "Three <b>slides</b> & a song") -> FakePost:
    """A photo post of 3 slides with a sound, newer than every generated post."""
    created = NEWEST + 3600
    return FakePost(post_id_for("painter", created, 99), created, desc=desc, photo=True, slides=3)


async def test_a_new_photo_post_arrives_as_one_album_then_its_sound(parts, data_dir):
    telegram, _, tiktok, _ = parts
    async with bot(parts, data_dir) as world:
        await world.reply("/add painter tiktok")
        await finished(world, world.say("/download painter tiktok"))
        answer = await world.reply("/notify painter tiktok media")
        assert "New files of @painter (TikTok) will be sent to this chat" in answer
        post = new_photo_post()
        tiktok.accounts["painter"].posts.insert(0, post)

        mark = world.say("/download painter tiktok")
        status = await finished(world, mark)
        audio = await telegram.await_for("sendAudio", chat_id=OWNER, after=mark, timeout=60)

        assert "Completed: 0 videos + 1 photo post (3 images)" in status.params["text"]
        sends = [
            c for c in telegram.calls[mark:] if c.method.startswith("send") and c.method != "sendMessage"
        ]
        assert [c.method for c in sends] == ["sendMediaGroup", "sendAudio"]
        album = sends[0].params["media"]
        assert [item["type"] for item in album] == ["photo", "photo", "photo"]
        caption = album[0]["caption"]
        assert "@painter (TikTok) · photo post" in caption and "Three &lt;b&gt;slides&lt;/b&gt;" in caption
        assert f"https://www.tiktok.com/@painter/photo/{post.id}" in caption
        assert not audio.params.get("caption")  # the caption went with the album
        files = [(r.method, r.kind, r.sha256) for r in received(telegram)]
        assert files == [
            ("sendMediaGroup", "photo", sha(post.content("1"))),
            ("sendMediaGroup", "photo", sha(post.content("2"))),
            ("sendMediaGroup", "photo", sha(post.content("3"))),
            ("sendAudio", "audio", sha(post.content("sound"))),
        ]
        await rows_become(Delivery.filter(state="sent"), 4)  # stored once Telegram confirmed each

        # /latest: the same post from the archive, by the file_ids Telegram gave (no upload, no TikTok).
        tiktok.internet.clear()
        mark = world.say("/latest painter tiktok 1")
        await telegram.await_for("sendAudio", chat_id=OWNER, after=mark, timeout=30)
        methods = [c.method for c in telegram.calls[mark:] if c.method.startswith("send")]
        assert methods == ["sendMediaGroup", "sendAudio"]
        assert len(received(telegram)) == 4 and tiktok.internet.requests == []

        listing = await world.reply("/list")
        assert "@painter — synced" in listing and "2 videos, 1 photo post (3 images)" in listing
