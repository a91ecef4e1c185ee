"""Instagram through the whole download service: real instaloader, fake Instagram, real DB."""

from __future__ import annotations

import asyncio

import pytest

from db.models import Job, MediaItem
from downloader.events import ItemDone, summary_line
from tests.fakes.instagram import FakeChild, FakeInstagram, FakePost, make_profile
from tests.harness import files_under, is_profile_picture, media_on_disk, run_download


def media_files(root):
    """Media on disk (not the JSON sidecars), name -> size."""
    if not root.exists():
        return {}
    return {
        n: s for n, s in files_under(root).items() if not n.endswith(".json") and not is_profile_picture(n)
    }


def expected_post_files(profile) -> int:
    """One file per image or video post, one per carousel child."""
    return sum(len(p.children) if p.kind == "carousel" else 1 for p in profile.posts)


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=30))
    return fake


def sizes_match(instagram, root):
    """Every media file has exactly the bytes the fake CDN serves for it."""
    by_size = {}
    for profile in instagram.profiles.values():
        by_size.update(profile.media())
    for name, size in media_files(root).items():
        assert size in by_size.values(), name


async def test_anonymous_run_gets_posts_and_skips_the_rest(instagram, anonymous, data_dir):
    result = await run_download(anonymous, "instagram", "alice")
    posts, stories, highlights = result.phases
    assert result.state == "completed"
    assert posts.downloaded == expected_post_files(instagram.profiles["alice"])
    assert stories.status == highlights.status == "skipped"
    assert "Instagram login required" in stories.message and "README" in stories.message
    assert summary_line(result) == f"Completed: 30 posts ({posts.downloaded} files) + 0 stories/highlights"
    folder = data_dir / "downloads" / "instagram" / "alice"
    assert len(media_files(folder / "posts")) == posts.downloaded
    assert len([n for n in files_under(folder / "posts") if n.endswith(".json")]) == 30
    assert not (folder / "stories").exists()
    sizes_match(instagram, folder)


async def test_logged_in_run_gets_all_three_phases_then_nothing(instagram, logged_in, data_dir, net):
    profile = instagram.profiles["alice"]
    result = await run_download(logged_in, "instagram", "alice")
    posts, stories, highlights = result.phases
    assert result.state == "completed", result
    assert (posts.downloaded, stories.downloaded, highlights.downloaded) == (
        expected_post_files(profile),
        len(profile.stories),
        sum(len(h.items) for h in profile.highlights),
    )
    folder = data_dir / "downloads" / "instagram" / "alice"
    titles = sorted(p.name for p in (folder / "highlights").iterdir())
    assert len(titles) == 3 and all("/" not in t and "<" not in t for t in titles)
    assert "🌊 Summer ☀️" in titles
    sizes_match(instagram, folder)
    before = files_under(folder)
    rows = await MediaItem.all().count()
    assert rows == len(media_files(folder))

    net.clear()
    again = await run_download(logged_in, "instagram", "alice")
    assert again.state == "completed" and again.new_items == 0
    assert instagram.cdn_count() == 0
    # The lookup by the stored id (it also says the newest story is archived already),
    # ONE timeline page (the early stop below the clean boundary) and the highlights tray
    # (every highlight unchanged since the last clean run: no item request).
    assert instagram.calls() == [
        "GET i:/api/v1/users/1001/info/",
        "POST /api/graphql 29104886249145907",
        "GET i:/api/v1/highlights/1001/highlights_tray/",
    ]
    assert files_under(folder) == before and await MediaItem.all().count() == rows


async def test_login_wall_in_front_of_profile_pages_does_not_stop_a_logged_in_download(
    instagram, logged_in, data_dir
):
    instagram.login_wall = True  # anonymous profile pages redirect to the login page
    result = await run_download(logged_in, "instagram", "alice")
    assert result.state == "completed", result
    assert [p.status for p in result.phases] == ["done", "done", "done"]
    profile = instagram.profiles["alice"]
    assert result.phases[0].downloaded == expected_post_files(profile)
    assert "GET /alice/" not in instagram.calls()  # never the anonymous page when logged in

    again = await run_download(logged_in, "instagram", "alice")  # nothing was latched
    assert again.state == "completed" and again.new_items == 0


async def test_login_wall_without_a_login_says_what_to_do(instagram, anonymous, data_dir):
    instagram.login_wall = True
    result = await run_download(anonymous, "instagram", "alice")
    assert result.state == "failed"
    assert "login page" in result.error and "README" in result.error
    assert media_on_disk(data_dir) == {}


async def test_deleted_file_comes_back(instagram, anonymous, data_dir):
    await run_download(anonymous, "instagram", "alice")
    posts = data_dir / "downloads" / "instagram" / "alice" / "posts"
    victim = sorted(media_files(posts))[-1]  # the oldest post, far behind the early stop
    size = (posts / victim).stat().st_size
    (posts / victim).unlink()
    result = await run_download(anonymous, "instagram", "alice")
    assert result.phases[0].downloaded == 1
    assert (posts / victim).stat().st_size == size


async def test_cut_media_leaves_no_partial_file_and_is_fetched_next_time(instagram, anonymous, data_dir):
    post = [p for p in instagram.profiles["alice"].posts if p.kind == "image"][-1]  # behind any early stop
    instagram.break_media(post.image_url, after=1000)
    result = await run_download(anonymous, "instagram", "alice")
    assert result.state == "completed" and result.phases[0].failed == 1
    assert "the next sync fetches it again" in " ".join(result.phases[0].warnings)
    names = [p.name for p in (data_dir / "downloads").rglob("*")]
    assert not [n for n in names if n.endswith(".part")]
    assert not [n for n in names if str(post.pk) in n and not n.endswith(".json")]
    assert not await MediaItem.filter(media_id=str(post.pk)).exists()
    instagram._broken.clear()  # the CDN recovers
    again = await run_download(anonymous, "instagram", "alice")
    assert again.phases[0].downloaded == 1  # a failed file keeps the next listing complete
    assert await MediaItem.filter(media_id=str(post.pk)).exists()


async def test_pinned_carousel_does_not_stop_the_next_sync_early(instagram, anonymous):
    profile = instagram.profiles["alice"]
    carousel = next(p for p in profile.posts if p.kind == "carousel")
    extra = [FakeChild(carousel.pk + 4 + i, False, 3000, 6000) for i in range(3)]
    carousel.children.extend(extra)  # six slides: more files than the early-stop run
    profile.posts.remove(carousel)
    profile.posts.insert(0, carousel)  # pinned at the top
    await run_download(anonymous, "instagram", "alice")
    newest = profile.posts[1]
    new_post = FakePost(newest.pk + 7, "image", taken_at=newest.taken_at + 3600, caption="new!")
    profile.posts.insert(1, new_post)
    again = await run_download(anonymous, "instagram", "alice")
    assert again.phases[0].downloaded == 1
    assert await MediaItem.filter(media_id=str(new_post.pk)).exists()


async def test_unwritable_folder_fails_files_not_the_job(instagram, anonymous, data_dir):
    blocked = data_dir / "downloads" / "instagram" / "alice" / "posts"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the posts folder belongs")
    result = await run_download(anonymous, "instagram", "alice")
    posts = result.phases[0]
    assert result.state == "completed" and posts.downloaded == 0 and posts.failed > 0
    assert "Could not write the file" in posts.warnings[0]
    assert (await Job.get(id=result.job_id)).state == "completed"  # finished, not stuck running
    assert await MediaItem.all().count() == 0


@pytest.mark.parametrize(
    ("prepare", "words"),
    [
        (lambda fake: None, "does not exist"),
        (lambda fake: fake.add_profile(make_profile("hidden", 2002, private=True)), "private"),
    ],
)
async def test_missing_and_private_accounts(instagram, logged_in, data_dir, prepare, words):
    prepare(instagram)
    name = "hidden" if words == "private" else "nobody_at_all"
    result = await run_download(logged_in, "instagram", name)
    assert result.state == "failed" and words in result.error
    assert summary_line(result).startswith("Failed: ")
    assert media_on_disk(data_dir) == {}


async def test_rate_limit_is_waited_out_and_says_until_when(instagram, anonymous, data_dir):
    from db import queries
    from downloader.events import Waiting

    instagram.rate_limit(None)
    account = await queries.get_or_create_account("instagram", "alice")
    job = await anonymous.service.create_job(account)
    waits = []

    def on_event(event):
        if isinstance(event, Waiting) and event.job_id == job.id:
            waits.append(event)
            anonymous.service.cancel(job.id)  # the owner gives up waiting

    anonymous.service.subscribe(on_event)
    result = await asyncio.wait_for(anonymous.service.run(job), timeout=30)
    assert result.state == "cancelled"
    assert "rate limit" in waits[0].reason.lower() and waits[0].until > queries.now()
    assert await MediaItem.all().count() == 0


async def test_checkpoint_stops_every_instagram_request(instagram, logged_in, net):
    instagram.checkpoint("checkpoint_required")
    result = await run_download(logged_in, "instagram", "alice")
    assert result.state == "failed" and "checkpoint" in result.error.lower()
    net.clear()
    instagram.checkpoint(None)
    again = await run_download(logged_in, "instagram", "alice")
    assert again.state == "failed" and "checkpoint" in again.error.lower()
    assert instagram.api_count() == 0  # nothing more is asked until the owner acts


async def test_expired_session_is_reported(instagram, logged_in):
    instagram.expire_session()
    result = await run_download(logged_in, "instagram", "alice")
    assert result.state == "failed" and "expired" in result.error.lower()


async def test_pause_and_resume_in_every_phase_download_each_file_once(instagram, logged_in, data_dir):
    instagram.media_delay = 0.00001
    service = logged_in.service
    from db import queries

    account = await queries.get_or_create_account("instagram", "alice")
    job = await service.create_job(account)
    paused_in = []

    def pause_soon(event):
        if isinstance(event, ItemDone) and event.job_id == job.id and event.phase not in paused_in:
            paused_in.append(event.phase)
            service.pause(job.id)

    service.subscribe(pause_soon)
    result = await service.run(job)
    rounds = 1
    while result.state == "paused":
        assert (await Job.get(id=job.id)).state == "paused"
        result = await service.run(await Job.get(id=job.id))
        rounds += 1
    assert result.state == "completed" and paused_in == ["posts", "stories", "highlights"]
    folder = data_dir / "downloads" / "instagram" / "alice"
    profile = instagram.profiles["alice"]
    total = (
        expected_post_files(profile) + len(profile.stories) + sum(len(h.items) for h in profile.highlights)
    )
    assert len(media_files(folder)) == total == await MediaItem.all().count()
    assert rounds == 4
    await asyncio.sleep(0)
