"""The archive over sequences of runs: cancels, failed files, stories that become highlights,
a renamed highlight, a missing archive folder. Real service, real instaloader, fake Instagram."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from db.models import FailedItem, Job, MediaItem
from downloader.events import ItemDone, summary_line
from downloader.guard import missing_sentence
from tests.fakes.instagram import (
    NEWEST,
    FakeHighlight,
    FakeInstagram,
    FakePost,
    make_profile,
)
from tests.harness import make_settings, media_on_disk, run_download, services_for


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=30, highlights=("Travel",)))
    return fake


@pytest.fixture
def services(logged_in):
    """The real services, logged in (tests/instagram_kit.py)."""
    return logged_in


def new_posts(count: int, base: int = 4_000_000_000_000_000_000) -> list[FakePost]:
    """``count`` image posts newer than every generated one, newest first."""
    return [FakePost(base + i * 10, "image", taken_at=NEWEST + (count - i) * 3600) for i in range(count)]


def cdn_paths(instagram) -> Counter:
    """How often each media path was asked of the CDN (since the last clear)."""
    return Counter(r.path for r in instagram.cdn_requests())


def post_files(data_dir) -> set[str]:
    return {n for n in media_on_disk(data_dir) if "/posts/" in n and not n.endswith(".json")}


async def test_cancel_in_a_backlog_then_the_next_run_completes_the_archive(
    instagram, services, data_dir, net
):
    profile = instagram.profiles["alice"]
    assert (await run_download(services, "instagram", "alice")).state == "completed"
    profile.posts[:0] = new_posts(30)
    fetched: Counter = Counter()

    # Run 2: cancelled after 12 of the 30 new posts.
    net.clear()
    account_job = {}

    downloaded = Counter()

    def cancel_after_twelve(event):
        # Counted per downloaded file: ``done`` also counts posts the listing found archived.
        if isinstance(event, ItemDone) and event.job_id == account_job.get("id") and event.media_id:
            downloaded[event.media_id] += 1
            if len(downloaded) >= 12:
                services.service.cancel(event.job_id)
                instagram.media_gate.open()  # the files held half-way stop: never all 30

    instagram.media_gate.hold_after(12)  # twelve files whole, the rest wait for the cancel

    unsubscribe = services.service.subscribe(cancel_after_twelve)
    from db import queries

    account = await queries.find_account("instagram", "alice")
    job = await services.service.create_job(account)
    account_job["id"] = job.id
    second = await services.service.run(job)
    unsubscribe()
    assert second.state == "cancelled"
    got = second.phases[0].downloaded
    assert 12 <= got < 30
    # What the archive recorded (its rows; a file a transfer finished just as the Cancel came
    # may lie on disk unrecorded, and is then fetched once more, like a cut one).
    recorded = await MediaItem.filter(job_id=job.id).values_list("media_id", flat=True)
    kept_by_cancelled_run = {f"{media_id}.jpg" for media_id in recorded}
    assert len(kept_by_cancelled_run) == got
    # Cancel stops transfers in flight: those files (and only those) are fetched again.
    cut = {p for p in cdn_paths(instagram) if p.rsplit("/", 1)[-1] not in kept_by_cancelled_run}
    fetched.update(cdn_paths(instagram))

    # Run 3: the top of the listing is archived, but by a run that did not end clean.
    net.clear()
    third = await run_download(services, "instagram", "alice")
    assert third.state == "completed"
    assert third.phases[0].downloaded == 30 - got
    fetched.update(cdn_paths(instagram))
    expected = {f"{p.pk}.jpg" for p in profile.posts[:30]}
    names = {n.rsplit("_", 1)[-1] for n in post_files(data_dir)}
    assert expected <= names
    new_paths = {p for p in fetched if any(p.endswith(f"/{name}") for name in expected)}
    assert len(new_paths) == 30
    # Nothing archived is fetched twice; a transfer the Cancel cut is fetched once more.
    wrong = {
        p: (fetched[p], "cut" if p in cut else "kept")
        for p in new_paths
        if fetched[p] != (2 if p in cut else 1)
    }
    assert wrong == {}, f"requests per file over runs 1-3 (cut: {len(cut)}, kept: {got})"

    # Run 4: nothing new; the early stop works again from the new clean boundary.
    net.clear()
    fourth = await run_download(services, "instagram", "alice")
    assert fourth.new_items == 0 and instagram.cdn_count() == 0
    assert instagram.calls().count("POST /api/graphql 29104886249145907") == 1


async def test_a_file_that_failed_deep_in_the_listing_is_fetched_by_the_next_run(
    instagram, services, data_dir, net
):
    profile = instagram.profiles["alice"]
    broken = profile.posts[16]  # an image on the second page of twelve
    instagram.fail_media(broken.image_url, times=1)
    first = await run_download(services, "instagram", "alice")
    assert first.state == "completed" and first.phases[0].failed == 1
    assert any(str(broken.pk) in w for w in first.phases[0].warnings)
    assert await FailedItem.filter(media_id=str(broken.pk)).count() == 1

    net.clear()
    second = await run_download(services, "instagram", "alice")
    assert second.state == "completed" and second.phases[0].downloaded == 1
    # Its stored URL, no listing of page 2: the lookup, one timeline page, the highlights tray.
    assert list(cdn_paths(instagram)) == [broken.image_url.split("?")[0].split(".com", 1)[1]]
    assert instagram.calls().count("POST /api/graphql 29104886249145907") == 1
    assert await FailedItem.all().count() == 0
    assert any(n.endswith(f"_{broken.pk}.jpg") for n in post_files(data_dir))


async def test_a_file_that_keeps_failing_is_given_up_after_three_runs(instagram, services, net):
    broken = instagram.profiles["alice"].posts[16]
    instagram.forbid_media(broken.image_url)
    results = [await run_download(services, "instagram", "alice") for _ in range(4)]
    assert [r.phases[0].failed for r in results] == [1, 1, 1, 0]
    assert [r.phases[0].gave_up for r in results] == [0, 0, 1, 0]
    assert "no longer retried" in results[2].phases[0].warnings[-1]
    assert summary_line(results[2]).endswith("; 1 file failed 3 times and is not retried")
    assert (await FailedItem.get(media_id=str(broken.pk))).attempts == 3


async def test_a_story_that_becomes_a_highlight_is_linked_not_fetched(instagram, services, data_dir, net):
    profile = instagram.profiles["alice"]
    assert (await run_download(services, "instagram", "alice")).state == "completed"
    story = profile.stories[0]
    profile.highlights.append(FakeHighlight(17_900_000_000_000_999, "Best of", [story]))

    net.clear()
    second = await run_download(services, "instagram", "alice")
    assert second.state == "completed" and second.new_items == 0
    assert instagram.cdn_count() == 0
    base = data_dir / "downloads" / "instagram" / "alice"
    [story_file] = (base / "stories").glob(f"*_{story.pk}.jpg")
    [linked] = (base / "highlights" / "Best of").glob(f"*_{story.pk}.jpg")
    assert os.path.samestat(story_file.stat(), linked.stat())  # one file, two names
    assert await MediaItem.filter(media_id=str(story.pk)).count() == 1

    # Retitled: the folder is renamed, never duplicated, and still complete.
    profile.highlights[-1].title = "Best of 2025"
    profile.highlights[-1].updated_at = NEWEST + 999
    assert (await run_download(services, "instagram", "alice")).state == "completed"
    highlights = sorted(p.name for p in (base / "highlights").iterdir())
    assert "Best of" not in highlights and "Best of 2025" in highlights
    assert list((base / "highlights" / "Best of 2025").glob(f"*_{story.pk}.jpg"))
    assert instagram.cdn_count() == 0


async def test_a_missing_archive_folder_downloads_nothing_and_forgets_nothing(
    instagram, services, data_dir, net
):
    assert (await run_download(services, "instagram", "alice")).state == "completed"
    rows = await MediaItem.all().count()
    on_disk = media_on_disk(data_dir)
    (data_dir / "downloads").rename(data_dir / "unmounted")

    net.clear()
    result = await run_download(services, "instagram", "alice")
    assert result.state == "failed"
    assert result.error == missing_sentence((data_dir / "downloads").resolve())
    assert instagram.api_count() == 0 and instagram.cdn_count() == 0
    assert await MediaItem.all().count() == rows
    assert not (data_dir / "downloads").exists()

    # An empty folder where the disk should be mounted is "missing" too.
    (data_dir / "downloads").mkdir()
    assert (await run_download(services, "instagram", "alice")).state == "failed"
    (data_dir / "downloads").rmdir()

    (data_dir / "unmounted").rename(data_dir / "downloads")
    again = await run_download(services, "instagram", "alice")
    assert again.state == "completed" and again.new_items == 0
    assert instagram.cdn_count() == 0 and media_on_disk(data_dir) == on_disk


async def test_a_deleted_file_comes_back(instagram, services, data_dir, net):
    assert (await run_download(services, "instagram", "alice")).state == "completed"
    victim = sorted(post_files(data_dir))[-1]  # an old post, below the early stop
    (data_dir / "downloads" / victim).unlink()
    net.clear()
    again = await run_download(services, "instagram", "alice")
    assert again.state == "completed" and again.phases[0].downloaded == 1
    assert (data_dir / "downloads" / victim).is_file()
    assert sum(cdn_paths(instagram).values()) == 1
    assert await Job.filter(state="failed").count() == 0


async def test_tiktok_cancelled_in_a_backlog_is_completed_by_the_next_run(net, data_dir):
    from tests.fakes.tiktok import FakePost as TikTokPost
    from tests.fakes.tiktok import FakeTikTok, post_id_for

    tiktok = FakeTikTok(net, page_size=4)
    account = tiktok.add_account("bob.dance", videos=8)
    # Fewer download slots (4) than listed videos, so the stop lands with some not yet started.
    services = await services_for(make_settings(data_dir, net=net, download_concurrency=4))
    try:
        assert (await run_download(services, "tiktok", "bob.dance")).state == "completed"
        newest = account.posts[0].create_time
        account.posts[:0] = [
            TikTokPost(
                post_id_for("bob.dance", newest + 3600 * (12 - i), 100 + i),
                newest + 3600 * (12 - i),
                f"new {i}",
                60_000 + i,
            )
            for i in range(12)
        ]
        from db import queries

        row = await queries.find_account("tiktok", "bob.dance")
        job = await services.service.create_job(row)

        downloaded = Counter()

        def cancel_after_five(event):
            # Counted per downloaded video: ``done`` also counts videos the listing found archived.
            if isinstance(event, ItemDone) and event.job_id == job.id and event.media_id:
                downloaded[event.media_id] += 1
                if len(downloaded) >= 5:
                    services.service.cancel(job.id)

        unsubscribe = services.service.subscribe(cancel_after_five)
        second = await services.service.run(job)
        unsubscribe()
        assert second.state == "cancelled" and 5 <= second.phases[0].downloaded < 12
        third = await run_download(services, "tiktok", "bob.dance")
        assert third.state == "completed"
        assert second.phases[0].downloaded + third.phases[0].downloaded == 12
        videos = data_dir / "downloads" / "tiktok" / "bob.dance" / "videos"
        assert len(list(videos.glob("*.mp4"))) == 20 == await MediaItem.filter(platform="tiktok").count()
    finally:
        await services.close()


async def test_a_stories_sweep_of_thirty_accounts_costs_a_handful_of_requests(
    instagram, services, net, data_dir
):
    from db.models import Account

    for index in range(30):
        name = f"sweep{index:02d}"
        pk = 5000 + index
        instagram.add_profile(
            make_profile(name, pk, posts=0, stories=1 if index % 10 == 0 else 0, highlights=())
        )
        await Account.create(platform="instagram", username=name, tracked=True, platform_user_id=str(pk))
    net.clear()
    parent, created = await services.jobs.prepare_syncall(chat_id=None, phases=["stories"])
    assert created
    results = await services.jobs.start(parent)
    assert [r.state for r in results] == ["completed"] * 30
    # One GraphQL query names the stories of all thirty accounts (items included).
    assert instagram.calls() == ["GET /graphql/query 303a4ae99711322310f25250d988f3b7"]
    assert instagram.cdn_count() == 3  # only the three new stories
    assert len([n for n in media_on_disk(data_dir) if "/stories/" in n]) == 3

    net.clear()
    parent, _ = await services.jobs.prepare_syncall(chat_id=None, phases=["stories"])
    again = await services.jobs.start(parent)
    assert sum(r.new_items for r in again) == 0
    assert instagram.api_count() == 1 and instagram.cdn_count() == 0, instagram.calls()
