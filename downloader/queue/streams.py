"""The Redis broker: a live worker keeps its jobs; a job of a dead worker goes to another one.

Redis hands an unacknowledged message to another consumer only once it has been idle
(undelivered, unclaimed) for a while. A download may run for hours, so a live worker claims
its running jobs' messages again every few seconds (which resets their idle time); a killed
worker stops doing so, and the next idle worker takes its job after ``redeliver_after``.
The library's own loop only looks for such messages after a new one arrived: ours looks
before every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

log = logging.getLogger(__name__)
FORGET_AFTER_MS = 3_600_000  # a consumer silent this long with nothing pending was a dead worker


class Streams(RedisStreamBroker):
    """One platform's stream, read one job at a time by a consumer group of workers."""

    def __init__(self, url: str, *, stream: str, group: str, consumer: str, redeliver_after: float):
        super().__init__(
            url,
            queue_name=stream,
            consumer_group_name=group,
            consumer_name=consumer,
            consumer_id="0",  # the group is created at the start: jobs sent before any worker are kept
            xread_count=1,  # take one job at a time: the others stay for other workers
            idle_timeout=int(redeliver_after * 1000),
        )
        self.beat = redeliver_after / 3  # seconds between claims of the jobs running here
        self._working: set[bytes] = set()  # message ids of the jobs running here
        self._keeper: asyncio.Task | None = None

    async def startup(self) -> None:
        """Create the stream and group; a worker also starts keeping its running jobs."""
        await super().startup()
        if self.is_worker_process and self._keeper is None:
            self._keeper = asyncio.create_task(self._keep(), name=f"keep-{self.queue_name}")

    async def shutdown(self) -> None:
        """Stop keeping jobs (those left unacknowledged go to other workers); leave the group."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
            with contextlib.suppress(Exception):  # the server may be gone: it forgets us later
                await self._leave()
        await super().shutdown()

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Jobs of dead workers first, then new ones (waiting up to ``xread_block`` ms at a time)."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                _, entries, *_ = await redis.xautoclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=1,
                )
                if entries:
                    log.info("taking over a job whose worker went silent")
                else:
                    fetched = await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=1,
                    )
                    entries = [entry for _, batch in fetched or [] for entry in batch]
                for message_id, fields in entries:
                    if not fields:  # trimmed from the stream meanwhile (Redis 6.2 still lists it)
                        await redis.xack(self.queue_name, self.consumer_group_name, message_id)
                        continue
                    yield self._message(message_id, fields)

    def _message(self, message_id: bytes, fields: dict) -> AckableMessage:
        self._working.add(message_id)

        async def ack() -> None:
            # The job has ended either way: stop renewing the claim, so a lost ack (Redis away)
            # lets the entry go to another worker after redeliver_after, which finds it ended.
            self._working.discard(message_id)
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xack(self.queue_name, self.consumer_group_name, message_id)

        return AckableMessage(data=fields[b"data"], ack=ack)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    if self._working:
                        await redis.xclaim(
                            self.queue_name,
                            self.consumer_group_name,
                            self.consumer_name,
                            min_idle_time=0,
                            message_ids=list(self._working),
                            justid=True,  # only resets the idle time; the delivery count stays
                        )
                    await self._forget_dead(redis)
            except Exception as exc:  # Redis away for a moment: the next beat tries again
                log.warning("could not reach Redis to keep the running jobs (%s)", exc)

    async def _forget_dead(self, redis: Redis) -> None:
        """Remove consumers of killed workers once their jobs went elsewhere (nothing pending)."""
        for consumer in await redis.xinfo_consumers(self.queue_name, self.consumer_group_name):
            if consumer["pending"] == 0 and consumer["idle"] > FORGET_AFTER_MS:
                await redis.xgroup_delconsumer(self.queue_name, self.consumer_group_name, consumer["name"])

    async def _leave(self) -> None:
        async with Redis(connection_pool=self.connection_pool) as redis:
            mine = await redis.xpending_range(
                self.queue_name, self.consumer_group_name, "-", "+", 1, consumername=self.consumer_name
            )
            if not mine:  # deleting a consumer drops its pending messages: only when there are none
                await redis.xgroup_delconsumer(self.queue_name, self.consumer_group_name, self.consumer_name)
