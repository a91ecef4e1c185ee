"""A TikTok photo post in the gallery: one tile among the videos, its slides in order, then its sound."""

from __future__ import annotations

import re

from db.models import Account, MediaItem
from tests.fakes.tiktok import NEWEST, FakePost, post_id_for


async def test_a_photo_post_is_one_tile_and_its_page_shows_slides_then_sound(gallery):
    created = NEWEST + 3600
    post = FakePost(post_id_for("bob.dance", created, 7), created, desc="Slides", photo=True, slides=3)
    gallery.tiktok.accounts["bob.dance"].posts.insert(0, post)
    await gallery.reply("/download https://www.tiktok.com/@bob.dance")
    await gallery.message_with("Completed: 3 videos + 1 photo post (3 images)")
    account = await Account.get(platform="tiktok", username="bob.dance")
    files = await MediaItem.filter(account=account, group_id=post.id)
    assert sorted(f.kind for f in files) == ["audio", "photo", "photo", "photo"]

    async with gallery.browser() as client:
        async with client.get(f"/accounts/{account.id}?tab=videos") as response:
            assert response.status == 200
            grid = await response.text()
        tiles = re.findall(r'href="/items/(\d+)"', grid)
        assert len(tiles) == 4  # 3 videos + 1 photo post, each once
        slides = {f.media_id: f.id for f in files}
        assert str(slides[f"{post.id}_1"]) == tiles[0]  # newest first, shown by its first slide

        async with client.get(f"/items/{slides[post.id]}") as response:  # opened from its sound
            page = await response.text()
        shown = re.findall(r'<(img|audio) [^>]*src="/files/(\d+)"', page)
        order = [f"{post.id}_1", f"{post.id}_2", f"{post.id}_3", post.id]
        assert shown == [
            ("img", str(slides[order[0]])),
            ("img", str(slides[order[1]])),
            ("img", str(slides[order[2]])),
            ("audio", str(slides[post.id])),
        ]
        async with client.get(f"/files/{slides[post.id]}") as response:
            assert await response.read() == post.content("sound")
