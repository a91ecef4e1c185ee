"""Building blocks for tests that run our real service or bot against the fakes."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

from config import Settings
from db import queries
from services import open_services
from wiring import build_application

BOT = Path(__file__).resolve().parent.parent / "bot.py"
TOKEN = "123456:TEST-TOKEN"
OWNER = 4242
STRANGER = 777


def make_settings(data_dir: Path, *, net=None, telegram=None, **overrides) -> Settings:
    """Settings as a user would give them, pointing at the fakes; no .env is read."""
    values = {
        "telegram_bot_token": TOKEN,
        "allowed_user_ids": [OWNER],
        "data_dir": data_dir,
        "instagram_request_delay": "0",
        "status_edit_interval": 0.5,
        "ytdlp_options": {"retries": 0, "extractor_retries": 0, "socket_timeout": 5},
        "web_port": 0,  # the web gallery only where a test asks for it (on a free port)
    }
    if net is not None:
        values |= {
            "https_proxy": net.proxy_url,
            "no_proxy": "127.0.0.1,localhost",
            "ca_bundle": Path(net.ca_path),
        }
    if telegram is not None:
        values["telegram_api_url"] = telegram.url
    return Settings(_env_file=None, **(values | overrides))


def process_env(data_dir: Path, net, **extra: str) -> dict[str, str]:
    """The environment of a `python bot.py ...` child: this test's folder and fakes, no real login."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    return (
        env
        | {
            "DATA_DIR": str(data_dir),
            "HTTPS_PROXY": net.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "CA_BUNDLE": net.ca_path,
            "INSTAGRAM_REQUEST_DELAY": "0",
            "DOWNLOAD_RETRIES": "0",
            "YTDLP_OPTIONS": '{"retries": 0, "extractor_retries": 0, "socket_timeout": 5}',
            "WEB_PORT": "0",
        }
        | extra
    )


async def services_for(settings: Settings):
    """The real services (database, fetcher, sources) with instant rate-limit waits."""
    return await open_services(settings, sleep=lambda seconds: None)


async def run_download(services, platform: str, username: str):
    """One download job of an account, as /download or the command line runs it."""
    account = await queries.get_or_create_account(platform, username)
    job = await services.service.create_job(account)
    return await services.service.run(job)


def files_under(root: Path) -> dict[str, int]:
    """Every file below ``root`` (relative path -> size); a file renamed or removed while the
    folder is read (a download finishing its partial file) is left out, not an error."""
    found = {}
    for path in sorted(root.rglob("*")):
        try:
            if path.is_file():
                found[str(path.relative_to(root))] = path.stat().st_size
        except FileNotFoundError:
            continue
    return found


def is_profile_picture(name: str) -> bool:
    """A kept profile picture (``<account>/profile/``): not a media row, counted by its own tests."""
    return name.startswith("profile/") or "/profile/" in name


def media_on_disk(data_dir: Path) -> dict[str, int]:
    """Every media file the archive holds (the marker file and profile pictures aside)."""
    root = data_dir / "downloads"
    if not root.exists():
        return {}
    files = files_under(root).items()
    return {name: size for name, size in files if name != ".archive-id" and not is_profile_picture(name)}


async def archived_count(platform: str) -> int:
    """Rows in the archive for a platform."""
    from db.models import MediaItem

    return await MediaItem.filter(platform=platform).count()


@asynccontextmanager
async def running_bot(settings: Settings):
    """The real Application wiring.py builds for bot.py, polling the fake Telegram, in this event loop."""
    app = build_application(settings)
    await app.initialize()
    try:
        await app.post_init(app)
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        await app.start()
        yield app
    finally:
        # Also after a failed start: the database must be closed or pytest hangs at exit.
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.post_stop(app)  # the order run_polling uses
        await app.shutdown()
        await app.post_shutdown(app)
