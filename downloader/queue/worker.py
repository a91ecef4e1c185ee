"""A download worker: takes jobs from the task queue and runs them with its own settings.

Each job is acknowledged only once it has ended (late acknowledgement): a worker killed
mid-job leaves its message to the broker, and the next worker continues the job from its
saved cursor. Events go to the bot through the relay; Pause and Cancel come back the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from taskiq.acks import AcknowledgeType

from db import cluster, queries
from db import leases as lease_rows
from db.models import Job
from downloader import leftovers
from downloader.errors import Checkpoint, DownloadError
from downloader.events import JobFinished
from downloader.queue import broker as brokers
from downloader.queue import outage, wire
from downloader.queue.relay import CONTROL, EVENTS, Relay
from downloader.queue.remote import result_of
from downloader.queue.sessions import SessionSlot

log = logging.getLogger(__name__)
STOP_WAIT = 15.0  # seconds a stopping worker gives its jobs to save themselves
OWNER_POLL = 2.0  # seconds between looks at the heartbeat of a job's worker on another machine


class Worker:
    """Consumes the queues of its platforms; one instance per `python bot.py worker`."""

    def __init__(self, services, *, queue_url: str, database_url: str, platforms, name=None, **options):
        self.services = services
        self.service = services.service
        self.registry = services.registry
        self.url = queue_url
        self.platforms = tuple(platforms)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.slots = {"instagram": 1, "tiktok": options.get("tiktok_jobs", 2)}
        prefix = options.get("prefix", "archive")
        self.relay = Relay(database_url)
        # Unique per process (two workers may share a WORKER_NAME), readable in XINFO CONSUMERS.
        consumer = f"{self.name}-{self.registry.token[:6]}"
        redis = {"consumer": consumer, "redeliver_after": options.get("redeliver_after", 60.0)}
        make = brokers.make_broker
        self.brokers = {
            p: make(queue_url, p, worker=True, prefix=prefix, jobs=self.slots[p], **redis)
            for p in self.platforms
        }
        instagram = self.service.sources.get("instagram")
        self.session = getattr(instagram, "login_name", None) if "instagram" in self.platforms else None
        self.stopping = False
        self._current: dict[int, str] = {}
        outage.quiet_amqp_logs()

    async def run(self, stop: asyncio.Event) -> int:
        """Work until ``stop`` is set; running jobs are saved and handed back to the queue."""
        await self._announce()
        await self.relay.start({CONTROL: self._on_control})
        self.service.subscribe(self._publish)

        async def download(job_id: int) -> None:
            await self.download(job_id)

        for broker in self.brokers.values():
            broker.register_task(download, task_name=brokers.TASK)
            if not await brokers.connect(broker, self.url, stop):
                return 0
            outage.watch_amqp(broker, self.url)
        finishing = {p: asyncio.Event() for p in self.platforms}
        listening = [
            asyncio.create_task(self._listen(p, finishing[p]), name=f"listen-{p}") for p in self.platforms
        ]
        takes = " and ".join(self.platforms)
        log.info("worker %s takes %s jobs from %s", self.name, takes, brokers.where(self.url))
        await stop.wait()
        await self._stop(finishing, listening)
        return 0

    async def _listen(self, platform: str, finishing: asyncio.Event) -> None:
        """Take jobs until ``finishing``; when the task queue goes away, wait for it and go on.

        Running jobs do not need the queue: they go on, and their late acknowledgement is
        tried when they end. One Receiver throughout, so its job slots stay counted."""
        receiver, broker = self._receiver(platform), self.brokers[platform]
        while not finishing.is_set():
            try:
                await receiver.listen(finishing)
                return
            except Exception as exc:  # Redis: the connection error ends the listener
                if finishing.is_set():
                    return
                log.warning(
                    "The task queue at %s went away (%s); running jobs go on, new %s jobs wait for it.",
                    brokers.where(self.url),
                    outage.reason(exc),
                    platform,
                )
            with contextlib.suppress(Exception):  # drops the dead connections
                await broker.shutdown()
            if not await brokers.connect(broker, self.url, finishing):
                return
            log.info("worker %s takes %s jobs again", self.name, platform)

    def _receiver(self, platform: str) -> outage.LenientReceiver:
        return outage.LenientReceiver(
            self.brokers[platform],
            max_async_tasks=self.slots[platform],
            max_prefetch=0,
            ack_type=AcknowledgeType.WHEN_EXECUTED,  # late: a job whose worker dies is delivered again
            run_startup=False,
            propagate_exceptions=False,
        )

    async def _stop(self, finishing, listening) -> None:
        log.info("worker %s stopping: saving running jobs", self.name)
        self.stopping = True
        for event in finishing.values():
            event.set()
        self.service.interrupt_all()
        _, pending = await asyncio.wait(listening, timeout=STOP_WAIT)
        for task in pending:
            task.cancel()
        await self.relay.flush()
        await self.relay.close()
        for broker in self.brokers.values():
            with contextlib.suppress(Exception):
                await broker.shutdown()

    async def _announce(self) -> None:
        """Register for /status; say at once when the archive folder is not there."""
        await self._detail()
        try:
            await self.service.guard.check()
        except DownloadError as exc:
            log.warning("worker %s: %s Jobs are refused until it is back.", self.name, exc.sentence)
            return
        busy = await self.registry.busy_folders()
        unfinished = await queries.unfinished_folders()  # their partial files continue
        await asyncio.to_thread(leftovers.clear_all, self.service.data_dir, busy, unfinished)

    async def _detail(self) -> None:
        doing = [f"@{name}" for name in self._current.values()]
        detail = {"name": self.name, "platforms": list(self.platforms), "session": self.session}
        detail["doing"] = doing
        detail["budget"] = self.services.budget.daily_limit  # its INSTAGRAM_DAILY_REQUEST_BUDGET
        await cluster.set_detail(self.registry.token, detail)

    # --- the task ------------------------------------------------------------
    async def download(self, job_id: int) -> None:
        """The queue's task: run (or continue) download job ``job_id`` here."""
        job = await Job.get_or_none(id=job_id).prefetch_related("account")
        if job is None or job.kind != "download" or not await self._claim(job):
            return
        self.service.control(job.id)  # from now on Pause and Cancel reach it
        await self._run(job)

    async def _run_here(self, job: Job):
        """Run the job in this worker's service, showing it in /status meanwhile."""
        self._current[job.id] = job.account.username
        await self._detail()
        try:
            return await self.service.run(job)
        finally:
            self._current.pop(job.id, None)
            await self._detail()

    async def _claim(self, job: Job) -> bool:
        """Take the job unless it ended, was paused, or another live worker runs it."""
        if await cluster.claim_job(job.id, self.registry.token):
            return True
        await job.refresh_from_db()
        if job.state != "running":
            log.info("job %s is %s: nothing to do", job.id, job.state)
            return False
        if job.owner == self.registry.token:  # delivered again after the task queue came back
            log.info("job %s already runs on this worker", job.id)
            return False
        if not await self._owner_gone(job.owner):
            log.info("job %s already runs on another worker", job.id)
            return False
        if not await cluster.take_over_job(job.id, job.owner, self.registry.token):
            return False
        log.info("job %s: its worker is gone; continuing it from its saved place", job.id)
        return True

    async def _owner_gone(self, token: str | None) -> bool:
        """Whether the worker holding a job is gone. The broker hands a job out again as soon as
        its worker's connection drops, before a worker on another machine misses a heartbeat:
        wait until it beats again (alive) or its heartbeat goes stale (gone)."""
        owner = await lease_rows.process(token)
        if owner is None or not await self.registry.alive(owner):
            return True
        if owner.host == self.registry.host:  # its pid answered: certainly alive
            return False
        seen = owner.seen_at
        while True:
            await asyncio.sleep(OWNER_POLL)
            owner = await lease_rows.process(token)
            if owner is None or not await self.registry.alive(owner):
                return True
            if owner.seen_at != seen:
                return False

    async def _run(self, job: Job) -> None:
        try:
            await self.service.guard.check()
        except DownloadError as exc:
            await self._refuse(job, f"Worker {self.name}: {exc.sentence}")
            return
        if job.account.platform != "instagram" or self.session is None:
            await self._finish(job, await self._run_here(job))
            return
        slot = SessionSlot(self.session, self.registry)
        if not await slot.acquire(self.service.control(job.id)):
            await self._finish(job, await self.service.run(job))  # ends at once: paused or cancelled
            return
        try:
            await self._before_instagram()
            result = await self._run_here(job)
            await self.services.budget.flush()  # before the next worker with the session reads it
            if result.error == Checkpoint.default_sentence:
                await cluster.latch_checkpoint(self.session, result.error)
        finally:
            await slot.release()
        await self._finish(job, result)

    async def _before_instagram(self) -> None:
        """A checkpoint another worker met with this session stops this one too.

        (The session's request budget and 429 rest are read again by the service at job start.)"""
        sentence = await cluster.session_checkpoint(self.session)
        if sentence:
            self.service.sources["instagram"].latch_checkpoint(sentence)

    async def _finish(self, job: Job, result) -> None:
        """A job stopped by this worker's shutdown goes back to the queue for another worker."""
        if result.state != "interrupted" or not self.stopping:
            return
        await Job.filter(id=job.id, state="interrupted").update(state="queued", owner=None)
        with contextlib.suppress(Exception):
            await brokers.kick(self.brokers[job.account.platform], job.id)
            log.info("job %s handed back to the queue", job.id)

    async def _refuse(self, job: Job, sentence: str) -> None:
        """This worker cannot work (its archive folder is missing): the job fails, saying why."""
        log.warning("job %s refused: %s", job.id, sentence)
        job.state, job.error, job.finished_at = "failed", sentence, lease_rows.now()
        await job.save(update_fields=["state", "error", "finished_at", "updated_at"])
        self.service.forget(job.id)
        self.service.emit(JobFinished(job.id, result_of(job)))

    # --- relay -------------------------------------------------------------------
    def _publish(self, event) -> None:
        if self.stopping and isinstance(event, JobFinished) and event.result.state == "interrupted":
            return  # handed back to the queue: the status message keeps waiting for the next worker
        text = wire.dumps(event)
        if text is not None:
            self.relay.send(EVENTS, text)

    def _on_control(self, payload: str) -> None:
        job_id, state = wire.control_loads(payload)
        if state in ("paused", "cancelled") and self.service.is_active(job_id):
            log.info("job %s: %s from chat", job_id, "pause" if state == "paused" else "cancel")
            self.service.control(job_id).ask(state)


async def run_worker(settings, platform: str | None, open_services) -> int:
    """`python bot.py worker`: open the database and sources, work until SIGINT/SIGTERM."""
    import signal

    platforms = (platform,) if platform else brokers.PLATFORMS
    services = await open_services(settings, kind="worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        services,
        queue_url=settings.queue,
        database_url=settings.effective_database_url,
        platforms=platforms,
        name=settings.worker_name,
        tiktok_jobs=settings.syncall_tiktok_concurrency,
        prefix=settings.queue_name,
        redeliver_after=settings.queue_redeliver_after,
    )
    try:
        return await worker.run(stop)
    finally:
        await services.close()
