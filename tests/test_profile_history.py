"""The profile's history over syncs: pictures kept once per version, biography and privacy changes,
/info in chat. Real bot and service, real instaloader, the fake Instagram and Telegram."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter

import pytest

from db.models import ProfileChange
from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile
from tests.harness import media_on_disk, run_download
from tests.instagram_kit import chat_with_alice


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=14))
    return fake


def pictures(data_dir) -> dict[str, str]:
    """Profile pictures on disk: name -> SHA-256 of the bytes."""
    folder = data_dir / "downloads" / "instagram" / "alice" / "profile"
    if not folder.exists():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def picture_requests(instagram) -> Counter:
    return Counter(r.path for r in instagram.cdn_requests() if "/p1001" in r.path)


async def sync(services, instagram, net):
    """One download of alice; returns the API calls it made."""
    net.clear()
    result = await run_download(services, "instagram", "alice")
    assert result.state == "completed", result
    return instagram.calls()


async def test_pictures_twice_and_the_biography_once_are_each_kept_once(instagram, logged_in, data_dir, net):
    profile = instagram.profiles["alice"]
    first_calls = await sync(logged_in, instagram, net)
    assert picture_requests(instagram) == Counter({"/v/t51.2885-15/p1001.jpg": 1})
    assert len(pictures(data_dir)) == 1
    unchanged = await sync(logged_in, instagram, net)  # the same picture: no CDN request
    assert picture_requests(instagram) == Counter() and instagram.cdn_count() == 0

    new_url = profile.change_picture()
    profile.biography = "Now in Lisbon."
    changed = await sync(logged_in, instagram, net)
    assert changed == unchanged  # the history costs no API request
    assert picture_requests(instagram) == Counter({"/v/t51.2885-15/p1001_v1.jpg": 1})
    expected = hashlib.sha256(instagram.expected_bytes(new_url)).hexdigest()
    profile.change_picture()
    await sync(logged_in, instagram, net)
    assert picture_requests(instagram) == Counter({"/v/t51.2885-15/p1001_v2.jpg": 1})
    await sync(logged_in, instagram, net)
    assert instagram.cdn_count() == 0

    kept = pictures(data_dir)
    assert len(kept) == 3 and len(set(kept.values())) == 3  # each version once, none twice
    assert expected in kept.values()
    rows = await ProfileChange.filter(field="picture").order_by("id")
    assert [r.initial for r in rows] == [True, False, False]
    assert all((data_dir / r.path).is_file() for r in rows)
    bios = await ProfileChange.filter(field="biography").order_by("id").values_list("value", flat=True)
    assert bios == ["A fake profile.", "Now in Lisbon."]
    # One lookup per sync, the one every sync makes: the history asks Instagram for nothing more.
    assert [c for c in first_calls if "profile" in c or "/info/" in c] == [
        "GET /api/v1/users/web_profile_info/"
    ]


async def test_a_picture_that_fails_is_fetched_by_the_next_sync(instagram, logged_in, data_dir, net):
    await sync(logged_in, instagram, net)
    url = instagram.profiles["alice"].change_picture()
    instagram.fail_media(url, times=1)
    await sync(logged_in, instagram, net)  # the posts still run
    assert len(pictures(data_dir)) == 1
    await sync(logged_in, instagram, net)
    assert len(pictures(data_dir)) == 2 and picture_requests(instagram) == Counter({urlpath(url): 1})
    assert all(name.endswith(".jpg") for name in media_on_disk(data_dir) if "/profile/" in name)


def urlpath(url: str) -> str:
    return url.split("instagram.com", 1)[-1].split("?", 1)[0]


@pytest.fixture
async def world(net, data_dir, tmp_path):
    async with chat_with_alice(net, data_dir, tmp_path, posts=3, followed=True) as world:
        yield world


async def test_info_shows_the_profile_and_its_changes(world, data_dir):
    assert "not in the archive" in await world.reply("/info alice")
    assert (await world.reply("/info ../etc")).startswith("'../etc' is not a valid")
    await download(world, 1)
    first = await world.reply("/info alice")
    assert "public · 100 followers · 3 posts" in first and "Changes" not in first
    profile = world.instagram.profiles["alice"]
    profile.is_private = True
    profile.change_picture()
    profile.biography = "Private now."
    await download(world, 2)
    text = await world.reply("/info alice")
    assert "private · 100 followers · 3 posts" in text
    assert "Biography: Private now." in text and "Profile pictures kept: 2" in text
    for change in ("went private on 20", "new profile picture on 20", "new biography “Private now.” on 20"):
        assert change in text, text
    profile.is_private = False
    await download(world, 3)
    assert "went public on 20" in await world.reply("/info alice")
    assert len(pictures(data_dir)) == 2


async def download(world: World, count: int) -> None:
    """/download alice and wait for the ``count``-th finished status message."""
    world.say("/download alice")
    deadline = time.monotonic() + 60
    while sum("Completed:" in (m.plain or "") for m in world.bot_messages()) < count:
        assert time.monotonic() < deadline, [m.plain for m in world.bot_messages()]
        await asyncio.sleep(0.05)


async def test_gallery_shows_the_newest_picture_and_former_names(gallery, data_dir):
    await download(gallery, 1)
    profile = gallery.instagram.profiles["alice"]
    new_url = profile.change_picture()
    gallery.instagram.rename("alice", "alice.new")
    await download(gallery, 2)
    account_id = (await ProfileChange.first()).account_id
    newest = gallery.instagram.expected_bytes(new_url)
    async with gallery.browser() as client:
        async with client.get("/") as response:
            page = await response.text()
            assert f'<img src="/accounts/{account_id}/picture"' in page and "@alice.new" in page
        async with client.get(f"/accounts/{account_id}/picture") as response:
            assert response.status == 200 and await response.read() == newest
        async with client.get(f"/accounts/{account_id}") as response:
            assert "Formerly @alice" in await response.text()
        for path in ("/accounts/999/picture", "/accounts/..%2F..%2Fetc/picture"):
            async with client.get(path) as response:
                assert response.status == 404, path
    async with (
        gallery.browser(signed_in=False) as client,
        client.get(f"/accounts/{account_id}/picture") as response,
    ):
        assert response.status == 401 and newest not in await response.read()
