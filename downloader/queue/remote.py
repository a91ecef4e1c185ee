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
from downloader.events import JobFinished, JobResult, PhaseResult
from downloader.leases import ProcessRegistry
from downloader.queue import broker as brokers
from downloader.queue import wire
from downloader.queue.relay import CONTROL, EVENTS, Relay

log = logging.getLogger(__name__)
TICK = 0.25  # seconds: how quickly a Pause or Cancel goes out
RESEND = 1.0  # seconds between repeats of a request (a worker may pick the job up meanwhile)
CHECK = 3.0  # seconds between looks at the job row (a missed event, a dead worker)
ENDED = ("completed", "failed", "cancelled", "paused")
LEFT = "queue_left_jobs"  # setting: jobs this bot stopped following at its shutdown


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

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Reach the broker (waiting as long as it takes) and listen for workers' events."""
        for broker in self.brokers.values():
            if not await brokers.connect(broker, self.url, stop):
                return False
        await self.relay.start({EVENTS: self._on_event})
        log.info("downloads go to workers through %s", brokers.where(self.url))
        return True

    async def close(self) -> None:
        """Stop listening, note the jobs left to workers (for the next start), disconnect."""
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
                await self._kick(job)
            return await self._follow(job, control)
        finally:
            self.service.forget(job.id)
            self._signals.pop(job.id, None)

    async def _kick(self, job: Job) -> None:
        await brokers.kick(self.brokers[job.account.platform], job.id)
        log.info("job %s handed to the %s workers", job.id, job.account.platform)

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
            await self._kick(job)
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
