"""`bot.py doctor`: one table of what the bot depends on, each problem with how to fix it."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tortoise import Tortoise

from config import Settings, SettingsError
from db import DatabaseStartError, applied_migrations, known_migrations, raise_if_missing, tortoise_config
from db.patience import describe
from downloader.network import Network
from ops.checks import archive_marker, instagram_login, tiktok_impersonation, versions

FAIL_BELOW, WARN_BELOW = 100e6, 1e9  # bytes free under DATA_DIR


@dataclass
class Check:
    """One row: what was checked, ok / warn / FAIL, and what was found or how to fix it."""

    name: str
    state: str
    detail: str


def doctor_command(settings: Settings) -> int:
    """Print the table; exit 0 only when nothing the bot needs failed (warnings are fine)."""
    checks = asyncio.run(run_checks(settings))
    checks.insert(0, Check("check", "", "result"))
    width = max(len(check.name) for check in checks)
    for check in checks:
        print(f"{check.name:<{width}}  {check.state:<4}  {check.detail}")
    failed = [check.name for check in checks if check.state == "FAIL"]  # (after the header)
    if failed:
        print(f"\n{len(failed)} problem(s) to fix: {', '.join(failed)}.")
        return 1
    print("\nEverything the bot needs works.")
    return 0


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a new user fixes them."""
    checks = [await asyncio.to_thread(telegram, settings), data_dir(settings)]
    database, usable = await database_check(settings)
    checks.append(database)
    network = Network(settings.https_proxy, settings.no_proxy, settings.ca_bundle)
    with suppress(OSError):  # DATA_DIR's row says it is not writable (CA_BUNDLE is then not merged)
        network.apply_to_environment(settings.data_dir)
    if usable:
        await Tortoise.init(config=tortoise_config(settings.effective_database_url))
    try:
        checks.append(Check("Archive folder", *await archive_marker(settings.data_dir, usable)))
        checks.append(Check("Instagram login", *await instagram_login(settings, usable)))
    finally:
        if usable:
            await Tortoise.close_connections()
    checks.append(Check("TikTok impersonation", *tiktok_impersonation()))
    checks += [Check(name, "ok", version) for name, version in versions()]
    return checks


def telegram(settings: Settings) -> Check:
    """getMe: the token is valid and Telegram (or TELEGRAM_API_URL) is reachable."""
    import httpx

    try:
        token = settings.token()
    except SettingsError as exc:
        return Check("Telegram", "FAIL", str(exc))
    api = settings.telegram_api_url.rstrip("/")
    network = Network(settings.https_proxy, settings.no_proxy, settings.ca_bundle)
    try:
        with httpx.Client(proxy=network.proxy_for(api), verify=network.ssl_context(), timeout=20) as client:
            answer = client.get(f"{api}/bot{token}/getMe")
    except httpx.HTTPError as exc:
        reason = str(exc).replace(token, "[redacted]") or type(exc).__name__
        return Check(
            "Telegram",
            "FAIL",
            f"{api} is not reachable ({reason}): check the network, HTTPS_PROXY and TELEGRAM_API_URL.",
        )
    if answer.status_code in (401, 404):
        return Check(
            "Telegram",
            "FAIL",
            "Telegram rejected TELEGRAM_BOT_TOKEN: copy the token again from @BotFather "
            "(it looks like 123456789:AA...), and check TELEGRAM_API_URL if you set it.",
        )
    if answer.status_code != 200:
        return Check("Telegram", "FAIL", f"{api} answered {answer.status_code}: try again later.")
    return Check("Telegram", "ok", f"the token is valid: @{answer.json()['result']['username']} at {api}")


def data_dir(settings: Settings) -> Check:
    """DATA_DIR (or the folder it will be created in) is writable and has room."""
    folder = settings.data_dir.resolve()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            "DATA_DIR",
            "FAIL",
            f"{existing} is not writable ({exc.strerror}): give the user the bot runs as write access "
            "to it (chown), or set DATA_DIR to a folder it owns.",
        )
    free = shutil.disk_usage(existing).free
    where = f"{folder}: " + (f"{free / 1e9:.1f} GB free" if free >= 1e9 else f"{free / 1e6:.0f} MB free")
    if free < FAIL_BELOW:
        return Check("DATA_DIR", "FAIL", f"{where}; free space there or move DATA_DIR to a bigger disk.")
    if free < WARN_BELOW:
        return Check("DATA_DIR", "warn", f"{where}; downloads pause when the disk is full, free some space.")
    return Check("DATA_DIR", "ok", f"{where}, writable" + ("" if folder.exists() else " (created at start)"))


async def database_check(settings: Settings) -> tuple[Check, bool]:
    """Reachable and migrated as far as this version knows; (row, whether to query it further)."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        path = Path(url.split("://", 1)[1].split("?", 1)[0])
        if not path.is_file():
            return Check("Database", "warn", f"no database at {path} yet: the bot creates it."), False
    try:
        applied = await applied_migrations(tortoise_config(url))
    except Exception as exc:
        try:
            raise_if_missing(url, exc)
        except DatabaseStartError as missing:
            return Check("Database", "FAIL", str(missing)), False
        return Check(
            "Database", "FAIL", f"not reachable ({describe(exc)}): start PostgreSQL, or correct DATABASE_URL."
        ), False
    known = known_migrations()
    newer = sorted(set(applied) - set(known))
    if newer:
        return Check(
            "Database",
            "FAIL",
            f"migrated by a newer version of the bot ({newer[-1]}): run that version, or restore a backup.",
        ), False
    kind = url.split("://", 1)[0]
    pending = [name for name in known if name not in applied]
    if pending:
        return Check(
            "Database", "warn", f"{kind}, reachable; the next start applies {len(pending)} migration(s)."
        ), True
    return Check("Database", "ok", f"{kind}, reachable and up to date ({known[-1]})"), True
