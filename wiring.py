"""The Telegram Application: built here for bot.py, with every handler in one ordered block.

Resources open in post_init and close in post_shutdown; only bot.py calls run_bot().
"""

from __future__ import annotations

import asyncio
import logging
import sys

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

from config import Settings
from downloader.desk import JobDesk
from downloader.jobs import JobManager
from downloader.queue.remote import RemoteRunner
from handlers import (
    access,
    accounts,
    basic,
    check,
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
from services import Services, network_of, open_services
from web.app import WebServer, build_app
from web.keys import WebConfig

log = logging.getLogger("bot")
PACE_FILE = ".telegram-pace.json"  # the chats' Telegram pace over a restart (handlers/pace.py)
BAD_TOKEN = (
    "Telegram rejected TELEGRAM_BOT_TOKEN: copy the token again from @BotFather "
    "(it looks like 123456789:AA...), and check TELEGRAM_API_URL if you set it."
)


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
        .rate_limiter(ChatRateLimiter(max_retries=3, pace_file=settings.data_dir / PACE_FILE))
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
    app.add_handler(CommandHandler("check", check.check, block=False))
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
    # Last: any /command the handlers above did not take (a typo) gets a pointer to /help.
    app.add_handler(MessageHandler(filters.COMMAND, basic.unknown_command))
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
