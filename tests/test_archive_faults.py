"""When the machine or the platform misbehaves mid-job: a full disk, a 429 with a long wait,
the network going away, a metadata file that cannot be written."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from db import queries
from db.models import FailedItem, InstagramSession, MediaItem
from downloader.events import Waiting
from downloader.items import DISK_FULL
from tests.fakes.instagram import WWW, FakeInstagram, make_profile, write_session_file
from tests.harness import files_under, make_settings, media_on_disk, run_download, services_for


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=30, image_size=40_000, video_size=40_000))
    return fake


@pytest.fixture
def small_disk(data_dir):
    """DATA_DIR/downloads on a 256 KiB tmpfs (needs root and mount; skipped otherwise)."""
    target = data_dir / "downloads"
    target.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(target)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited folder here: {done.stderr.strip() or done.returncode}")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def grow(folder) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m", str(folder)], check=True)


async def test_a_full_disk_stops_the_job_at_once_and_it_resumes(instagram, anonymous, small_disk, net):
    account = await queries.get_or_create_account("instagram", "alice")
    job = await anonymous.service.create_job(account)
    first = await anonymous.service.run(job)
    assert first.state == "paused" and first.error == DISK_FULL
    # It stopped at the first "no space left", not after trying every remaining file.
    assert 0 < instagram.cdn_count() <= 12
    assert not [n for n in files_under(small_disk) if n.endswith(".part")]
    sizes = set(instagram.profiles["alice"].media().values())
    assert all(
        size in sizes for name, size in media_on_disk(small_disk.parent).items() if ".json" not in name
    )
    # No media file is to blame (a metadata file cut short is written again later).
    assert await FailedItem.exclude(kind="metadata").count() == 0

    grow(small_disk)
    net.clear()
    stored = await job.__class__.get(id=job.id)
    done = await anonymous.service.run(stored)
    assert done.state == "completed"
    files = [n for n in media_on_disk(small_disk.parent) if not n.endswith(".json")]
    assert len(files) == await MediaItem.all().count() == 44
    assert len([n for n in media_on_disk(small_disk.parent) if n.endswith(".json")]) == 30
    assert await FailedItem.all().count() == 0
    fetched = [r.path for r in instagram.cdn_requests()]
    assert len(fetched) == len(set(fetched))


async def test_pause_acts_at_once_during_a_long_rate_limit_wait(instagram, net, data_dir, tmp_path):
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    settings = make_settings(data_dir, net=net, instagram_session_file=session, download_retries=0)
    logged_in = await services_for(settings)
    instagram.rate_limit(1, path_prefix="/api/graphql")  # the first timeline page: 429
    account = await queries.get_or_create_account("instagram", "alice")
    job = await logged_in.service.create_job(account)
    waits: list[Waiting] = []
    paused_at: list[float] = []

    def on_event(event):
        if isinstance(event, Waiting) and event.job_id == job.id and not waits:
            waits.append(event)
            paused_at.append(time.monotonic())
            logged_in.service.pause(job.id)

    unsubscribe = logged_in.service.subscribe(on_event)
    result = await asyncio.wait_for(logged_in.service.run(job), timeout=30)
    unsubscribe()
    assert result.state == "paused"
    assert time.monotonic() - paused_at[0] < 2
    assert (waits[0].until - queries.now()).total_seconds() > 60  # instaloader's window, minutes
    assert "rate limit" in waits[0].reason.lower()

    # Instagram's wait is kept with the login (stored by the latest at close, which flushes the
    # request counts): a restarted process honours it too.
    await logged_in.close()
    instagram.stop_rate_limit()
    again = await services_for(
        make_settings(data_dir, net=net, instagram_session_file=session, download_retries=0)
    )
    try:
        rest = await InstagramSession.get(name="archivebot")
        assert abs((rest.rest_until - waits[0].until).total_seconds()) < 1
        # Once that time has passed (here: set back), the job completes.
        await InstagramSession.filter(name="archivebot").update(rest_until=queries.now())
        stored = await job.__class__.get(id=job.id)
        done = await again.service.run(stored)
    finally:
        await again.close()
    assert done.state == "completed" and done.phases[0].posts == 30, done


async def test_the_network_going_away_keeps_the_job_resumable(instagram, logged_in, net):
    account = await queries.get_or_create_account("instagram", "alice")
    job = await logged_in.service.create_job(account)
    handler = net._handlers[WWW]
    net.remove_host(WWW)  # the proxy now refuses www.instagram.com, as a dead network would
    waits: list[Waiting] = []

    def on_event(event):
        if isinstance(event, Waiting) and event.job_id == job.id:
            waits.append(event)
            logged_in.service.pause(job.id)

    unsubscribe = logged_in.service.subscribe(on_event)
    result = await asyncio.wait_for(logged_in.service.run(job), timeout=60)
    unsubscribe()
    assert result.state != "failed", result
    assert waits and "Network trouble" in waits[0].reason
    net.add_host(WWW, handler)
    stored = await job.__class__.get(id=job.id)
    done = await logged_in.service.run(stored)
    assert done.state == "completed"


async def test_a_metadata_file_that_cannot_be_written_is_a_warning_and_comes_later(
    instagram, anonymous, data_dir
):
    posts = data_dir / "downloads" / "instagram" / "alice" / "posts"
    posts.mkdir(parents=True)
    newest = instagram.profiles["alice"].posts[0]
    blocker = posts / f"2025-06-15_15-06-40_{newest.code}.json"
    blocker.mkdir()  # a folder where the JSON file should go: the write fails
    (blocker / "x").write_text("x")
    first = await run_download(anonymous, "instagram", "alice")
    assert first.state == "completed"
    assert any("metadata file could not be written" in w for w in first.phases[0].warnings)
    assert await FailedItem.filter(kind="metadata").count() == 1

    (blocker / "x").unlink()
    blocker.rmdir()
    again = await run_download(anonymous, "instagram", "alice")
    assert again.state == "completed" and again.new_items == 0
    assert blocker.is_file() and newest.caption in blocker.read_text()
    assert await FailedItem.all().count() == 0


async def test_pause_ends_a_politeness_delay_at_once(instagram, net, data_dir, tmp_path):
    from services import open_services

    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    settings = make_settings(
        data_dir, net=net, instagram_session_file=session, download_retries=0, instagram_request_delay="20"
    )
    services = await open_services(settings)  # the real, interruptible waits
    try:
        account = await queries.get_or_create_account("instagram", "alice")
        job = await services.service.create_job(account)
        paused_at: list[float] = []

        def on_event(event):
            if isinstance(event, Waiting) and "politeness" in event.reason and not paused_at:
                paused_at.append(time.monotonic())
                services.service.pause(job.id)

        services.service.subscribe(on_event)
        result = await asyncio.wait_for(services.service.run(job), timeout=30)
        assert result.state == "paused", result
        assert time.monotonic() - paused_at[0] < 2
    finally:
        await services.close()
