"""Figure 8: sync-all of many TikTok accounts handed to 1 and to 3 workers (RabbitMQ, PostgreSQL).

The bot side runs in this process (open_services + the RemoteRunner, as wiring.py wires
them with QUEUE_URL); each worker is a real `python bot.py worker --platform tiktok`.
Every fake response is slowed by the size's latency, so the figure shows download
work spread over machines. On one small machine the workers share its cores, so the
CPU seconds of the timed window are measured too: the workers' (from /proc) and this
process's (the bot side and the fake servers); their sum over the cores is the
shortest wall time the CPU allows.
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
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aio_pika.exceptions

import bot
from bench.sizes import Size
from bench.table import Row, Section, seconds
from db import close_database
from db.models import Account, MediaItem, Process
from downloader.queue.broker import queue_name
from downloader.queue.remote import RemoteRunner
from services import open_services
from tests.fakes.tiktok import FakeTikTok
from tests.fakes.tls import FakeInternet
from tests.harness import make_settings
from tests.postgres import own_database, postgres_unavailable
from tests.workers_kit import forgotten_after

ACCOUNTS, VIDEOS = 40, 3
JOBS_PER_WORKER = 2  # SYNCALL_TIKTOK_CONCURRENCY's default
AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LABEL = "8. Workers: sync-all of 40 TikTok accounts"


@dataclass
class Timing:
    """One sync-all: wall time and the CPU seconds spent meanwhile."""

    wall: float
    workers_cpu: float | None  # None where /proc is not there
    local_cpu: float  # this process: the bot side and the fake servers
    busy: float | None  # share of the machine's CPU time in use (every process, the databases too)

    @property
    def cpu(self) -> float | None:
        return None if self.workers_cpu is None else self.workers_cpu + self.local_cpu


def run(size: Size) -> Section:
    """Wall time with 1 and with 3 workers, same fake, same run."""
    reason = asyncio.run(postgres_unavailable()) or asyncio.run(_rabbitmq_unavailable())
    if reason:
        return Section([Row(LABEL, f"skipped: {reason}")], [])
    with FakeInternet() as net:
        net.latency = size.latency
        runs = {n: asyncio.run(_sync(net, n)) for n in (1, 3)}
    one, three = runs[1], runs[3]
    ratio = one.wall / three.wall
    rows = [
        Row(
            LABEL,
            f"3 workers {seconds(three.wall)}",
            f"1 worker {seconds(one.wall)}",
            f"{ratio:.1f}x",
            "≥ 2x",
            ratio >= 2,
        )
    ]
    if three.cpu is not None and one.cpu is not None:
        rows.append(_ceiling(one, three))
    broker = AMQP.split("@")[-1]
    note = (
        f"Figure 8: {ACCOUNTS} accounts × {VIDEOS} videos, {JOBS_PER_WORKER} TikTok jobs per worker, "
        f"RabbitMQ at {broker}; CPU seconds of the timed window (workers + this process's bot side "
        "and fake servers), divided by the cores, give the shortest wall time the CPU allows."
    )
    return Section(rows, [note])


def _ceiling(one: Timing, three: Timing) -> Row:
    """The CPU-bound ceiling: all CPU seconds of the 3-worker run spread over every core."""
    cores = os.cpu_count() or 1
    floor = three.cpu / cores
    return Row(
        "8. same: CPU seconds (workers + bot and fakes) and the wall time they allow; machine busy",
        f"3 workers {three.workers_cpu:.1f} + {three.local_cpu:.1f} s = {three.cpu / ACCOUNTS:.3f} s per "
        f"account; ≥ {seconds(floor)} on {cores} cores; {_percent(three.busy)} busy",
        f"1 worker {one.workers_cpu:.1f} + {one.local_cpu:.1f} s; {_percent(one.busy)} busy",
        f"at most {one.wall / floor:.1f}x",
    )


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{share:.0%}"


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def _cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of these processes so far (Linux /proc), or None."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    return total / tick


async def _rabbitmq_unavailable(timeout: float = 10) -> str | None:
    """None when RabbitMQ answers a login within ``timeout``, else why not (it may accept
    connections and never answer)."""
    try:
        connection = await asyncio.wait_for(aio_pika.connect(AMQP), timeout)
    except TimeoutError:
        return f"RabbitMQ at {AMQP.split('@')[-1]} did not answer in {timeout:.0f} s"
    except Exception as exc:  # refused, wrong password: all mean "not here"
        return f"RabbitMQ at {AMQP.split('@')[-1]} is not reachable ({type(exc).__name__})"
    await connection.close()
    return None


async def _consuming(prefix: str, workers: int, timeout: float = 60) -> None:
    """Wait until every worker consumes the TikTok queue (registered is not enough: it may
    still be connecting to the broker, and the others would take all the jobs meanwhile)."""
    connection = await aio_pika.connect(AMQP)
    try:
        channel = await connection.channel()
        deadline = time.monotonic() + timeout
        while True:
            try:
                queue = await channel.declare_queue(queue_name(prefix, "tiktok"), passive=True)
                consumers = queue.declaration_result.consumer_count
            except aio_pika.exceptions.ChannelClosed:  # not declared yet
                channel, consumers = await connection.channel(), 0
            if consumers >= workers and await Process.filter(kind="worker").count() >= workers:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{consumers} of {workers} workers consume the queue in {timeout:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await connection.close()


def _log():
    """Where workers write (BENCH_LOG to keep their logs)."""
    return open(os.environ.get("BENCH_LOG", os.devnull), "a")


async def _sync(net: FakeInternet, workers: int) -> Timing:
    tiktok = FakeTikTok(net)
    names = [f"bench.{secrets.token_hex(3)}.{i}" for i in range(ACCOUNTS)]
    for name in names:
        tiktok.add_account(name, videos=VIDEOS, size=40_000)
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        prefix = f"bench-{secrets.token_hex(4)}"
        async with own_database() as db_url, forgotten_after(AMQP, prefix):  # queues deleted after
            data = Path(tmp) / "data"
            settings = make_settings(data, net=net, database_url=db_url, queue_url=AMQP, queue_name=prefix)
            services = await open_services(settings, sleep=lambda s: None)
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
                "SYNCALL_TIKTOK_CONCURRENCY": str(JOBS_PER_WORKER),
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
                await _consuming(prefix, workers)  # not timed
                parent, _ = await services.jobs.prepare_syncall(chat_id=None)
                pids = [proc.pid for proc in procs]
                ticks, cpu, local = _machine_ticks(), _cpu_seconds(pids), time.process_time()
                started = time.perf_counter()
                result = [(r.username, r.state, r.error) for r in await services.jobs.start(parent)][:3]
                wall = time.perf_counter() - started
                local = time.process_time() - local
                after, busy = _cpu_seconds(pids), _busy(ticks, _machine_ticks())
                workers_cpu = None if cpu is None or after is None else after - cpu
                done = await MediaItem.filter(platform="tiktok").count()
                assert done == ACCOUNTS * VIDEOS, (done, result, parent.counts)
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=30)
                await services.close()
                await close_database()
    return Timing(wall, workers_cpu, local, busy)
