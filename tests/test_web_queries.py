"""The gallery's queries on SQLite and PostgreSQL: pages of posts, stories, highlights, search, speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from db import gallery
from db.models import Account, Highlight, HighlightItem, MediaItem

START = datetime(2026, 1, 1, tzinfo=UTC)


def post_rows(
    account: Account, posts: int, *, caption: str = "Post {i}", first_id: int = 0
) -> list[MediaItem]:
    """``posts`` posts an hour apart; every third is a carousel of three files."""
    rows = []
    for i in range(posts):
        when, pk = START + timedelta(hours=i), str(3_000_000 + i)
        slides = [f"{pk}_{n}" for n in (1, 2, 3)] if i % 3 == 0 else [pk]
        for media_id in slides:
            rows.append(
                MediaItem(
                    platform="instagram",
                    media_id=media_id,
                    kind="post",
                    account=account,
                    taken_at=when,
                    path=f"downloads/instagram/{account.username}/posts/{media_id}.jpg",
                    group_id=f"code{i}",
                    group_size=len(slides),
                    caption=caption.format(i=i),
                )
            )
    return rows


async def test_posts_stories_highlights_and_search(any_db):
    alice = await Account.create(platform="instagram", username="alice", display_name="Alice Liddell")
    await Account.create(platform="instagram", username="bob")
    await MediaItem.bulk_create(post_rows(alice, 130, caption="Day {i} at the seaside"))
    stories = [
        MediaItem(
            platform="instagram",
            media_id=f"9{i}",
            kind="story",
            account=alice,
            taken_at=START + timedelta(hours=7 * i),
            path=f"downloads/instagram/alice/stories/9{i}.jpg",
        )
        for i in range(10)
    ]
    await MediaItem.bulk_create(stories)
    trip = await Highlight.create(
        platform="instagram", highlight_id="h1", account=alice, title="Trip", folder="Trip"
    )
    for media_id in ("93", "91", "95"):
        await HighlightItem.create(highlight=trip, media_id=media_id)

    pages = [await gallery.post_covers(alice, gallery.POST_KINDS, page, 60) for page in range(3)]
    assert [len(p) for p in pages] == [61, 61, 10]  # 60 a page, one more says "there is a next page"
    tiles = [*pages[0][:60], *pages[1][:60], *pages[2]]
    assert [t.group_id for t in tiles] == [f"code{i}" for i in range(129, -1, -1)]  # newest first, once
    assert all(t.media_id.endswith("_1") for t in tiles if t.group_size == 3)  # a carousel shows slide 1
    sizes = await gallery.group_sizes("instagram", ["code3", "code4"])
    assert sizes == {"code3": 3, "code4": 1}
    carousel = next(t for t in tiles if t.group_id == "code3")
    assert [f.media_id for f in await gallery.post_files(carousel)] == ["3000003_1", "3000003_2", "3000003_3"]
    newer, older = await gallery.neighbours(carousel)
    assert (newer.group_id, older.group_id) == ("code4", "code2")

    newest = await gallery.newest_items(alice, ("story",), 0, 60)
    assert [s.media_id for s in newest] == [f"9{i}" for i in range(9, -1, -1)]
    assert [(h.title, n) for h, n in await gallery.highlights(alice)] == [("Trip", 3)]
    assert [i.media_id for i in await gallery.highlight_items(trip, 0, 60)] == ["93", "91", "95"]
    assert await gallery.highlight_counts([alice.id]) == {alice.id: 3}
    assert await gallery.post_counts([alice.id]) == {alice.id: 130}
    assert [a.username for a in await gallery.accounts()] == ["alice", "bob"]

    accounts, items = await gallery.search("LIDDELL")
    assert [a.username for a in accounts] == ["alice"]
    accounts, items = await gallery.search("day 12 at")
    assert accounts == [] and [i.group_id for i in items] == ["code12"]  # a carousel's caption once
    assert (await gallery.search("day 99"))[1][0].media_id == "3000099_1"
    assert await gallery.search("%") == ([], [])  # a LIKE wildcard is a character, not "anything"


async def test_large_archive_pages_and_search_are_fast(any_db):
    """10,000 posts of one account and 100,000 captions: the queries a page makes, timed."""
    alice = await Account.create(platform="instagram", username="alice")
    rows = post_rows(alice, 10_000)  # 16,668 files
    others = [await Account.create(platform="instagram", username=f"user{n}") for n in range(9)]
    for n, other in enumerate(others):
        rows += [
            MediaItem(
                platform="instagram",
                media_id=f"{n}x{i}",
                kind="post",
                account=other,
                taken_at=START + timedelta(minutes=i),
                path=f"downloads/instagram/{other.username}/posts/{n}x{i}.jpg",
                group_id=f"{n}g{i}",
                caption=f"walk number {i} by the river" + (" lighthouse" if i == 4321 else ""),
            )
            for i in range(9_300)
        ]
    for start in range(0, len(rows), 5_000):
        await MediaItem.bulk_create(rows[start : start + 5_000])
    assert await MediaItem.all().count() == 16_668 + 9 * 9_300  # over 100,000 captions

    async def timed(call) -> float:
        await call()  # warm
        began = time.perf_counter()
        await call()
        return (time.perf_counter() - began) * 1000

    first = await timed(lambda: gallery.post_covers(alice, gallery.POST_KINDS, 0, 60))
    deep = await timed(lambda: gallery.post_covers(alice, gallery.POST_KINDS, 100, 60))
    search = await timed(lambda: gallery.search("lighthouse"))
    print(
        f"\n{any_db.split(':')[0]}: first page {first:.0f} ms, page 101 {deep:.0f} ms, search {search:.0f} ms"
    )
    found = {i.group_id for i in (await gallery.search("lighthouse"))[1]}
    assert found == {f"{n}g4321" for n in range(9)}
    # The aim is under 100 ms each (README, Web gallery); the bound leaves room for a loaded machine.
    assert max(first, deep, search) < 1_000
