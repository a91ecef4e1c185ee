"""Downloads on a real task queue: the bot hands jobs to worker processes (RabbitMQ, PostgreSQL).

The bot runs in this process against the fake Telegram; each worker is a real
`python bot.py worker` subprocess with its own log, sharing DATA_DIR and the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from db.models import Job, MediaItem, Process
from tests.fakes.instagram import make_profile
from tests.harness import files_under, media_on_disk
from tests.workers_kit import (
    BOT,
    BROKERS,
    PATIENT,
    redis_consumers,
    running_cluster,
    started_jobs,
    videos_once,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=sorted(BROKERS), ids=sorted(BROKERS))
async def cluster(request, net, data_dir, tmp_path):
    """PostgreSQL of our own, a fresh queue name on the broker, the bot, and a way to start workers."""
    async with running_cluster(net, data_dir, tmp_path, BROKERS[request.param]) as running:
        yield running


async def test_syncall_spreads_over_two_workers_and_status_lists_them(cluster, data_dir):
    world, start = cluster.world, cluster.start
    names = [f"dancer.{i}" for i in range(6)]
    for name in names:
        world.tiktok.add_account(name, videos=3, size=20_000)
    world.instagram.add_profile(make_profile("carol", 3003, posts=3, stories=0, highlights=()))
    for name in names:
        await world.reply(f"/add tiktok.com/@{name}")
    await world.reply("/add carol")
    world.tiktok.media_delay = 0.02  # jobs overlap, so the second worker gets some
    one, two = start("w-one"), start("w-two")
    await one.wait_for("takes instagram and tiktok jobs")
    await two.wait_for("takes instagram and tiktok jobs")
    await world.reply("/syncall")
    status = await world.reply("/status")
    assert "Workers" in status and "w-one (instagram+tiktok, session archivebot)" in status
    assert "w-two (instagram+tiktok, session archivebot)" in status
    sync = await world.message_with("7/7 accounts", timeout=120)
    assert "Sync all" in sync.plain and "Failed" not in sync.plain
    assert started_jobs(one) >= 1 and started_jobs(two) >= 1
    assert started_jobs(one) + started_jobs(two) == 7  # every account once
    assert len(videos_once(data_dir)) == 18
    assert await MediaItem.filter(platform="tiktok").count() == 18
    assert await MediaItem.filter(platform="instagram").count() == 5
    assert {j.owner for j in await Job.filter(kind="download")} <= {
        p.token for p in await Process.filter(kind="worker")
    }


async def test_a_worker_killed_mid_job_is_replaced_and_every_file_comes_once(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("long.one", videos=12, size=60_000)
    gate = world.tiktok.media_gate
    gate.hold_after(3)  # three videos whole, then the job waits mid-file: the kill lands mid-job
    first = start("w-first", "--platform", "tiktok")
    await first.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@long.one")
    await first.wait_for(" running\n")
    await until_files(data_dir / "downloads" / "tiktok" / "long.one" / "videos", 3)
    await gate.until_held()
    first.stop(signal.SIGKILL)
    gate.open()
    second = start("w-second", "--platform", "tiktok")
    await second.wait_for("its worker is gone; continuing it from its saved place", timeout=60)
    final = await world.message_with("Completed: ", timeout=90)
    assert "Completed: 12 videos" in final.plain
    assert len(videos_once(data_dir)) == 12
    assert await MediaItem.filter(platform="tiktok").count() == 12
    fetched = [r for r in world.tiktok.internet.requests if "/video/tos/" in r.path]
    assert len({r.path for r in fetched}) == 12


async def test_a_bot_restart_leaves_the_running_worker_alone(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("steady.one", videos=12, size=60_000)
    gate = world.tiktok.media_gate
    gate.hold_after(2)  # two videos whole, then the job waits mid-file: it outlasts the restart
    worker = start("w-steady", "--platform", "tiktok", env=PATIENT)
    await worker.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@steady.one")
    status = await world.message_with("Downloading @steady.one")
    await until_files(data_dir / "downloads/tiktok/steady.one/videos", 2)
    await gate.until_held()
    await cluster.stop_bot()
    await cluster.start_bot()
    assert "completed" not in worker.output
    gate.open()
    await world.message_with("Completed: 12 videos", timeout=90)
    final = world.telegram.message(status.chat_id, status.message_id)
    assert "Completed: 12 videos" in final.plain  # the same status message, edited on
    assert len([m for m in world.bot_messages() if m.plain.startswith("@steady.one")]) == 1
    assert started_jobs(worker) == 1 and "handed" not in worker.output
    assert len(videos_once(data_dir)) == 12
    assert await MediaItem.filter(platform="tiktok").count() == 12
    fetched = [r.path for r in world.tiktok.internet.requests if "/video/tos/" in r.path]
    assert len(fetched) == len(set(fetched)) == 12


async def test_a_job_that_ends_while_the_bot_is_down_shows_its_end_after_the_restart(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("quick.one", videos=6, size=60_000)
    gate = world.tiktok.media_gate
    gate.hold_after(0)  # the job waits mid-file: it outlasts the bot's stop
    worker = start("w-quick", "--platform", "tiktok", env=PATIENT)
    await worker.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@quick.one")
    status = await world.message_with("Downloading @quick.one")
    await gate.until_held()
    await cluster.stop_bot()
    gate.open()
    await worker.wait_for("completed: @quick.one")
    assert "Completed" not in world.telegram.message(status.chat_id, status.message_id).plain
    await cluster.start_bot()
    await world.message_with("Completed: 6 videos", timeout=30)
    final = world.telegram.message(status.chat_id, status.message_id)
    assert "Completed: 6 videos" in final.plain
    assert len([m for m in world.bot_messages() if m.plain.startswith("@quick.one")]) == 1
    assert started_jobs(worker) == 1 and len(videos_once(data_dir)) == 6


async def test_a_worker_stopped_with_sigterm_hands_its_job_to_another(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("handed.one", videos=12, size=60_000)
    gate = world.tiktok.media_gate
    gate.hold_after(3)  # three videos whole, then the job waits mid-file until its worker stops
    prefix = cluster.settings.queue_name
    one, two = start("w-one", "--platform", "tiktok"), start("w-two", "--platform", "tiktok")
    await one.wait_for("takes tiktok jobs")
    await two.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@handed.one")
    status = await world.message_with("Downloading @handed.one")
    await until_files(data_dir / "downloads/tiktok/handed.one/videos", 3)
    await gate.until_held()
    first, second = (one, two) if started_jobs(one) else (two, one)
    first.process.send_signal(signal.SIGTERM)
    await first.wait_for("stopping: saving running jobs")
    gate.open()
    assert first.stop(signal.SIGTERM) == 0
    job = await Job.get(kind="download")
    assert f"job {job.id} handed back to the queue" in first.output
    consumers = await redis_consumers(cluster.settings.queue, f"{prefix}.tiktok", f"{prefix}-workers")
    assert [c for c in consumers if c.startswith(first.name)] == []  # it left the Redis group
    await world.message_with("Completed: 12 videos", timeout=90)
    final = world.telegram.message(status.chat_id, status.message_id)
    assert "Completed: 12 videos" in final.plain
    assert started_jobs(first) == 1 and started_jobs(second) == 1
    assert len(videos_once(data_dir)) == 12
    assert await MediaItem.filter(platform="tiktok").count() == 12
    fetched = {r.path for r in world.tiktok.internet.requests if "/video/tos/" in r.path}
    assert len(fetched) == 12


async def until_files(folder, count: int, timeout: float = 60) -> None:
    """Wait until ``folder`` holds ``count`` finished videos (the job is well under way)."""
    deadline = time.monotonic() + timeout
    while len([n for n in files_under(folder) if n.endswith(".mp4")] if folder.exists() else []) < count:
        assert time.monotonic() < deadline, f"fewer than {count} videos in {folder}"
        await asyncio.sleep(0.05)


async def test_a_job_outlasting_the_redelivery_time_stays_on_its_live_worker(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("long.haul", videos=12, size=60_000)
    world.tiktok.add_account("short.one", videos=2, size=20_000)
    gate = world.tiktok.media_gate
    gate.hold_after(2)  # two videos whole, then the long job waits mid-file until the short one ran
    soon = {"QUEUE_REDELIVER_AFTER": "3"} | PATIENT
    busy = start("w-busy", "--platform", "tiktok", env=soon | {"SYNCALL_TIKTOK_CONCURRENCY": "1"})
    await busy.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@long.haul")
    await busy.wait_for(" running\n")
    idle = start("w-idle", "--platform", "tiktok", env=soon)
    await idle.wait_for("takes tiktok jobs")
    await gate.until_held()
    # Time itself is the event here: the running job's message gets older than QUEUE_REDELIVER_AFTER.
    await asyncio.sleep(4)
    await world.reply("/download tiktok.com/@short.one")  # the idle worker looks for silent jobs
    await idle.wait_for(" running\n")
    gate.open()
    await world.message_with("Completed: 2 videos", timeout=60)
    await world.message_with("Completed: 12 videos", timeout=90)
    assert started_jobs(busy) == 1 and started_jobs(idle) == 1
    for worker in (busy, idle):
        assert "already runs on another worker" not in worker.output
        assert "went silent" not in worker.output
    assert len(videos_once(data_dir)) == 14


async def test_a_job_of_a_killed_worker_is_continued_without_the_bot(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("orphan.one", videos=12, size=60_000)
    gate = world.tiktok.media_gate
    gate.hold_after(2)  # two videos whole, then the job waits mid-file: it outlasts the bot's stop
    soon = {"QUEUE_REDELIVER_AFTER": "3"}
    doomed = start("w-doomed", "--platform", "tiktok", env=soon | PATIENT)
    await doomed.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@orphan.one")
    status = await world.message_with("Downloading @orphan.one")
    await until_files(data_dir / "downloads/tiktok/orphan.one/videos", 2)
    await gate.until_held()
    await cluster.stop_bot()  # nobody hands the job out again: the broker must
    doomed.stop(signal.SIGKILL)
    assert "completed" not in doomed.output
    gate.open()
    heir = start("w-heir", "--platform", "tiktok", env=soon)
    await heir.wait_for("its worker is gone; continuing it from its saved place", timeout=30)
    await cluster.start_bot()
    await world.message_with("Completed: 12 videos", timeout=60)
    assert "Completed: 12 videos" in world.telegram.message(status.chat_id, status.message_id).plain
    assert started_jobs(heir) == 1 and len(videos_once(data_dir)) == 12
    assert await MediaItem.filter(platform="tiktok").count() == 12


async def test_pause_from_chat_reaches_the_worker_then_resume_finishes(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.tiktok.add_account("slow.one", videos=8, size=60_000)
    gate = world.tiktok.media_gate
    gate.hold_after(2)  # two videos whole, then the job waits mid-file: the Pause lands mid-job
    worker = start("w-pause", "--platform", "tiktok")
    await worker.wait_for("takes tiktok jobs")
    await world.reply("/download tiktok.com/@slow.one")
    status = await world.message_with("Downloading @slow.one")
    await gate.until_held()
    await world.press(status, "Pause")
    pressed = time.monotonic()
    await worker.wait_for("pause from chat", timeout=10)
    assert time.monotonic() - pressed < 2.0
    gate.open()
    await world.message_with("Paused", timeout=30)
    paused_at = await MediaItem.filter(platform="tiktok").count()
    assert paused_at < 8
    await world.press(await world.message_with("Paused"), "Resume")
    await world.message_with("Completed: 8 videos", timeout=60)
    assert len(videos_once(data_dir)) == 8


async def test_two_workers_with_one_instagram_session_take_turns(cluster, data_dir):
    world, start = cluster.world, cluster.start
    world.instagram.add_profile(make_profile("alice", 1001, posts=6, stories=0, highlights=()))
    world.instagram.add_profile(make_profile("bob", 1002, posts=6, stories=0, highlights=()))
    world.instagram.media_delay = 0.00002
    one, two = start("w-a", "--platform", "instagram"), start("w-b", "--platform", "instagram")
    await one.wait_for("takes instagram jobs")
    await two.wait_for("takes instagram jobs")
    await world.reply("/add alice")
    await world.reply("/add bob")
    await world.reply("/syncall")
    overlap = 0
    deadline = time.monotonic() + 120
    while "2/2 accounts" not in " ".join(m.plain for m in world.bot_messages()):
        doing = [p.detail.get("doing") for p in await Process.filter(kind="worker") if p.detail]
        overlap = max(overlap, sum(1 for d in doing if d))
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert overlap == 1  # never two Instagram jobs of one session at once
    waited = "Instagram session archivebot is busy on another worker" in one.output + two.output
    assert waited and started_jobs(one) + started_jobs(two) == 2
    files = [n for n in media_on_disk(data_dir) if n.startswith("instagram/") and not n.endswith(".json")]
    assert {n.split("/")[1] for n in files} == {"alice", "bob"}
    assert len(files) == len(set(files)) == await MediaItem.filter(platform="instagram").count()


def test_sqlite_with_a_queue_is_refused_in_one_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_", "DATABASE_"))}
    env |= {"DATA_DIR": str(tmp_path / "data"), "QUEUE_URL": "amqp://guest:guest@127.0.0.1:5672/"}
    command = [sys.executable, str(BOT), "worker"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "QUEUE_URL needs DATABASE_URL to be a PostgreSQL database (postgres://...): "
        "the bot and its workers share one database, which an SQLite file cannot be."
    ]
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").iterdir())
