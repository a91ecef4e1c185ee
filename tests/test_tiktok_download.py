"""TikTok through the whole download service: real yt-dlp, fake TikTok, real database."""

from __future__ import annotations

import pytest

from db.models import MediaItem
from downloader.events import ItemProgress, summary_line
from tests.fakes.tiktok import FakeTikTok
from tests.harness import files_under, make_settings, media_on_disk, run_download, services_for


@pytest.fixture
async def tiktok(net, data_dir):
    """A fake TikTok and our services wired to it."""
    fake = FakeTikTok(net, page_size=4)
    services = await services_for(make_settings(data_dir, net=net))
    yield fake, services
    await services.close()


async def test_first_run_downloads_every_video_then_nothing(tiktok, data_dir, net):
    fake, services = tiktok
    account = fake.add_account("dancer.one", videos=9)
    events = []
    services.service.subscribe(events.append)
    result = await run_download(services, "tiktok", "dancer.one")
    finished = {
        e.media_id: e.done_bytes
        for e in events
        if isinstance(e, ItemProgress) and e.done_bytes == e.total_bytes
    }
    assert finished == {post.id: post.size for post in account.videos}  # yt-dlp's hooks became our events
    assert result.state == "completed"
    assert summary_line(result) == "Completed: 9 videos"
    videos = data_dir / "downloads" / "tiktok" / "dancer.one" / "videos"
    on_disk = {name: size for name, size in files_under(videos).items() if name.endswith(".mp4")}
    assert len(files_under(videos)) == 18  # each video has its metadata JSON beside it
    expected = {post.id: post.size for post in account.videos}
    assert len(on_disk) == 9
    for name, size in on_disk.items():
        media_id = name.rsplit("_", 1)[1].removesuffix(".mp4")
        assert expected[media_id] == size and name[:4] == "2025"
    assert await MediaItem.filter(platform="tiktok").count() == 9

    net.clear()
    again = await run_download(services, "tiktok", "dancer.one")
    assert summary_line(again) == "Completed: 0 videos"
    assert fake.count_video_pages() == 0 and fake.count_media() == 0
    assert net.count() <= 3  # user page + the first listing page
    assert {n: s for n, s in files_under(videos).items() if n.endswith(".mp4")} == on_disk


async def test_one_failing_video_does_not_stop_the_others(tiktok, data_dir):
    fake, services = tiktok
    account = fake.add_account("flaky_cam", videos=5)
    account.posts[2].media_http = 403
    result = await run_download(services, "tiktok", "flaky_cam")
    phase = result.phases[0]
    assert result.state == "completed" and phase.downloaded == 4 and phase.failed == 1
    assert account.posts[2].id in " ".join(phase.warnings)
    leftovers = [p for p in (data_dir / "downloads").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("setup", "sentence"),
    [
        (lambda fake: fake.add_account("secret_one", videos=2, private=True), "private"),
        (lambda fake: None, "does not exist"),
    ],
)
async def test_account_problems_have_sentences(tiktok, data_dir, setup, sentence):
    fake, services = tiktok
    setup(fake)
    name = "secret_one" if sentence == "private" else "nobody_here"
    result = await run_download(services, "tiktok", name)
    assert result.state == "failed" and sentence in result.error
    assert media_on_disk(data_dir) == {}


async def test_rate_limited(tiktok, data_dir):
    fake, services = tiktok
    fake.add_account("busy_user", videos=3)
    fake.rate_limited = True
    result = await run_download(services, "tiktok", "busy_user")
    assert result.state == "failed" and "rate limit" in result.error.lower()
    assert await MediaItem.all().count() == 0
