"""Building blocks for tests with a real task queue: broker URLs, worker processes, their env.

The bot runs in the test's process against the fake Telegram; each worker is a real
`python bot.py worker` subprocess with its own log, sharing DATA_DIR and the database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
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


def unreachable(url: str) -> str | None:
    """None when something listens at the broker URL's host and port, else why not."""
    parts = urlsplit(url)
    port = parts.port or (6379 if parts.scheme.startswith("redis") else 5672)
    name = "Redis" if parts.scheme.startswith("redis") else "RabbitMQ"
    try:
        socket.create_connection((parts.hostname, port), timeout=2).close()
    except OSError as exc:
        return f"{name} is not reachable at {parts.hostname}:{port} ({exc.strerror or exc})"
    return None


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

    async def wait_for(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` is in the worker's log (fails if the worker exits first)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{text!r} not in {self.name}'s log:\n{self.output[-3000:]}")
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


@asynccontextmanager
async def running_cluster(net, data_dir: Path, tmp_path: Path, queue_url: str = RABBIT, **settings):
    """PostgreSQL of our own, a fresh queue name, the bot against the fake Telegram, and
    ``start(name, *args, **env)`` for worker processes; skips with the reason when a server is missing."""
    reason = await postgres_unavailable() or unreachable(queue_url)
    if reason:
        pytest.skip(reason)
    instagram, tiktok = FakeInstagram(net), FakeTikTok(net, page_size=5)
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    prefix = f"test-{secrets.token_hex(4)}"
    workers: list[WorkerProcess] = []
    async with own_database() as db_url:
        env = worker_env(
            data_dir=data_dir, db_url=db_url, queue_url=queue_url, prefix=prefix, net=net, session=session
        )

        def start(name: str, *args: str, **more: str) -> WorkerProcess:
            worker = WorkerProcess(tmp_path, env | more, name, *args)
            workers.append(worker)
            return worker

        with FakeTelegram(TOKEN) as telegram:
            config = make_settings(
                data_dir,
                net=net,
                telegram=telegram,
                database_url=db_url,
                queue_url=queue_url,
                queue_name=prefix,
                **settings,
            )
            try:
                async with running_bot(config) as app:
                    yield World(telegram, instagram, tiktok, app), start
            finally:
                for worker in workers:
                    worker.stop(signal.SIGKILL)


def started_jobs(worker: WorkerProcess) -> int:
    """How many jobs the worker started (its log says "job N running" for each)."""
    return worker.output.count(" running\n")


def videos_once(data_dir: Path) -> list[str]:
    """The TikTok videos on disk, asserting none is there twice or partial."""
    names = [n for n in media_on_disk(data_dir) if n.startswith("tiktok/") and n.endswith(".mp4")]
    assert len(names) == len(set(names))
    assert not [n for n in files_under(data_dir / "downloads") if n.endswith(".part")]
    return names
