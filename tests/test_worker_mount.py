"""A worker whose shared folder is not mounted refuses jobs and says so (RabbitMQ, PostgreSQL)."""

from __future__ import annotations

import pytest

from db.models import Job, MediaItem
from tests.workers_kit import running_cluster, videos_once

pytestmark = pytest.mark.timeout(180)


async def test_a_worker_without_the_shared_folder_refuses_and_marks_nothing(net, data_dir, tmp_path):
    unmounted = tmp_path / "mnt" / "archive"  # an empty mount point on the worker's machine
    unmounted.mkdir(parents=True)
    async with running_cluster(net, data_dir, tmp_path) as cluster:
        world, start = cluster.world, cluster.start
        world.tiktok.add_account("dancer", videos=3, size=20_000)
        assert "Now tracking" in await world.reply("/add tiktok.com/@dancer")
        lost = start("w-lost", "--platform", "tiktok", env={"DATA_DIR": str(unmounted)})
        await lost.wait_for("takes tiktok jobs")
        root = (unmounted / "downloads").resolve()
        sentence = f"The archive folder {root} is missing or not mounted; nothing was downloaded."
        assert f"worker w-lost: {sentence} Jobs are refused until it is back." in lost.output
        fetched = len(world.tiktok.internet.requests)
        await world.reply("/download tiktok.com/@dancer")
        final = await world.message_with("Failed", timeout=60)
        assert f"Worker w-lost: {sentence}" in final.plain
        assert "Traceback" not in lost.output
        assert len(world.tiktok.internet.requests) == fetched  # not one request to TikTok
        assert not (unmounted / "downloads").exists()  # no marker, no file in the empty folder
        assert await MediaItem.all().count() == 0
        assert (await Job.get(kind="download")).state == "failed"

        # The owner mounts the share: a worker that sees it does the job, every file once.
        lost.stop()
        found = start("w-found", "--platform", "tiktok")
        await found.wait_for("takes tiktok jobs")
        await world.reply("/download tiktok.com/@dancer")
        await world.message_with("Completed: 3 videos", timeout=60)
        assert len(videos_once(data_dir)) == 3
        assert not (unmounted / "downloads").exists()
