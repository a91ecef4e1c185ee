"""The bot's side of the task queue: hand a job to the workers, follow it until it ends.

The status message does not know where a job runs: the worker's events arrive through the
relay and are emitted here as if the job ran in this process. Pause and Cancel are sent to
the workers until the job stops; a job still waiting in the queue is settled right here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from db import leases as lease_rows
from db import queries
from db.models import Job
from downloader.events import JobFinished, JobResult, PhaseResult, QueueWait
from downloader.leases import ProcessRegistry
from downloader.queue import broker as brokers
from downloader.queue import outage, wire
from downloader.queue.relay import CONTROL, EVENTS, Relay

log = logging.getLogger(__name__)
TICK = 0.25  # seconds: how quickly a Pause or Cancel goes out
RESEND = 1.0  # seconds between repeats of a request (a worker may pick the job up meanwhile)
CHECK = 3.0  # seconds between looks at the job row (a missed event, a dead worker)
ENDED = ("completed", "failed", "cancelled", "paused")
LEFT = "queue_left_jobs"  # setting: jobs this bot stopped following at its shutdown
KICK_TIMEOUT = 10.0  # seconds a hand-off may take before it counts as failed


class RemoteRunner:
    """Runs jobs on workers; used by the JobManager in place of DownloadService.run."""

    def __init__(self, service, registry: ProcessRegistry, queue_url: str, database_url: str, prefix: str):
        self.service = service
        self.registry = registry
        self.url = queue_url
        make = brokers.make_broker
        self.brokers = {p: make(queue_url, p, worker=False, prefix=prefix) for p in brokers.PLATFORMS}
        self.relay = Relay(database_url)
        self._results: dict[int, JobResult] = {}
        self._signals: dict[int, asyncio.Event] = {}
        self._left: set[int] = set()  # followed until this bot stopped; workers carry on
        self.connected = asyncio.Event()  # set once every broker is reached
        self._connecting: asyncio.Task | None = None
        outage.quiet_amqp_logs()

    async def start(self) -> None:
        """Listen for workers' events; reach the broker in the background (downloads wait for it)."""
        await self.relay.start({EVENTS: self._on_event})
        self._connecting = asyncio.create_task(self._connect(), name="queue-connect")

    async def _connect(self) -> None:
        """Wait for the broker as long as it takes, one line per attempt."""
        for broker in self.brokers.values():
            await brokers.connect(broker, self.url)
            outage.watch_amqp(broker, self.url)
        self.connected.set()
        log.info("downloads go to workers through %s", brokers.where(self.url))

    async def close(self) -> None:
        """Stop listening, note the jobs left to workers (for the next start), disconnect."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        await self.relay.close()
        if self._left:  # a job ending before the next start still gets its final status message
            with contextlib.suppress(Exception):
                await queries.set_setting(LEFT, sorted(self._left))
        for broker in self.brokers.values():
            with contextlib.suppress(Exception):
                await broker.shutdown()

    def _on_event(self, payload: str) -> None:
        event = wire.loads(payload)
        if isinstance(event, JobFinished):
            self._results[event.job_id] = event.result
            self._signal(event.job_id).set()
        self.service.emit(event)

    def _signal(self, job_id: int) -> asyncio.Event:
        return self._signals.setdefault(job_id, asyncio.Event())

    async def run(self, job: Job) -> JobResult:
        """Hand the job to a worker (unless one has it) and wait for its end."""
        control = self.service.control(job.id)
        await job.fetch_related("account")
        try:
            if not await self._held_by_live_worker(job):
                await self._kick(job, control)
            return await self._follow(job, control)
        finally:
            self.service.forget(job.id)
            self._signals.pop(job.id, None)

    async def _kick(self, job: Job, control) -> None:
        """Hand the job over; while the task queue is unreachable, retry with backoff (the status
        message says so). Pause, Cancel or a stopping bot end the wait: _follow settles the job."""
        attempt = 0
        while not control.request:
            if not self.connected.is_set():
                await self._wait_for_queue(job, control)  # its connect() logs the attempts
                attempt += 1
                continue
            try:
                kick = brokers.kick(self.brokers[job.account.platform], job.id)
                await asyncio.wait_for(kick, timeout=KICK_TIMEOUT)
            except Exception as exc:  # refused, closed, timed out: the queue is away
                await self._retry_later(job, control, attempt, outage.reason(exc))
                attempt += 1
                continue
            log.info("job %s handed to the %s workers", job.id, job.account.platform)
            if attempt:
                self.service.emit(QueueWait(job.id, None))
            return

    async def _wait_for_queue(self, job: Job, control) -> None:
        """Before the broker was first reached: wait for it (or a Pause/Cancel)."""
        log.info("job %s waits for the task queue at %s", job.id, brokers.where(self.url))
        self.service.emit(QueueWait(job.id, brokers.where(self.url)))
        while not self.connected.is_set() and not control.request:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), timeout=TICK)

    async def _retry_later(self, job: Job, control, attempt: int, why: str) -> None:
        """One line per failed hand-off; the status message says what the job waits for."""
        delay = brokers.BACKOFF[min(attempt, len(brokers.BACKOFF) - 1)]
        where = brokers.where(self.url)
        log.warning(
            "job %s waits for the task queue at %s (%s); trying again in %d s.", job.id, where, why, delay
        )
        if attempt == 0:
            self.service.emit(QueueWait(job.id, where))
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not control.request:
            await asyncio.sleep(TICK)

    async def _follow(self, job: Job, control) -> JobResult:
        sent_at, checked_at, kicked_for = 0.0, time.monotonic(), None
        while True:
            if job.id in self._results:
                return self._results.pop(job.id)
            if control.request == "interrupted":  # this bot stops; the worker carries on
                self._left.add(job.id)
                raise asyncio.CancelledError()
            now = time.monotonic()
            if control.request and now - sent_at >= RESEND:
                sent_at = now
                if await self._settle_queued(job, control.request):
                    continue
                self.relay.send(CONTROL, wire.control_dumps(job.id, control.request))
            if now - checked_at >= CHECK:
                checked_at = now
                ended, kicked_for = await self._check_row(job, kicked_for)
                if ended is not None:
                    return ended
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signal(job.id).wait(), timeout=TICK)

    async def _settle_queued(self, job: Job, request: str) -> bool:
        """A job no worker has taken yet is paused or cancelled here (atomically)."""
        fields = {"state": request} | ({"finished_at": queries.now()} if request == "cancelled" else {})
        if not await Job.filter(id=job.id, state="queued").update(**fields):
            return False
        await job.refresh_from_db()
        self._finish_from_row(job)
        return True

    async def _check_row(self, job: Job, kicked_for: str | None) -> tuple[JobResult | None, str | None]:
        """A missed end (the event got lost) or a worker that died: act on the row."""
        await job.refresh_from_db()
        if job.state in ENDED:
            await asyncio.sleep(1.0)  # the event may be on its way
            if job.id not in self._results:
                self._finish_from_row(job)
            return self._results.pop(job.id), kicked_for
        lost = job.state == "interrupted" or (job.state == "running" and not await self._owner_alive(job))
        if lost and kicked_for != (job.owner or job.state):  # once per lost worker
            log.info("job %s lost its worker; handing it out again", job.id)
            await self._kick(job, self.service.control(job.id))
            return None, job.owner or job.state
        return None, kicked_for

    def _finish_from_row(self, job: Job) -> None:
        result = result_of(job)
        self._results[job.id] = result
        self.service.emit(JobFinished(job.id, result))

    async def _held_by_live_worker(self, job: Job) -> bool:
        await job.refresh_from_db()
        return job.state == "running" and await self._owner_alive(job)

    async def _owner_alive(self, job: Job) -> bool:
        return await self.registry.alive(await lease_rows.process(job.owner))


def result_of(job: Job) -> JobResult:
    """The JobResult stored on a job row."""
    phases = [PhaseResult.from_dict((job.counts or {}).get(p, {"phase": p})) for p in job.phases]
    return JobResult(job.id, job.account.platform, job.account.username, job.state, phases, job.error)
