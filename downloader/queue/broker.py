"""The taskiq brokers: one queue per platform, late acknowledgement, and patient connecting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from taskiq import AsyncBroker
from taskiq.kicker import AsyncKicker

log = logging.getLogger(__name__)
PLATFORMS = ("instagram", "tiktok")
TASK = "archive.download"  # the one task: run (or continue) download job <id>
BACKOFF = (1, 2, 5, 10, 20, 30)  # seconds between attempts to reach the broker; then every 30 s


def queue_name(prefix: str, platform: str) -> str:
    """The broker queue (RabbitMQ) or stream (Redis) of one platform's downloads."""
    return f"{prefix}.{platform}"


def where(url: str) -> str:
    """scheme://host:port of a broker URL, never its password (for logs)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")


def make_broker(
    url: str,
    platform: str,
    *,
    worker: bool,
    prefix: str = "archive",
    jobs: int = 1,
    consumer: str = "bot",
    redeliver_after: float = 60,
) -> AsyncBroker:
    """A broker for one platform's queue; ``worker``: it also consumes, ``jobs`` messages at a time.

    Redis only: ``consumer`` names this process in the consumer group (unique per process),
    ``redeliver_after`` is how many seconds a job of a silent worker waits for another one."""
    if url.startswith(("redis://", "rediss://")):
        from downloader.queue.streams import Streams

        stream, group = queue_name(prefix, platform), f"{prefix}-workers"
        broker = Streams(url, stream=stream, group=group, consumer=consumer, redeliver_after=redeliver_after)
    else:
        from taskiq_aio_pika import AioPikaBroker, Exchange, Queue

        broker = AioPikaBroker(
            url,
            # Unacknowledged jobs per worker (acknowledged when they end): as many as it runs at
            # once, so a job waits in the queue, not in a busy worker.
            qos=jobs,
            exchange=Exchange(name=prefix),
            task_queues=[Queue(name=queue_name(prefix, platform))],
            dead_letter_queue=Queue(name=f"{prefix}.dead_letter"),
        )
    broker.is_worker_process = worker
    return broker


async def connect(broker: AsyncBroker, url: str, stop: asyncio.Event | None = None) -> bool:
    """Start the broker, waiting for it with backoff (one line per attempt); False if stopped."""
    attempt = 0
    while True:
        try:
            await broker.startup()
            if attempt:
                log.info("the task queue at %s is reachable again", where(url))
            return True
        except Exception as exc:  # refused, DNS, auth: all mean "not yet"; never a traceback
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            log.warning(
                "The task queue at %s is not reachable (%s); trying again in %d s.",
                where(url),
                _reason(exc),
                delay,
            )
            attempt += 1
            with contextlib.suppress(Exception):  # closing a broker that never connected
                await broker.shutdown()
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return False
                except TimeoutError:
                    continue
            await asyncio.sleep(delay)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


async def kick(broker: AsyncBroker, job_id: int) -> None:
    """Hand job ``job_id`` to the workers of the broker's platform."""
    await AsyncKicker(task_name=TASK, broker=broker, labels={}).kiq(job_id)
