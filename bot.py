"""Entry point: read settings, wire services, build the Telegram Application, run it.

`python bot.py` runs the bot; `python bot.py download <user>` runs one download in
the terminal with the same settings, database and archive.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from cli import DEFAULT_WAIT, download_command
from config import Settings, SettingsError, load_settings
from db import DatabaseStartError, close_database, open_database, queries
from downloader import renames
from downloader.archive import ArchiveView
from downloader.budget import RequestBudget
from downloader.desk import JobDesk
from downloader.fetch import Fetcher
from downloader.jobs import JobManager
from downloader.leases import ProcessRegistry
from downloader.login import LoginSwitch, stored_login_file
from downloader.network import Network
from downloader.queue.remote import RemoteRunner
from downloader.queue.worker import run_worker
from downloader.service import DownloadService
from downloader.sources.instagram import InstagramSource
from downloader.sources.tiktok import TikTokSource
from handlers import (
    access,
    accounts,
    basic,
    connection,
    downloads,
    errors,
    info,
    login,
    schedule,
    startup,
    web_link,
    workers,
)
from handlers.commands import bot_commands
from handlers.connection import PollingWatch, WatchedRequest
from handlers.context import CONTEXT_TYPES, BotData
from handlers.delivery import commands as delivery_commands
from handlers.delivery.deliverer import Deliverer
from handlers.delivery.sender import Sender
from handlers.ratelimit import ChatRateLimiter
from handlers.status import StatusBoard
from logsetup import configure_logging
from web.app import WebServer, build_app
from web.keys import WebConfig

log = logging.getLogger("bot")
BAD_TOKEN = (
    "Telegram rejected TELEGRAM_BOT_TOKEN: copy the token again from @BotFather "
    "(it looks like 123456789:AA...), and check TELEGRAM_API_URL if you set it."
)


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


def build_application(settings: Settings) -> Application:
    """The one place that builds the Application and registers every handler, in order."""
    network = network_of(settings)
    watch = PollingWatch()
    api = settings.telegram_api_url.rstrip("/")
    request = HTTPXRequest(
        proxy=network.proxy_for(api),
        httpx_kwargs={"verify": network.ssl_context()},
    )
    polling = WatchedRequest(
        watch,
        proxy=network.proxy_for(api),
        read_timeout=30,
        httpx_kwargs={"verify": network.ssl_context()},
    )
    app = (
        ApplicationBuilder()
        .token(settings.token())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .request(request)
        .get_updates_request(polling)
        .local_mode(settings.telegram_local_mode)
        .rate_limiter(ChatRateLimiter(max_retries=3))
        .context_types(CONTEXT_TYPES)
        .post_init(lambda application: _post_init(application, settings))
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .build()
    )
    app.bot_data.allowed_user_ids = frozenset(settings.allowed_user_ids)
    app.bot_data.extras["polling_watch"] = watch  # errors.on_error reports failed polls to it

    # Access control runs first (group -1) and stops updates from strangers.
    app.add_handler(TypeHandler(Update, access.gatekeeper), group=-1)
    app.add_handler(CommandHandler("start", basic.start))
    app.add_handler(CommandHandler("help", basic.help_command))
    app.add_handler(CommandHandler("download", downloads.download, block=False))
    app.add_handler(CommandHandler("syncall", downloads.syncall, block=False))
    app.add_handler(CommandHandler("add", accounts.add, block=False))
    app.add_handler(CommandHandler("remove", accounts.remove))
    app.add_handler(CommandHandler("list", accounts.list_accounts))
    app.add_handler(CommandHandler("info", info.info))
    app.add_handler(CommandHandler("status", downloads.status))
    app.add_handler(CommandHandler("pause", downloads.pause))
    app.add_handler(CommandHandler("resume", downloads.resume))
    app.add_handler(CommandHandler("cancel", downloads.cancel))
    app.add_handler(CommandHandler("schedule", schedule.schedule_command))
    app.add_handler(CommandHandler("login", login.login_command))
    app.add_handler(CommandHandler("web", web_link.web_command))
    # Login files: only in private chats, never blocking updates; in a group (where everyone
    # would see it) a login file is deleted where allowed and never downloaded.
    app.add_handler(
        MessageHandler(filters.Document.ALL & filters.ChatType.PRIVATE, login.document, block=False)
    )
    app.add_handler(MessageHandler(filters.Document.ALL & filters.ChatType.GROUPS, login.document_in_group))
    app.add_handler(CommandHandler("notify", delivery_commands.notify))
    app.add_handler(CommandHandler("latest", delivery_commands.latest, block=False))
    app.add_handler(CallbackQueryHandler(downloads.button, pattern=r"^job:"))
    app.add_handler(CallbackQueryHandler(accounts.button, pattern=r"^(acct|list):"))
    app.add_handler(CallbackQueryHandler(delivery_commands.button, pattern=r"^notify:"))
    app.add_handler(CallbackQueryHandler(downloads.stale_button))
    app.add_error_handler(errors.on_error)
    return app


async def _post_init(app: Application, settings: Settings) -> None:
    """Open resources, publish the command menu, restore schedule and interrupted jobs."""
    services = await open_services(settings)
    data: BotData = app.bot_data
    data.service, data.jobs, data.logins = services.service, services.jobs, services.logins
    slots = {"instagram": 1, "tiktok": settings.syncall_tiktok_concurrency}
    data.board = StatusBoard(app.bot, services.service, settings.status_edit_interval, slots)
    data.desk = _desk(services.jobs, data.board)
    sender = Sender(app.bot, settings.data_dir, local_mode=settings.telegram_local_mode)
    data.delivery = Deliverer(
        sender,
        services.service,
        backlog_limit=settings.notify_backlog_limit,
        retry_interval=settings.notify_retry_interval,
    )
    data.extras["services"] = services
    data.extras["settings"] = settings
    await _publish_commands(app)
    if settings.queue:
        await _use_workers(app, services, settings)
    else:
        await startup.recover_jobs(app, settings)
    await schedule.restore(app, settings)
    await data.delivery.start()  # files archived but not delivered before the restart, then periodically
    await _start_web(app, services, settings)
    log.info("bot @%s ready", app.bot.username)


async def _start_web(app: Application, services: Services, settings: Settings) -> None:
    """The web gallery on this event loop; a port in use is one sentence and the bot runs on."""
    data: BotData = app.bot_data
    if not settings.web_port:
        data.extras["web"] = {"url": None, "why_off": "The web gallery is off (WEB_PORT=0)."}
        return
    phases = {name: tuple(source.phases) for name, source in services.service.sources.items()}
    config = WebConfig(settings.data_dir, settings.web_url, settings.notify_chat, phases)
    server = WebServer(build_app(config, data.desk, services.service))
    why_off = await server.start(settings.web_host, settings.web_port)
    if why_off is not None:
        log.warning("%s", why_off)
        data.extras["web"] = {"url": None, "why_off": why_off}
        return
    data.extras["web"], data.extras["web_server"] = {"url": settings.web_url}, server
    log.info(
        "web gallery on %s:%s (links: %s; send /web to sign in)",
        settings.web_host,
        server.port,
        settings.web_url,
    )


def _desk(jobs: JobManager, board: StatusBoard) -> JobDesk:
    """The one way chat and web start and steer jobs; status messages go through the board."""
    desk = JobDesk(jobs)

    async def show(job, chat_id: int) -> None:
        if job.kind == "syncall":
            await board.attach_sync(job, chat_id)
        else:
            await board.attach_job(job, chat_id)

    desk.show, desk.show_final = show, board.show_final
    return desk


async def _use_workers(app: Application, services: Services, settings: Settings) -> None:
    """QUEUE_URL: downloads go to workers; follow the jobs they run (a restart disturbs none)."""
    url = settings.effective_database_url
    remote = RemoteRunner(services.service, services.registry, settings.queue, url, settings.queue_name)
    await remote.start()  # the broker is reached in the background: chat works meanwhile
    services.remote = remote
    services.jobs.runner, services.jobs.remote = remote.run, True
    app.bot_data.extras["queue"] = True
    followed = await workers.reattach(app)
    if followed:
        log.info("following %d job(s) on workers", followed)


async def _publish_commands(app: Application) -> None:
    """Set the command menu; a network blip right after start-up must not end the bot."""
    try:
        await app.bot.set_my_commands(bot_commands())
    except InvalidToken:
        raise
    except TelegramError as exc:
        log.warning("could not update the command menu (%s); Telegram keeps the last one", exc)


async def _post_stop(app: Application) -> None:
    """Save running jobs and show their final state while the bot can still send."""
    data: BotData = app.bot_data
    services: Services | None = data.extras.get("services")
    log.info("shutting down: saving running jobs")
    if services is not None:
        await services.stop_jobs()
    if data.board is not None:
        await data.board.flush()
    if data.delivery is not None:
        await data.delivery.stop()


async def _post_shutdown(app: Application) -> None:
    """Close clients and the database (PTB has already shut the bot's connection)."""
    server: WebServer | None = app.bot_data.extras.get("web_server")
    if server is not None:  # before the database closes: pages and event streams end first
        await server.stop()
    services: Services | None = app.bot_data.extras.get("services")
    if services is not None:
        await services.close()


def run_bot(settings: Settings) -> int:
    """Wait for Telegram (as long as it takes), then long-poll it until SIGINT/SIGTERM."""
    app = build_application(settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # run_polling runs on this loop and closes it
    try:
        if not loop.run_until_complete(connection.connect(app)):
            log.info("stopped while waiting for Telegram")
            loop.run_until_complete(app.bot.shutdown())
            loop.close()
            return 0
        # Initialized above; a network blip between the two is retried quietly.
        app.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1)
    except InvalidToken:
        print(BAD_TOKEN, file=sys.stderr)
        return 2
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: run (default), download or worker."""
    parser = argparse.ArgumentParser(
        prog="bot.py",
        description="Telegram bot that archives Instagram and TikTok accounts. "
        "Settings come from the environment or a .env file (see README).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the Telegram bot (the default)")
    dl = sub.add_parser(
        "download",
        help="download one account now, in the terminal",
        description="Download an account's new content with a progress bar per phase, "
        "using the same settings, database and archive as the bot.",
    )
    dl.add_argument("target", help="name, @name or profile URL")
    dl.add_argument(
        "--platform", choices=["instagram", "tiktok"], help="default: from the URL, else instagram"
    )
    wk = sub.add_parser(
        "worker",
        help="download jobs from the task queue (QUEUE_URL) with this machine's settings",
        description="Take download jobs from the task queue until stopped (Ctrl+C / SIGTERM). "
        "Uses this environment's INSTAGRAM_SESSION_FILE, HTTPS_PROXY, DATA_DIR and DATABASE_URL.",
    )
    wk.add_argument("--platform", choices=["instagram", "tiktok"], help="take only this platform's jobs")
    dl.add_argument(
        "--wait",
        type=_minutes,
        default=DEFAULT_WAIT,
        metavar="MINUTES",
        help="how long to wait out network trouble and rate limits before giving up "
        f"(default: {DEFAULT_WAIT:g}; the bot itself waits much longer)",
    )
    dl.add_argument(
        "--only",
        choices=["posts", "stories", "highlights"],
        help="run only this Instagram phase (default: posts, stories and highlights)",
    )
    return parser.parse_args(argv)


def _minutes(text: str) -> float:
    """--wait's value: minutes, 0 or more (0: give up at the first trouble)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 24 * 60:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes from 0 to 1440")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sub-command; errors become one sentence and a non-zero exit."""
    args = parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        settings.check_queue()
        if args.command == "worker":
            return _worker(settings, args.platform)
        if args.command == "download":
            return asyncio.run(
                download_command(settings, args.target, args.platform, open_services, args.only, args.wait)
            )
        return run_bot(settings)
    except (SettingsError, DatabaseStartError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _worker(settings: Settings, platform: str | None) -> int:
    """`python bot.py worker`: needs QUEUE_URL (and so PostgreSQL)."""
    if not settings.queue:
        raise SettingsError("python bot.py worker needs QUEUE_URL: the task queue the bot hands jobs to.")
    return asyncio.run(run_worker(settings, platform, open_services))


if __name__ == "__main__":
    sys.exit(main())
