"""A worker runs as many TikTok jobs at once as SYNCALL_TIKTOK_CONCURRENCY says (RabbitMQ, PostgreSQL)."""

from __future__ import annotations

import re

import pytest

from db.models import MediaItem
from tests.workers_kit import PATIENT, running_cluster, videos_once

pytestmark = pytest.mark.timeout(180)


def most_at_once(log: str) -> int:
    """The most jobs the worker's log shows running at the same time."""
    running = peak = 0
    for event in re.findall(r"job \d+ (running$|\w+: @)", log, re.MULTILINE):  # started, ended
        running += 1 if event == "running" else -1
        peak = max(peak, running)
    return peak


async def test_one_worker_runs_two_tiktok_jobs_at_once(net, data_dir, tmp_path):
    async with running_cluster(net, data_dir, tmp_path) as cluster:
        world, start = cluster.world, cluster.start
        for name in ("slow.a", "slow.b", "slow.c"):
            world.tiktok.add_account(name, videos=3, size=60_000)
            await world.reply(f"/add tiktok.com/@{name}")
        cdn = world.tiktok.media_gate
        cdn.hold_after(0)  # the first job waits mid-file until the second has started beside it
        env = {"SYNCALL_TIKTOK_CONCURRENCY": "2"} | PATIENT
        worker = start("w-slots", "--platform", "tiktok", env=env)
        await worker.wait_for("takes tiktok jobs")
        await world.reply("/syncall")
        await cdn.until_held()
        await worker.wait_for(" running\n", count=2)
        cdn.open()
        sync = await world.message_with("3/3 accounts", timeout=120)
        assert "Failed" not in sync.plain
        assert most_at_once(worker.output) == 2
        assert worker.output.count(" running\n") == 3
        assert len(videos_once(data_dir)) == 9
        assert await MediaItem.filter(platform="tiktok").count() == 9
