"""Building blocks for tests with a real task queue: broker URLs, worker processes, their env.

The bot runs in the test's process against the fake Telegram; each worker is a real
`python bot.py worker` subprocess with its own log, sharing DATA_DIR and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.chat import World
from tests.fakes.instagram import FakeInstagram, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import TOKEN, files_under, make_settings, media_on_disk, running_bot
from tests.postgres import own_database, postgres_unavailable

BOT = Path(__file__).resolve().parent.parent / "bot.py"
RABBIT = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROKERS = {"rabbitmq": RABBIT, "redis": REDIS}
# Worker settings for a test that holds the fake CDN (tests/fakes/gate.py) across a bot restart:
# yt-dlp waits out the held file instead of giving up after the usual 5 s.
PATIENT = {"YTDLP_OPTIONS": '{"retries": 0, "extractor_retries": 0, "socket_timeout": 60}'}


async def unreachable(url: str) -> str | None:
    """None when the broker at the URL answers (a Redis PING, an AMQP login) within 5 s, else why not.

    Asked once per test session: a wedged broker costs 5 s once, not per test."""
    if url not in _PROBED:
        _PROBED[url] = await _probe(url)
    return _PROBED[url]


_PROBED: dict[str, str | None] = {}


async def _probe(url: str) -> str | None:
    parts = urlsplit(url)
    redis = parts.scheme.startswith("redis")
    port = parts.port or (6379 if redis else 5672)
    name, where = "Redis" if redis else "RabbitMQ", f"{parts.hostname}:{port}"
    try:
        async with asyncio.timeout(5):  # a wedged broker takes connections but never answers
            await (_ping_redis(url) if redis else _login_amqp(url))
    except TimeoutError:
        return f"{name} at {where} takes connections but does not answer within 5 s"
    except Exception as exc:
        return f"{name} is not reachable at {where} ({getattr(exc, 'strerror', None) or exc})"
    return None


async def _ping_redis(url: str) -> None:
    from redis.asyncio import Redis

    async with Redis.from_url(url) as redis:
        await redis.ping()


async def _login_amqp(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    await connection.close()


def worker_env(
    *, data_dir: Path, db_url: str, queue_url: str, prefix: str, net, session: Path
) -> dict[str, str]:
    """The environment of a worker process: this test's fakes, database, queue and folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    return env | {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": db_url,
        "QUEUE_URL": queue_url,
        "QUEUE_NAME": prefix,
        "HTTPS_PROXY": net.proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "CA_BUNDLE": net.ca_path,
        "INSTAGRAM_REQUEST_DELAY": "0",
        "INSTAGRAM_SESSION_FILE": str(session),
        "DOWNLOAD_RETRIES": "0",
        # Few slots, so a Pause or a kill -9 lands while files are still to come.
        "DOWNLOAD_CONCURRENCY": "2",
        "YTDLP_OPTIONS": '{"retries": 0, "extractor_retries": 0, "socket_timeout": 5}',
        "PYTHONUNBUFFERED": "1",
    }


class WorkerProcess:
    """One `python bot.py worker` with its own log."""

    def __init__(self, tmp_path: Path, env: dict[str, str], name: str, *args: str):
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        env = env | {"WORKER_NAME": name}
        self.process = subprocess.Popen(
            [sys.executable, str(BOT), "worker", *args],
            cwd=tmp_path,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    async def wait_for(self, text: str, timeout: float = 60, count: int = 1) -> None:
        """Wait until ``text`` is in the worker's log ``count`` times (fails if the worker exits first)."""
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(
                    f"{text!r} not {count} times in {self.name}'s log:\n{self.output[-3000:]}"
                )
            await asyncio.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit (SIGKILL after 30 s); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code


def started_jobs(worker: WorkerProcess) -> int:
    """How many jobs the worker started (its log says "job N running" for each)."""
    return worker.output.count(" running\n")


def videos_once(data_dir: Path) -> list[str]:
    """The TikTok videos on disk, asserting none is there twice or partial."""
    names = [n for n in media_on_disk(data_dir) if n.startswith("tiktok/") and n.endswith(".mp4")]
    assert len(names) == len(set(names))
    assert not [n for n in files_under(data_dir / "downloads") if n.endswith(".part")]
    return names


class Cluster:
    """The bot (which a test may restart) and the workers a test starts; all stopped at the end."""

    def __init__(self, settings, env: dict[str, str], tmp_path: Path, world):
        self.settings, self.env, self.tmp_path, self.world = settings, env, tmp_path, world
        self.workers: list[WorkerProcess] = []
        self._bot: contextlib.AbstractAsyncContextManager | None = None

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        """Start a worker process called ``name`` (extra command-line ``args``, settings ``env``)."""
        worker = WorkerProcess(self.tmp_path, self.env | (env or {}), name, *args)
        self.workers.append(worker)
        return worker

    async def start_bot(self) -> None:
        """Start the bot with the cluster's settings (same fake Telegram, same database)."""
        self._bot = running_bot(self.settings)
        self.world.app = await self._bot.__aenter__()

    async def stop_bot(self) -> None:
        """Stop the bot as SIGTERM would; the workers carry on."""
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.__aexit__(None, None, None)

    async def __aenter__(self) -> Cluster:
        await self.start_bot()
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self.stop_bot()
        finally:
            for worker in self.workers:
                worker.stop(signal.SIGKILL)


@contextlib.asynccontextmanager
async def forgotten_after(queue_url: str, prefix: str):
    """Delete what this test's queue prefix left on the broker: Redis streams and locks, or
    RabbitMQ queues and exchange (left behind, hundreds of them slow a RabbitMQ to a halt)."""
    try:
        yield
    finally:
        if queue_url.startswith("redis"):
            from redis.asyncio import Redis

            async with Redis.from_url(queue_url) as redis:
                keys = [k async for k in redis.scan_iter(match=f"*{prefix}*")]
                if keys:
                    await redis.delete(*keys)
        else:
            with contextlib.suppress(Exception):  # best effort: the broker may be what a test broke
                await _forget_amqp(queue_url, prefix)


async def _forget_amqp(queue_url: str, prefix: str) -> None:
    import aio_pika

    async with asyncio.timeout(20):
        connection = await aio_pika.connect(queue_url)
        async with connection:
            channel = await connection.channel()
            for name in (*(f"{prefix}.{p}" for p in ("instagram", "tiktok")), f"{prefix}.dead_letter"):
                await channel.queue_delete(name)
            await channel.exchange_delete(prefix)


@contextlib.asynccontextmanager
async def running_cluster(
    net, data_dir: Path, tmp_path: Path, queue_url: str = RABBIT, *, via: str | None = None, **settings
):
    """PostgreSQL of our own, a fresh queue name on the broker, the bot against the fake Telegram,
    and a Cluster to start workers; skips with the reason when a server is missing.

    ``via``: the URL the bot and workers use instead of ``queue_url`` (a relay in front of it)."""
    reason = await postgres_unavailable() or await unreachable(queue_url)
    if reason:
        pytest.skip(reason)
    instagram, tiktok = FakeInstagram(net), FakeTikTok(net, page_size=5)
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    prefix = f"test-{secrets.token_hex(4)}"
    async with own_database(migrated=True) as db_url, forgotten_after(queue_url, prefix):
        used = via or queue_url
        env = worker_env(
            data_dir=data_dir, db_url=db_url, queue_url=used, prefix=prefix, net=net, session=session
        )
        with FakeTelegram(TOKEN) as telegram:
            queue = {"queue_url": used, "queue_name": prefix}
            config = make_settings(
                data_dir, net=net, telegram=telegram, database_url=db_url, **queue, **settings
            )
            async with Cluster(config, env, tmp_path, World(telegram, instagram, tiktok, None)) as running:
                yield running


async def redis_consumers(queue_url: str, stream: str, group: str) -> list[str]:
    """The names of a Redis consumer group's consumers ([] for RabbitMQ)."""
    if not queue_url.startswith("redis"):
        return []
    from redis.asyncio import Redis

    async with Redis.from_url(queue_url) as redis:
        return [c["name"].decode() for c in await redis.xinfo_consumers(stream, group)]
