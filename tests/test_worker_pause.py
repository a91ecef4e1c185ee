"""Pause from chat reaches a worker (`bot.py worker` on RabbitMQ) and stops its transfers at once."""

from __future__ import annotations

import hashlib

import pytest

from db.models import MediaItem
from tests.fakes.instagram import make_profile
from tests.test_pause_now import (
    FILES,
    SLOW,
    assert_cdn_quiet,
    expected_contents,
    finished_files,
    leftovers,
    partial_files,
    press_and_time,
    total_bytes,
    until,
)
from tests.workers_kit import RABBIT, running_cluster

pytestmark = pytest.mark.timeout(180)


async def test_pause_reaches_the_worker_within_2s_and_resume_continues_its_files(net, data_dir, tmp_path):
    async with running_cluster(net, data_dir, tmp_path, RABBIT) as cluster:
        world = cluster.world
        world.instagram.add_profile(
            make_profile(
                "alice", 1001, posts=8, stories=0, highlights=(), image_size=300_000, video_size=500_000
            )
        )
        worker = cluster.start("w-now", "--platform", "instagram")
        await worker.wait_for("takes instagram jobs")
        world.instagram.media_delay = SLOW
        await world.reply("/download alice")
        status = await world.message_with("@alice · Instagram")
        await until(lambda: world.instagram.cdn_bytes_sent >= 0.2 * total_bytes(world.instagram), 60, "20 %")
        took = await press_and_time(world, status, "Pause", "⏸ Paused")
        assert took < 2.0, f"paused after {took:.1f} s"
        await assert_cdn_quiet(world.instagram)
        partial = partial_files(data_dir)
        done = finished_files(data_dir)
        assert partial and len(done) + len(partial) <= FILES

        world.instagram.media_delay = 0
        await world.press(world.telegram.message(status.chat_id, status.message_id), "Resume")
        await world.message_with("Completed: 8 posts (12 files)", timeout=60)
        asked = sorted(int(v.removeprefix("bytes=").rstrip("-")) for _, v in world.instagram.range_requests())
        assert asked == sorted(partial.values())
        posts = data_dir / "downloads" / "instagram" / "alice" / "posts"
        media = [p for p in posts.iterdir() if not p.name.startswith(".") and not p.name.endswith(".json")]
        digests = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in media)
        assert digests == sorted(expected_contents(world.instagram))
        assert await MediaItem.all().count() == FILES
        assert leftovers(data_dir) == []
