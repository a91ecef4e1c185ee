"""A worker killed mid-file: the worker that takes its job over clears what it left behind
(RabbitMQ, PostgreSQL; real `python bot.py worker` processes)."""

from __future__ import annotations

import signal

import pytest

from db.models import MediaItem
from tests.fakes.instagram import make_profile
from tests.harness import media_on_disk
from tests.test_one_writer import temporary_files, wait_for
from tests.workers_kit import running_cluster, started_jobs

pytestmark = pytest.mark.timeout(180)


async def test_the_worker_taking_over_a_killed_workers_job_clears_its_temporary_files(
    net, data_dir, tmp_path
):
    async with running_cluster(net, data_dir, tmp_path) as cluster:
        world, root = cluster.world, data_dir / "downloads"
        world.instagram.add_profile(
            make_profile(
                "alice", 1001, posts=8, stories=0, highlights=(), image_size=40_000, video_size=80_000
            )
        )
        world.instagram.media_delay = 0.00002  # about a second a file: the kill lands mid-file
        one, two = (
            cluster.start("w-one", "--platform", "instagram"),
            cluster.start("w-two", "--platform", "instagram"),
        )
        await one.wait_for("takes instagram jobs")
        await two.wait_for("takes instagram jobs")  # both listen before the job is handed out
        await world.reply("/download alice")
        posts = lambda: [n for n in temporary_files(root) if n.startswith("instagram/alice/posts/")]  # noqa: E731
        await wait_for(posts, "a post's .part", timeout=60)
        await wait_for(lambda: started_jobs(one) + started_jobs(two), "the job to start")
        doomed, heir = (one, two) if started_jobs(one) else (two, one)
        doomed.stop(signal.SIGKILL)
        left = temporary_files(root)  # posts' partials, perhaps the profile picture's (fetched first)
        assert posts() and all(
            n.startswith(("instagram/alice/posts/", "instagram/alice/profile/")) for n in left
        )
        world.instagram.media_delay = 0
        await heir.wait_for("its worker is gone; continuing it from its saved place", timeout=60)
        final = await world.message_with("Completed:", timeout=90)
        assert "Completed: 8 posts (12 files)" in final.plain, final.plain
        assert "took over @alice from a process that is gone" in heir.output
        assert "temporary file(s) of @alice left by that process" in heir.output
        assert temporary_files(data_dir) == []  # anywhere under data/, not only alice's folder
        names = [n for n in media_on_disk(data_dir) if not n.endswith(".json")]
        assert len(names) == len(set(names)) == await MediaItem.all().count() == 12
        cdn = [r.path for r in world.instagram.internet.requests if r.host.endswith("cdninstagram.com")]
        covers = {r.path for r in world.instagram.cover_requests()}  # videos' stills, for the gallery
        fetched = [path for path in cdn if "/p1001" not in path and path not in covers]  # media only
        assert cdn.count("/v/t51.2885-15/p1001.jpg") == 1
        # Each file once, but those in flight at the kill (DOWNLOAD_CONCURRENCY is 2 in workers).
        assert len(set(fetched)) == 12 and len(fetched) <= 12 + 2
