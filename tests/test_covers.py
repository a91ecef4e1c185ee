"""Video covers: one still per archived video, fetched once from the CDN, never an archived file."""

from __future__ import annotations

import pytest

from db.models import FailedItem, MediaItem
from downloader.covers import cover_path
from downloader.events import summary_line
from tests.fakes.instagram import FakeHighlight, FakeInstagram, FakeStoryItem, make_profile
from tests.fakes.stills import still_jpeg
from tests.fakes.tiktok import FakeTikTok
from tests.harness import make_settings, media_on_disk, run_download, services_for

STORY_PK = 3_600_000_000_000_000_077


@pytest.fixture
def instagram(net):
    """alice: 8 posts (2 videos, 2 reels, 2 carousels with a video slide), a video story that is
    also in a highlight (same media id: one file, one cover)."""
    fake = FakeInstagram(net)
    profile = make_profile("alice", 1001, posts=8, stories=1, highlights=())
    story = FakeStoryItem(STORY_PK, is_video=True, taken_at=profile.stories[0].taken_at + 60)
    profile.stories.append(story)
    profile.highlights = [FakeHighlight(77, "Trips", items=[story])]
    fake.add_profile(profile)
    return fake


def covers_on_disk(data_dir) -> dict[str, bytes]:
    root = data_dir / "covers"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_instagram_keeps_one_cover_per_video_and_never_fetches_it_again(
    instagram, logged_in, data_dir, net
):
    profile = instagram.profiles["alice"]
    result = await run_download(logged_in, "instagram", "alice")
    assert result.state == "completed", result
    videos = await MediaItem.filter(path__endswith=".mp4")
    assert len(videos) == 7  # 2 videos, 2 reels, 2 carousel slides, 1 story (its highlight shares it)
    rows = await MediaItem.all().count()
    # Exactly one CDN request per archived file plus one per video's cover; no other request.
    assert instagram.cover_count() == 7 == len(profile.covers())
    assert instagram.cdn_count() == rows + 7
    for video in videos:
        cover = cover_path(data_dir, "instagram", video.media_id)
        assert cover.read_bytes()[:3] == b"\xff\xd8\xff"  # the still, a JPEG
    assert len(covers_on_disk(data_dir)) == 7
    # Covers live outside downloads/: not archived files, not rows.
    assert not [n for n in media_on_disk(data_dir) if "cover" in n or n.endswith(".part")]
    assert len([n for n in media_on_disk(data_dir) if not n.endswith(".json")]) == rows + 1  # + the link

    net.clear()
    again = await run_download(logged_in, "instagram", "alice")
    assert again.state == "completed" and again.new_items == 0
    assert instagram.cover_count() == 0 and instagram.cdn_count() == 0


async def test_a_refused_cover_never_fails_its_video(instagram, anonymous, data_dir):
    profile = instagram.profiles["alice"]
    video_post = next(p for p in profile.posts if p.kind == "video")
    instagram.forbid_media(video_post.image_url)  # the still: 403; the video itself is served
    instagram.fail_media(profile.posts[3].image_url, times=9)  # a reel's still: 503 every time
    result = await run_download(anonymous, "instagram", "alice")
    posts = result.phases[0]
    assert result.state == "completed" and posts.failed == 0 and posts.warnings == []
    assert await MediaItem.filter(media_id=str(video_post.pk)).exists()
    assert await FailedItem.all().count() == 0  # nothing to retry: a cover is not an archived file
    assert not cover_path(data_dir, "instagram", str(video_post.pk)).exists()
    assert not cover_path(data_dir, "instagram", str(profile.posts[3].pk)).exists()
    assert len(covers_on_disk(data_dir)) == 4  # the other video, the carousels' video slides
    assert not [p for p in (data_dir / "covers").rglob("*") if p.name.endswith(".part")]


@pytest.fixture
async def tiktok(net, data_dir):
    fake = FakeTikTok(net, page_size=4)
    services = await services_for(make_settings(data_dir, net=net, download_retries=0))
    yield fake, services
    await services.close()


async def test_tiktok_keeps_the_listed_cover_of_each_video_once(tiktok, data_dir, net):
    fake, services = tiktok
    account = fake.add_account("dancer.one", videos=5, photos=(2,))
    account.videos[3].cover_http = 404  # gone from the CDN: the video stays, its tile is a placeholder
    result = await run_download(services, "tiktok", "dancer.one")
    assert result.state == "completed" and result.phases[0].failed == 0
    assert summary_line(result) == "Completed: 5 videos + 1 photo post (3 images)"
    assert fake.count_covers() == 5  # one per video, none for the photo post
    assert fake.count_media() == 5 and fake.count_video_pages() == 5  # nothing else changed
    covers = covers_on_disk(data_dir)
    assert covers == {f"tiktok/{v.id}.jpg": still_jpeg(v.id) for i, v in enumerate(account.videos) if i != 3}
    assert await MediaItem.filter(platform="tiktok", kind="video").count() == 5
    files = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
    assert len(files) == await MediaItem.all().count() == 9  # 5 videos, 3 slides, 1 sound: no cover

    net.clear()
    again = await run_download(services, "tiktok", "dancer.one")
    assert summary_line(again) == "Completed: 0 videos" and fake.count_covers() == 0
    assert covers_on_disk(data_dir) == covers
