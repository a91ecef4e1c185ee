"""A job whose worker runs on another machine: taken over only once that worker is gone.

The broker hands a job out again the moment its worker's connection drops, long before a
worker on another machine misses its heartbeat; the next worker must neither drop the job
(a live owner) nor run it twice. The other machine is a process row with another host name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import pytest

from db import close_database, open_database
from db.leases import now
from db.models import Job, MediaItem, Process
from downloader.queue import broker as brokers
from tests.workers_kit import running_cluster, started_jobs, videos_once

pytestmark = pytest.mark.timeout(180)
ELSEWHERE = "other-machine-token"


async def beat_until(stop: asyncio.Event) -> None:
    """The other machine's worker, alive: its heartbeat, every half second."""
    while not stop.is_set():
        await Process.filter(token=ELSEWHERE).update(seen_at=now())
        await asyncio.sleep(0.5)


async def test_a_job_held_on_another_machine_waits_for_its_heartbeat_then_is_continued(
    net, data_dir, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    async with running_cluster(net, data_dir, tmp_path) as cluster:
        world = cluster.world
        world.tiktok.add_account("far.one", videos=4, size=20_000)
        await world.reply("/add tiktok.com/@far.one")
        await world.reply("/download tiktok.com/@far.one")  # no worker yet: it waits in the queue
        await world.message_with("@far.one")
        deadline = time.monotonic() + 30
        while "handed to the tiktok workers" not in caplog.text:  # in the queue now
            assert time.monotonic() < deadline, "the bot never handed the job to the queue"
            await asyncio.sleep(0.05)
        await Process.create(token=ELSEWHERE, kind="worker", host="elsewhere", pid=4242, seen_at=now())
        job = await Job.get(kind="download")
        await Job.filter(id=job.id).update(state="running", owner=ELSEWHERE)  # taken over there
        stop = asyncio.Event()
        beating = asyncio.create_task(beat_until(stop))

        worker = cluster.start("w-here", "--platform", "tiktok")
        await worker.wait_for(f"job {job.id} already runs on another worker", timeout=60)
        assert await MediaItem.all().count() == 0 and started_jobs(worker) == 0

        # The bot stops, then the other machine dies (its heartbeat 5 s short of stale) and the
        # broker hands the job out again, as it does when a worker's connection drops.
        stop.set()
        await beating
        await cluster.stop_bot()
        await open_database(cluster.settings.effective_database_url)  # the test's own look at it
        await Process.filter(token=ELSEWHERE).update(seen_at=now() - timedelta(seconds=70))
        died = time.monotonic()
        await hand_out_again(cluster.settings, job.id)
        await worker.wait_for("its worker is gone; continuing it from its saved place", timeout=60)
        assert time.monotonic() - died > 2  # not before the heartbeat went stale
        await worker.wait_for("completed: @far.one", timeout=60)
        assert (await Job.get(id=job.id)).state == "completed"
        assert len(videos_once(data_dir)) == 4
        assert started_jobs(worker) == 1
        fetched = [r.path for r in world.tiktok.internet.requests if "/video/tos/" in r.path]
        assert len(fetched) == len(set(fetched)) == 4
        await close_database()


async def hand_out_again(settings, job_id: int) -> None:
    """Put job ``job_id`` in the TikTok queue once more, as the broker would."""
    broker = brokers.make_broker(settings.queue, "tiktok", worker=False, prefix=settings.queue_name)
    await broker.startup()
    try:
        await brokers.kick(broker, job_id)
    finally:
        await broker.shutdown()
