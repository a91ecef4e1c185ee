"""A video's gallery tile is made from its cover; a video without one gets the placeholder tile.
Covers are never sent to chat and never counted as archived files."""

from __future__ import annotations

import io

from PIL import Image

from db.models import Account, MediaItem
from tests.fakes.stills import still_colour
from tests.fakes.tiktok import NEWEST, FakePost, post_id_for
from tests.harness import OWNER


def close(pixel, colour) -> bool:
    """JPEG keeps a flat colour within a few steps."""
    return all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True))


async def test_video_tiles_come_from_covers_and_covers_stay_out_of_chat_and_counts(gallery, data_dir):
    bob = gallery.tiktok.accounts["bob.dance"]
    refused = bob.posts[1]
    refused.cover_http = 403
    await gallery.reply("/add https://www.tiktok.com/@bob.dance")
    await gallery.reply("/download https://www.tiktok.com/@bob.dance")
    await gallery.message_with("Completed: 3 videos")
    assert gallery.tiktok.count_covers() == 3
    account = await Account.get(platform="tiktok", username="bob.dance")
    rows = {row.media_id: row for row in await MediaItem.filter(account=account)}
    assert len(rows) == 3

    async with gallery.browser() as client:
        for post in bob.posts:
            async with client.get(f"/thumbs/{rows[post.id].id}") as response:
                assert response.status == 200
                body = await response.read()
            if post is refused:  # no cover: the placeholder tile, never an error
                assert response.content_type == "image/svg+xml" and b"<svg" in body
                continue
            assert response.content_type == "image/jpeg"
            with Image.open(io.BytesIO(body)) as tile:
                assert tile.format == "JPEG" and max(tile.size) <= 320 and tile.size[1] > tile.size[0]
                centre = tile.convert("RGB").getpixel((tile.size[0] // 2, tile.size[1] // 2))
            assert close(centre, still_colour(post.id)), (centre, still_colour(post.id))
        async with client.get(f"/accounts/{account.id}?tab=videos") as response:
            assert (await response.text()).count('src="/thumbs/') == 3

    listing = await gallery.reply("/list")
    assert "3 videos" in listing and "image" not in listing  # covers are not archived files

    # Delivery sends the new video, never its cover.
    assert "will be sent" in await gallery.reply("/notify https://www.tiktok.com/@bob.dance media")
    created = NEWEST + 3600
    new = FakePost(post_id_for("bob.dance", created, 9), created, desc="Fresh one")
    bob.posts.insert(0, new)
    sent_before = len(gallery.telegram.received)
    mark = gallery.say("/download https://www.tiktok.com/@bob.dance")
    await gallery.telegram.await_for("sendVideo", chat_id=OWNER, after=mark, timeout=60)
    await gallery.message_with("Completed: 1 video")
    assert gallery.tiktok.count_covers() == 4  # the new video's cover, once
    sent = gallery.telegram.received[sent_before:]
    assert [r.kind for r in sent] == ["video"] and sent[0].size == new.size
    assert (data_dir / "covers" / "tiktok" / f"{new.id}.jpg").is_file()
