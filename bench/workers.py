"""Figure 8: sync-all of many TikTok accounts handed to 1 and to 3 workers (RabbitMQ, PostgreSQL).

The bot side runs in this process (open_services + the RemoteRunner, as bot.py wires
them with QUEUE_URL); each worker is a real `python bot.py worker --platform tiktok`.
Every fake response is slowed by the size's latency, so the figure shows download
work spread over machines, not CPU.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bot
from bench.sizes import Size
from bench.table import Row, Section, seconds
from db import close_database
from db.models import Account, MediaItem, Process
from downloader.queue.remote import RemoteRunner
from tests.fakes.tiktok import FakeTikTok
from tests.fakes.tls import FakeInternet
from tests.harness import make_settings
from tests.postgres import own_database, postgres_unavailable

ACCOUNTS, VIDEOS = 40, 3
AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LABEL = "8. Workers: sync-all of 40 TikTok accounts"


def run(size: Size) -> Section:
    """Wall time with 1 and with 3 workers, same fake, same run."""
    reason = asyncio.run(postgres_unavailable())
    if reason:
        return Section([Row(LABEL, f"skipped: {reason}")], [])
    with FakeInternet() as net:
        net.latency = size.latency
        times = {n: asyncio.run(_sync(net, n)) for n in (1, 3)}
    ratio = times[1] / times[3]
    row = Row(
        LABEL,
        f"3 workers {seconds(times[3])}",
        f"1 worker {seconds(times[1])}",
        f"{ratio:.1f}x",
        "≥ 2x",
        ratio >= 2,
    )
    broker = AMQP.split("@")[-1]
    note = f"Figure 8: {ACCOUNTS} accounts × {VIDEOS} videos, 2 TikTok jobs per worker, RabbitMQ at {broker}."
    return Section([row], [note])


def _log():
    """Where workers write (BENCH_LOG to keep their logs)."""
    return open(os.environ.get("BENCH_LOG", os.devnull), "a")


async def _sync(net: FakeInternet, workers: int) -> float:
    tiktok = FakeTikTok(net)
    names = [f"bench.{secrets.token_hex(3)}.{i}" for i in range(ACCOUNTS)]
    for name in names:
        tiktok.add_account(name, videos=VIDEOS, size=40_000)
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        async with own_database() as db_url:
            data = Path(tmp) / "data"
            prefix = f"bench-{secrets.token_hex(4)}"
            settings = make_settings(data, net=net, database_url=db_url, queue_url=AMQP, queue_name=prefix)
            services = await bot.open_services(settings, sleep=lambda s: None)
            remote = RemoteRunner(services.service, services.registry, AMQP, db_url, prefix)
            await remote.start()
            services.remote, services.jobs.runner, services.jobs.remote = remote, remote.run, True
            for name in names:
                await Account.create(platform="tiktok", username=name, tracked=True)
            env = os.environ | {
                "DATA_DIR": str(data),
                "DATABASE_URL": db_url,
                "QUEUE_URL": AMQP,
                "QUEUE_NAME": prefix,
                "HTTPS_PROXY": net.proxy_url,
                "NO_PROXY": "127.0.0.1,localhost",
                "CA_BUNDLE": net.ca_path,
                "YTDLP_OPTIONS": '{"retries": 0, "extractor_retries": 0, "socket_timeout": 5}',
            }
            procs = [
                subprocess.Popen(
                    [sys.executable, str(Path(bot.__file__)), "worker", "--platform", "tiktok"],
                    cwd=tmp,
                    env=env,
                    stdout=_log(),
                    stderr=subprocess.STDOUT,
                )
                for _ in range(workers)
            ]
            try:
                while await Process.filter(kind="worker").count() < workers:  # not timed
                    await asyncio.sleep(0.1)
                parent, _ = await services.jobs.prepare_syncall(chat_id=None)
                started = time.perf_counter()
                result = [(r.username, r.state, r.error) for r in await services.jobs.start(parent)][:3]
                wall = time.perf_counter() - started
                done = await MediaItem.filter(platform="tiktok").count()
                assert done == ACCOUNTS * VIDEOS, (done, result, parent.counts)
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=30)
                await services.close()
                await close_database()
    return wall
