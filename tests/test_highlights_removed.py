"""Highlights removed on Instagram: the archive notes when (removed_at), keeps every file,
and spends no request beyond an ordinary sync's.

Real service, real API client, the fake Instagram logged in."""

from __future__ import annotations

import pytest

from db import queries
from db.models import Account, Highlight, HighlightItem, MediaItem
from tests.fakes.instagram import FakeInstagram, make_profile
from tests.harness import media_on_disk, run_download

TRAY = "GET i:/api/v1/highlights/1001/highlights_tray/"


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=4))
    return fake


async def removed(highlight_id: int):
    return (await Highlight.get(highlight_id=str(highlight_id))).removed_at


async def test_a_highlight_removed_then_back_and_an_item_taken_out(instagram, logged_in, data_dir, net):
    alice = instagram.profiles["alice"]
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    assert await Highlight.filter(removed_at__isnull=False).count() == 0
    assert await HighlightItem.all().count() == 6

    # Run 2: the second highlight is gone from the tray.
    gone = alice.highlights.pop(1)
    before = media_on_disk(data_dir)
    net.clear()
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    first_seen = await removed(gone.id)
    assert first_seen is not None
    assert [await removed(h.id) for h in alice.highlights] == [None, None]
    assert media_on_disk(data_dir) == before  # its files stay
    assert instagram.calls().count(TRAY) == 1 and not any("reels_media" in c for c in instagram.calls())

    # Run 2b: still missing: the first date is kept.
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    assert await removed(gone.id) == first_seen

    # Run 3: back in the tray.
    alice.highlights.insert(1, gone)
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    assert await removed(gone.id) is None

    # Run 4: an item taken out of the first highlight (the tray says it changed).
    first = alice.highlights[0]
    taken = first.items.pop(0)
    first.updated_at = first.latest + 60
    net.clear()
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    reels = [c for c in instagram.calls() if "reels_media" in c]
    assert reels == [f"GET i:/api/v1/feed/reels_media/ highlight:{first.id}"]  # what a change costs anyway
    row = await HighlightItem.get(media_id=str(taken.pk))
    assert row.removed_at is not None
    assert await HighlightItem.filter(removed_at__isnull=False).count() == 1
    assert media_on_disk(data_dir) == before  # the item's file and its link stay


async def test_a_failed_tray_request_marks_nothing(instagram, logged_in, data_dir, net):
    alice = instagram.profiles["alice"]
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    alice.highlights.pop(0)
    instagram.rate_limit(path_prefix="/api/v1/highlights/")
    logged_in.service.max_wait = 0
    result = await run_download(logged_in, "instagram", "alice")
    highlights = next(r for r in result.phases if r.phase == "highlights")
    assert highlights.status == "failed"
    assert await Highlight.filter(removed_at__isnull=False).count() == 0


async def test_the_gallery_badges_removed_highlights_and_items_and_shows_a_gone_account(gallery):
    alice = gallery.instagram.profiles["alice"]
    await gallery.reply("/download alice")
    await gallery.message_with("Completed:")
    gone = alice.highlights.pop(2)
    first = alice.highlights[0]
    taken = first.items.pop(0)
    first.updated_at = first.latest + 60
    mark = len(gallery.telegram.calls)
    await gallery.reply("/download alice")
    await gallery.telegram.await_for("editMessageText", after=mark, timeout=60, predicate=_completed)
    today = f"{queries.now():%Y-%m-%d}"
    badge = f'<span class="vanished">removed from Instagram {today}</span>'
    row, held = (
        await Highlight.get(highlight_id=str(gone.id)),
        await Highlight.get(highlight_id=str(first.id)),
    )
    item = await MediaItem.get(media_id=str(taken.pk))
    async with gallery.browser() as client:
        async with client.get(
            f"/accounts/{row.account_id}", params={"tab": "highlights", "h": row.id}
        ) as page:
            text = await page.text()
            assert text.count(badge) == 2  # its chip and its heading; the others carry none
        async with client.get(
            f"/accounts/{row.account_id}", params={"tab": "highlights", "h": held.id}
        ) as page:
            text = await page.text()
            tile = f'<a href="/items/{item.id}">'
            assert tile in text
            assert (
                f'<span class="badge">removed from Instagram {today}</span>' in text.split(tile, 1)[1][:400]
            )
        await Account.filter(id=row.account_id).update(gone="deleted", gone_since=queries.now())
        async with client.get("/") as page:
            assert f"deleted on Instagram since {today} — the archive keeps its files" in await page.text()


def _completed(call) -> bool:
    return "Completed:" in (call.params.get("text") or "")
