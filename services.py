"""What one process owns: the database, download service, jobs and clients (bot, CLI and workers)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config import Settings
from db import close_database, open_database, queries
from downloader import renames
from downloader.archive import ArchiveView
from downloader.budget import RequestBudget
from downloader.fetch import Fetcher
from downloader.jobs import JobManager
from downloader.leases import ProcessRegistry
from downloader.login import LoginSwitch, stored_login_file
from downloader.network import Network
from downloader.service import DownloadService
from downloader.sources.instagram import InstagramSource
from downloader.sources.tiktok import TikTokSource

if TYPE_CHECKING:  # the queue's libraries load only where QUEUE_URL uses them (wiring, worker)
    from downloader.queue.remote import RemoteRunner

log = logging.getLogger("bot")


@dataclass
class Services:
    """What one process owns: database-backed download service and its job manager."""

    service: DownloadService
    jobs: JobManager
    fetcher: Fetcher
    # Instagram API requests per session, kind and hour; INSTAGRAM_DAILY_REQUEST_BUDGET.
    budget: RequestBudget
    logins: LoginSwitch
    # This process's heartbeat and account leases (one writer per account).
    registry: ProcessRegistry
    # With QUEUE_URL: hands downloads to workers and relays their events.
    remote: RemoteRunner | None = None

    async def stop_jobs(self) -> None:
        """Ask running jobs to stop and save themselves for /resume (they finish in seconds)."""
        self.service.interrupt_all()  # also ends waits of threads that belong to no job
        await self.jobs.shutdown()

    async def close(self) -> None:
        """Stop jobs, close clients and the database."""
        await self.stop_jobs()
        await self.fetcher.aclose()
        await self.logins.close()
        for source in self.service.sources.values():
            await asyncio.to_thread(source.close)
        await self.budget.flush()
        if self.remote is not None:
            await self.remote.close()
        await self.registry.stop()
        await close_database()
        log.info("closed the database")


def network_of(settings: Settings) -> Network:
    """Proxy and certificate settings for every client."""
    return Network(settings.https_proxy, settings.no_proxy, settings.ca_bundle)


def instagram_factory(settings: Settings, service_hook, sleep, budget=None):
    """Builds InstagramSources with the configured delays: from settings, or for a chat login file."""

    def make(*, session_file=None, cookies_file=None, login_username=None) -> InstagramSource:
        return InstagramSource(
            budget=budget,
            session_file=session_file,
            cookies_file=cookies_file,
            login_username=login_username,
            request_delay=settings.request_delay,
            on_wait=service_hook,
            sleep=sleep,
        )

    return make


def make_sources(
    settings: Settings, network: Network, service_hook, sleep, budget=None, chat_login=None
) -> dict:
    """One Source per platform, configured from settings (``sleep``: tests skip real waits).

    ``chat_login``: a login file sent in chat, which takes precedence over the settings."""
    make_instagram = instagram_factory(settings, service_hook, sleep, budget)
    if chat_login is not None:
        instagram = make_instagram(cookies_file=chat_login)
    else:
        instagram = make_instagram(
            session_file=settings.instagram_session_file,
            cookies_file=settings.instagram_cookies_file,
            login_username=settings.instagram_username,
        )
    tiktok = TikTokSource(
        proxy=network.proxy,
        ca_file=str(network.merged_bundle(settings.data_dir)) if settings.ca_bundle else None,
        extra_options=settings.ytdlp_options,
        archive=ArchiveView(asyncio.get_running_loop()),
    )
    return {"instagram": instagram, "tiktok": tiktok}


def size_thread_pool(download_concurrency: int) -> None:
    """Give the event loop's default thread pool room for every download slot and more.

    A yt-dlp download holds a worker thread for its whole file, and the Instagram listing,
    disk writes and fsyncs share the same pool; the default (cores + 4 threads) would make
    them wait behind the downloads once DOWNLOAD_CONCURRENCY is larger than that.
    """
    workers = download_concurrency + 8
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(workers, thread_name_prefix="worker"))


async def open_services(settings: Settings, *, sleep=None, kind: str = "bot") -> Services:
    """Open the database and build the download service (``kind``: "bot", "cli" or "worker")."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    size_thread_pool(settings.download_concurrency)
    network = network_of(settings)
    network.apply_to_environment(settings.data_dir)
    # The bot and workers wait for a PostgreSQL that is still starting; the command line says so.
    await open_database(settings.effective_database_url, wait=kind != "cli")
    # A rename a killed process was moving (folder and rows) is finished before any job runs.
    await renames.finish_pending(settings.data_dir)
    registry = ProcessRegistry(kind)

    async def prune() -> None:
        pruned = await queries.prune_jobs(settings.job_history_days)
        if pruned:
            log.info("pruned %d finished job(s) older than %d days", pruned, settings.job_history_days)
        await queries.prune_request_counts(settings.job_history_days)  # hourly counts, kept as long

    await prune()
    await registry.start(on_day=prune)
    fetcher = Fetcher(
        proxy=network.proxy,
        ssl_context=network.ssl_context(),
        connections=settings.download_concurrency * 2,
        retries=settings.download_retries,
    )
    service = DownloadService(
        data_dir=settings.data_dir,
        sources={},
        fetcher=fetcher,
        concurrency=settings.download_concurrency,
        write_metadata=settings.write_metadata,
        stop_after_archived=settings.instagram_stop_after_archived,
        platform_slots={"tiktok": settings.syncall_tiktok_concurrency},
        registry=registry,
    )
    service.guard.may_mark = kind != "worker"  # workers only check the shared folder's marker
    sleep = sleep or service.wait_in_thread
    budget = RequestBudget(settings.instagram_daily_request_budget)
    # A login file sent in chat is the bot's (and its command line's): a worker keeps its own
    # INSTAGRAM_SESSION_FILE, so workers with different sessions run Instagram jobs side by side.
    chat_login = await stored_login_file(settings.data_dir) if kind != "worker" else None
    if chat_login is not None:
        log.info(
            "Instagram login: the file sent in chat (%s), which takes precedence over "
            "INSTAGRAM_SESSION_FILE and INSTAGRAM_COOKIES_FILE",
            chat_login.name,
        )
    sources = make_sources(settings, network, service.report_wait, sleep, budget, chat_login)
    service.sources.update(sources)
    await budget.load()  # after the sources: it reads the sessions they use
    # The current login's figure (a login file sent in chat switches the source, and so it).
    service.usage_lines["instagram"] = lambda: service.sources["instagram"].budget.usage_line()
    service.before_job["instagram"] = budget.refresh  # what other processes spent meanwhile
    make_instagram = instagram_factory(settings, service.report_wait, sleep, budget)
    logins = LoginSwitch(service, lambda path: make_instagram(cookies_file=path))
    return Services(service, JobManager(service), fetcher, budget, logins, registry)
