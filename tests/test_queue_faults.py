"""The task queue down at start, or going away mid-run and coming back (RabbitMQ and Redis).

A TCP relay (tests/fakes/outage.py) stands between the bot and workers and the real broker:
while down it refuses connections and cuts the open ones; it only forwards bytes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from urllib.parse import urlsplit

import pytest

from db.models import Job, MediaItem
from handlers.status_view import JobView, SyncView, render_job, render_sync
from tests.fakes.outage import Relay
from tests.harness import files_under
from tests.workers_kit import BROKERS, PATIENT, running_cluster, started_jobs, videos_once

pytestmark = pytest.mark.timeout(180)
ATTEMPT = re.compile(
    r"The task queue at (amqp|redis)://127\.0\.0\.1:\d+ is not reachable \(.+\); trying again in (\d+) s\."
)


def gated_url(url: str, port: int) -> str:
    """The broker URL with its port replaced by the relay's."""
    real = urlsplit(url).port or (6379 if url.startswith("redis") else 5672)
    return url.replace(f":{real}", f":{port}", 1)


@pytest.fixture(params=sorted(BROKERS))
async def gated(request, net, data_dir, tmp_path, caplog):
    """The bot and workers reach the broker through a relay that starts down."""
    real = BROKERS[request.param]
    caplog.set_level(logging.INFO)
    with Relay(urlsplit(real).port or (6379 if real.startswith("redis") else 5672)) as gate:
        via = gated_url(real, gate.port)
        async with running_cluster(net, data_dir, tmp_path, real, via=via) as cluster:
            yield cluster.world, cluster.start, gate


def attempts(text: str) -> list[int]:
    """The delays of the "not reachable" lines in a log, in order."""
    return [int(m.group(2)) for m in ATTEMPT.finditer(text)]


async def until(check, timeout: float = 60, what: str = "condition") -> None:
    """Wait until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def waiting_messages(world) -> list:
    """The status messages that say their download waits for the task queue."""
    return [m for m in world.bot_messages() if "Waiting for the task queue at " in (m.plain or "")]


def bot_log(caplog) -> str:
    return caplog.text  # formatted when logged (a library's argument may change later)


def tracebacks(caplog) -> list[str]:
    """Records with a traceback logged by the bot's event loop (the main thread).

    The fakes run event loops in threads of their own; garbage collection may run there,
    and aio-pika's __del__ then closes a failed connection on that loop, which cannot work."""
    return [str(r.msg) for r in caplog.records if r.exc_info and r.threadName == "MainThread"]


async def test_bot_and_worker_started_while_the_queue_is_down_wait_then_work(gated, data_dir, caplog):
    world, start, gate = gated
    world.tiktok.add_account("early.bird", videos=4, size=20_000)
    worker = start("w-early", "--platform", "tiktok")
    answer = await world.reply("/list")  # chat works while the queue is down
    assert answer and "Traceback" not in answer
    await world.reply("/download tiktok.com/@early.bird")
    waiting = await world.message_with("Waiting for the task queue at ")
    assert "not reachable; the download starts once it is up" in waiting.plain
    world.tiktok.add_account("never.mind", videos=2, size=20_000)
    await world.reply("/download tiktok.com/@never.mind")
    await until(lambda: len(waiting_messages(world)) == 2, what="a second waiting download")
    other = next(m for m in waiting_messages(world) if "@never.mind" in m.plain)
    await world.press(other, "Cancel")  # settled by the bot: it never reached the queue
    await world.message_with("Cancelled: 0 videos")
    await until(lambda: len(attempts(worker.output)) >= 2, what="two attempts by the worker")
    assert "takes tiktok jobs" not in worker.output
    gate.up()
    await world.message_with("Completed: 4 videos", timeout=60)
    delays = attempts(worker.output)
    assert delays[:2] == [1, 2] and len(delays) == worker.output.count("is not reachable")
    assert worker.output.count("takes tiktok jobs") == 1 and "Traceback" not in worker.output
    assert started_jobs(worker) == 1  # the cancelled one never ran
    assert await Job.filter(kind="download", state="cancelled").count() == 1
    assert len(videos_once(data_dir)) == 4
    assert await MediaItem.filter(platform="tiktok").count() == 4
    text = bot_log(caplog)
    assert attempts(text) and text.count("waits for the task queue at") == 2
    assert text.count("downloads go to workers through") == 1
    assert tracebacks(caplog) == []


async def test_queue_going_away_mid_job_loses_nothing_and_runs_nothing_twice(gated, data_dir, caplog):
    world, start, gate = gated
    gate.up()
    remote = world.app.bot_data.extras["services"].remote
    await until(remote.connected.is_set, what="the bot to reach the queue")
    world.tiktok.add_account("long.one", videos=10, size=60_000)
    world.tiktok.add_account("late.one", videos=3, size=20_000)
    cdn = world.tiktok.media_gate
    cdn.hold_after(2)  # two videos whole, then the job waits mid-file until the queue is gone
    worker = start("w-mid", "--platform", "tiktok", env=PATIENT)
    await worker.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@long.one")
    videos = data_dir / "downloads" / "tiktok" / "long.one" / "videos"
    await until(lambda: videos.exists() and len(files_under(videos)) >= 2, what="the first files")
    await cdn.until_held()
    gate.down()
    await world.reply("/download tiktok.com/@late.one")
    waiting = await world.message_with("Waiting for the task queue at ")
    assert "@late.one" in waiting.plain
    cdn.open()
    await world.message_with("Completed: 10 videos", timeout=90)  # the running job does not need it
    await worker.wait_for("went away")
    await until(lambda: attempts(worker.output), what="the worker to try again")
    gate.up()
    await world.message_with("Completed: 3 videos", timeout=90)
    assert started_jobs(worker) == 2
    assert worker.output.count("went away") == 1 and "Traceback" not in worker.output
    assert worker.output.count("its acknowledgement was lost") == 1
    assert len(videos_once(data_dir)) == 13
    assert await MediaItem.filter(platform="tiktok").count() == 13
    fetched = [r.path for r in world.tiktok.internet.requests if "/video/tos/" in r.path]
    assert len(fetched) == len(set(fetched)) == 13
    text = bot_log(caplog)
    assert "job " in text and text.count("waits for the task queue at") >= 1
    assert tracebacks(caplog) == []


def test_the_status_says_a_download_waits_for_the_task_queue():
    view = JobView(7, "tiktok", "alice", ["videos"], queue_wait="redis://10.0.0.5:6379")
    text = render_job(view)
    assert text.count("⏳") == 1 and "Starting" not in text
    assert "Waiting for the task queue at redis://10.0.0.5:6379: not reachable;" in text
    view.queue_wait = None
    assert "Waiting for the task queue" not in render_job(view) and "Starting…" in render_job(view)
    sync = SyncView(8, total=3, waiting={9: "amqp://10.0.0.5:5672", 10: "amqp://10.0.0.5:5672"})
    assert "⏳ Waiting for the task queue at amqp://10.0.0.5:5672: not reachable;" in render_sync(sync)
    del sync.waiting[9]  # one account was handed over: the other still waits
    assert render_sync(sync).count("⏳ Waiting for the task queue") == 1
    sync.state = "cancelled"
    assert "Waiting for the task queue" not in render_sync(sync)
