"""TikTok photo posts (slides and sound) through the download service; nothing skipped in silence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from db import queries
from db.models import FailedItem, Job, MediaItem
from downloader.events import ItemDone, short_id, summary_line
from tests.fakes.tiktok import FakePost, FakeTikTok
from tests.harness import files_under, make_settings, run_download, services_for


@pytest.fixture
async def tiktok(net, data_dir):
    """A fake TikTok listing 3 posts a page, and our services wired to it (one media retry)."""
    fake = FakeTikTok(net, page_size=3)
    services = await services_for(make_settings(data_dir, net=net, download_retries=1))
    yield fake, services
    await services.close()


def videos_dir(data_dir, username: str):
    return data_dir / "downloads" / "tiktok" / username / "videos"


def stamp(post: FakePost) -> str:
    """The date part of a post's file names."""
    return f"{datetime.fromtimestamp(post.create_time, UTC):%Y-%m-%d_%H-%M-%S}"


def photo_files(post: FakePost) -> dict[str, bytes]:
    """What the archive folder must hold for a photo post: slides in order, the sound once, the JSON."""
    files = {f"{stamp(post)}_{post.id}_{n}.jpg": post.content(str(n)) for n in range(1, post.slides + 1)}
    files[f"{stamp(post)}_{post.id}.mp3"] = post.content("sound")
    return files


async def test_a_profile_mixing_videos_and_photo_posts_is_archived_whole_then_costs_nothing(
    tiktok, data_dir, net
):
    fake, services = tiktok
    # Newest first: a photo post, then 4 videos; 3 posts a page, so two listing pages.
    account = fake.add_account("painter", videos=4, photos=(0,), slides=3)
    photo = account.photo_posts[0]

    result = await run_download(services, "tiktok", "painter")

    assert result.state == "completed"
    assert summary_line(result) == "Completed: 4 videos + 1 photo post (3 images)"
    folder = videos_dir(data_dir, "painter")
    for name, content in photo_files(photo).items():
        assert (folder / name).read_bytes() == content, name
    for video in account.videos:
        assert (folder / f"{stamp(video)}_{video.id}.mp4").read_bytes() == video.content()
    sidecar = json.loads((folder / f"{stamp(photo)}_{photo.id}.json").read_text())
    assert (sidecar["type"], sidecar["images"], sidecar["description"]) == ("photo", 3, photo.desc)
    assert len(files_under(folder)) == 4 + 4 + 5  # videos, their JSON; 3 slides, the sound, the JSON
    assert not [p for p in (data_dir / "downloads").rglob("*") if p.name.endswith(".part")]
    # One post in the archive: ordered slides and the sound share the post's id as their group.
    rows = await MediaItem.filter(group_id=photo.id).order_by("media_id")
    assert [(r.media_id, r.kind, r.group_size) for r in rows] == [
        (photo.id, "audio", 4),
        (f"{photo.id}_1", "photo", 4),
        (f"{photo.id}_2", "photo", 4),
        (f"{photo.id}_3", "photo", 4),
    ]
    assert {r.link for r in rows} == {f"https://www.tiktok.com/@painter/photo/{photo.id}"}
    assert fake.count_listing() == 2 and fake.count_images() == 3 and fake.count_sounds() == 1
    assert fake.count_video_pages() == 4  # yt-dlp is asked for the videos only
    phase = result.phases[0]
    assert (phase.downloaded, phase.posts, phase.photo_posts, phase.images) == (8, 5, 1, 3)

    net.clear()
    again = await run_download(services, "tiktok", "painter")

    assert summary_line(again) == "Completed: 0 videos"
    assert fake.count_images() == fake.count_sounds() == fake.count_media() == fake.count_video_pages() == 0
    assert await MediaItem.filter(platform="tiktok").count() == 8


async def test_a_slide_failing_once_is_fetched_again_without_a_gap(tiktok, data_dir):
    fake, services = tiktok
    account = fake.add_account("painter", videos=1, photos=(0,), slides=3)
    photo = account.photo_posts[0]
    photo.slide_failures[2] = 1  # the CDN answers 503 once

    result = await run_download(services, "tiktok", "painter")

    assert summary_line(result) == "Completed: 1 video + 1 photo post (3 images)"
    assert fake.count_images() == 4  # three slides, one of them twice
    folder = videos_dir(data_dir, "painter")
    for name, content in photo_files(photo).items():
        assert (folder / name).read_bytes() == content, name
    assert await FailedItem.all().count() == 0


async def test_a_slide_failing_through_a_run_is_named_and_completed_by_the_next(tiktok, data_dir, net):
    fake, services = tiktok
    account = fake.add_account("painter", videos=2, photos=(0,), slides=3)
    photo = account.photo_posts[0]
    photo.slide_failures[2] = 2  # more than the one retry within a run

    first = await run_download(services, "tiktok", "painter")

    slide = f"{photo.id}_2"
    assert first.state == "completed"
    assert summary_line(first) == (
        "Completed: 2 videos + 1 photo post (2 images); "
        f"1 item not archived: {short_id(slide)} (The media server answered HTTP 503)"
    )
    assert short_id(slide) == f"{photo.id[:4]}…{photo.id[-3:]}_2"
    assert (await FailedItem.get(media_id=slide)).attempts == 1

    fake.now += 86_400  # a day later: the address listed yesterday has expired
    net.clear()
    second = await run_download(services, "tiktok", "painter")

    # Only the missing slide: the incomplete post is listed again, with fresh addresses.
    assert summary_line(second) == "Completed: 0 videos + 1 photo post (1 image)"
    assert fake.count_video_pages() == 0 and fake.count_images() == 1
    assert fake.count_sounds() == 0 and fake.count_media() == 0
    folder = videos_dir(data_dir, "painter")
    for name, content in photo_files(photo).items():
        assert (folder / name).read_bytes() == content, name
    assert await FailedItem.all().count() == 0
    assert await MediaItem.filter(group_id=photo.id).count() == 4


async def test_a_slide_missing_below_the_early_stop_gets_a_fresh_address_from_its_post(tiktok, data_dir, net):
    fake, services = tiktok
    account = fake.add_account("painter", videos=6, photos=(6,), slides=2)  # the oldest post
    photo = account.photo_posts[0]
    photo.slide_failures[1] = 2
    first = await run_download(services, "tiktok", "painter")
    assert first.phases[0].failed == 1

    fake.now += 86_400  # the stored address has expired
    net.clear()
    second = await run_download(services, "tiktok", "painter")

    # The listing stops at 4 archived posts, before the photo post; the retry asks the post's
    # own page for a fresh address (one request), then fetches that one slide.
    assert summary_line(second) == "Completed: 0 videos + 1 photo post (1 image)"
    assert fake.count_listing() == 2
    assert [r.path for r in fake.page_requests()] == ["/@painter", f"/@painter/video/{photo.id}"]
    assert fake.count_images() == 1
    folder = videos_dir(data_dir, "painter")
    for name, content in photo_files(photo).items():
        assert (folder / name).read_bytes() == content, name
    assert await FailedItem.all().count() == 0


async def test_items_that_cannot_be_archived_are_counted_and_named(tiktok, data_dir, net):
    fake, services = tiktok
    account = fake.add_account("painter", videos=3, lives=(1,))
    live = account.posts[1]
    region_locked = account.videos[2]
    region_locked.page_status = 10231  # TikTok does not show this video here

    first = await run_download(services, "tiktok", "painter")

    assert first.state == "completed"
    assert summary_line(first) == (
        "Completed: 2 videos; 2 items not archived: "
        f"{short_id(live.id)} (live replay, not supported), "
        f"{short_id(region_locked.id)} (TikTok does not offer it here "
        "(status 10231: region-locked, removed or private))"
    )
    assert (await FailedItem.get(media_id=region_locked.id)).attempts == 1
    assert await FailedItem.filter(media_id=live.id).count() == 0  # that reason does not pass

    region_locked.page_status = 0  # a proxy in another country, say
    net.clear()
    second = await run_download(services, "tiktok", "painter")

    # The region lock passed: archived. The replay, listed again, is named again.
    assert summary_line(second) == (
        f"Completed: 1 video; 1 item not archived: {short_id(live.id)} (live replay, not supported)"
    )
    assert fake.count_media() == 1
    assert await FailedItem.all().count() == 0
    assert await MediaItem.filter(platform="tiktok").count() == 3


async def test_a_slide_deleted_from_disk_comes_back_alone(tiktok, data_dir, net):
    fake, services = tiktok
    account = fake.add_account("painter", videos=6, photos=(6,), slides=3)  # the oldest post
    photo = account.photo_posts[0]
    await run_download(services, "tiktok", "painter")
    folder = videos_dir(data_dir, "painter")
    (folder / f"{stamp(photo)}_{photo.id}_2.jpg").unlink()

    net.clear()
    again = await run_download(services, "tiktok", "painter")

    assert summary_line(again) == "Completed: 0 videos + 1 photo post (1 image)"
    assert fake.count_images() == 1 and fake.count_sounds() == 0 and fake.count_media() == 0
    for name, content in photo_files(photo).items():
        assert (folder / name).read_bytes() == content, name


async def test_a_paused_job_resumes_without_fetching_a_slide_twice(net, data_dir):
    fake = FakeTikTok(net, page_size=3)
    account = fake.add_account("painter", videos=2, photos=(0, 2), slides=3)
    # One file at a time: the pause lands after the first few files, long before the tenth.
    services = await services_for(make_settings(data_dir, net=net, download_concurrency=1))
    try:
        row = await queries.get_or_create_account("tiktok", "painter")
        job = await services.service.create_job(row)

        def pause_once(event):
            if isinstance(event, ItemDone) and event.job_id == job.id:
                services.service.pause(job.id)
                unsubscribe()

        unsubscribe = services.service.subscribe(pause_once)
        first = await services.service.run(job)
        assert first.state == "paused" and 1 <= first.phases[0].downloaded < 10
        done = await services.service.run(await Job.get(id=job.id))
        assert await MediaItem.filter(platform="tiktok").count() == 10
    finally:
        await services.close()

    assert summary_line(done) == "Completed: 2 videos + 2 photo posts (6 images)"
    # Pause stops a transfer in flight (one at a time here): a slide cut by it starts over, as
    # files under 256 KiB are not continued with Range; every other file is fetched once.
    assert 6 <= fake.count_images() <= 7 and fake.count_images() + fake.count_sounds() <= 9
    assert fake.count_sounds() in (2, 3) and fake.count_media() == 2
    folder = videos_dir(data_dir, "painter")
    for photo in account.photo_posts:
        for name, content in photo_files(photo).items():
            assert (folder / name).read_bytes() == content, name
    assert not [p for p in (data_dir / "downloads").rglob("*") if p.name.endswith(".part")]
