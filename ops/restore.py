"""`bot.py restore SRC`: put a backup's database, login files and archive marker back."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config import Settings
from ops.backup import MARKER
from ops.store import MARKER_FILE, SESSIONS, Database, OpsError, open_readonly, read_manifest

# Rows that make a database worth keeping: restoring over them needs --force.
KEPT_TABLES = ("accounts", "media_items")
STALE = timedelta(seconds=75)  # a process whose heartbeat (every 20 s) is older is gone


def restore_command(settings: Settings, src: Path, force: bool) -> int:
    """Restore SRC into DATA_DIR and DATABASE_URL; exit 0 when everything is back."""
    try:
        _restore(settings, Path(src), force)
    except OpsError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _restore(settings: Settings, src: Path, force: bool) -> None:
    manifest = read_manifest(src)  # every file checked before anything changes
    database = Database.from_url(settings.effective_database_url)
    saved = manifest["database"]
    if saved["kind"] != database.kind:
        raise OpsError(
            f"This backup holds a {saved['kind']} database but DATABASE_URL is {database.kind}; "
            "nothing was restored."
        )
    if saved["file"] is None:
        raise OpsError(
            "This backup has no database (pg_dump was missing when it was made); nothing was restored."
        )
    live = _live_processes(database)
    if live:  # even with --force: writing under a running bot would corrupt what it writes
        raise OpsError(
            f"The {live[0]} is using the database: stop it and every other bot and worker first; "
            "nothing was restored."
        )
    accounts, files = _rows(database)
    if (accounts or files) and not force:
        raise OpsError(
            f"The database already holds {accounts} tracked account(s) and {files} archived file(s); "
            "nothing was restored. To replace it, stop the bot and its workers, then run restore "
            "again with --force."
        )
    _check_marker(settings.data_dir, src, force)
    if database.kind == "sqlite":
        _sqlite(src / saved["file"], database.path)
    else:
        _postgres(src / saved["file"], database)
    _sessions(src, settings.data_dir)
    if (src / MARKER_FILE).is_file() and not (settings.data_dir / MARKER).is_file():
        (settings.data_dir / MARKER).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / MARKER_FILE, settings.data_dir / MARKER)
    print(f"Restored the backup of {manifest['created']} (version {manifest['version']}); start the bot.")


def _rows(database: Database) -> tuple[int, int]:
    """Tracked accounts and archived files in the current database ((0, 0): nothing to lose)."""
    if database.kind == "postgres":
        return asyncio.run(_pg_rows(database))
    if not database.path.is_file():
        return 0, 0
    with closing(sqlite3.connect(database.path, timeout=30)) as conn:
        try:
            counts = [conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in KEPT_TABLES]
        except sqlite3.OperationalError:  # not migrated yet: empty
            return 0, 0
    return counts[0], counts[1]


async def _pg_rows(database: Database) -> tuple[int, int]:
    counts = []
    for table in KEPT_TABLES:
        rows = await _pg_fetch(database, f'SELECT COUNT(*) FROM "{table}"', table)
        counts.append(rows[0][0] if rows else 0)
    return counts[0], counts[1]


async def _pg_fetch(database: Database, query: str, table: str) -> list[tuple]:
    """Rows of ``query``; none when ``table`` does not exist yet (a database the bot never opened)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(
            host=database.host,
            port=database.port,
            user=database.user,
            password=database.password,
            database=database.name,
            timeout=10,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"PostgreSQL at {database.host}:{database.port} cannot be reached ({exc}).") from None
    try:
        if await conn.fetchval("SELECT to_regclass($1)", f"public.{table}") is None:
            return []
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


def _live_processes(database: Database) -> list[str]:
    """Bots, workers and downloads using the database now: their heartbeat is fresh."""
    if database.kind == "sqlite":
        if not database.path.is_file():
            return []
        with closing(sqlite3.connect(database.path, timeout=30)) as conn:
            try:
                rows = conn.execute("SELECT kind, host, pid, seen_at FROM processes").fetchall()
            except sqlite3.OperationalError:  # not migrated yet: nobody runs on it
                return []
        rows = [(kind, host, pid, datetime.fromisoformat(seen)) for kind, host, pid, seen in rows]
    else:
        rows = asyncio.run(_pg_fetch(database, "SELECT kind, host, pid, seen_at FROM processes", "processes"))
    fresh, here = datetime.now(UTC) - STALE, socket.gethostname()
    live = [(kind, host, pid) for kind, host, pid, seen in rows if seen > fresh]
    # On this machine the pid says at once whether it runs (a killed bot needs no 75 s wait).
    live = [(kind, host, pid) for kind, host, pid in live if host != here or _pid_alive(pid)]
    return [f"{kind} (pid {pid} on {host})" for kind, host, pid in live]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _check_marker(data_dir: Path, src: Path, force: bool) -> None:
    """The media folder's marker must be this backup's archive (or absent): else it is another archive."""
    here, saved = data_dir / MARKER, src / MARKER_FILE
    if force or not here.is_file() or not saved.is_file():
        return
    if here.read_text().strip() != saved.read_text().strip():
        raise OpsError(
            f"{here} belongs to another archive than this backup; nothing was restored "
            "(--force restores anyway, and the bot will refuse to download into that folder)."
        )


def _sqlite(backup: Path, target: Path) -> None:
    """Copy pages into the database file with SQLite's backup API (its WAL stays consistent)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(open_readonly(backup)) as src, closing(sqlite3.connect(target, timeout=60)) as dst:
        src.backup(dst)


def _postgres(dump: Path, database: Database) -> None:
    """pg_restore with --clean: tables the bot created at an earlier start are replaced."""
    if shutil.which("pg_restore") is None:
        raise OpsError(
            "pg_restore is not installed (Debian: apt install postgresql-client); nothing was restored."
        )
    command = ["pg_restore", *database.pg_args(), "--clean", "--if-exists", "--no-owner", "--exit-on-error"]
    done = subprocess.run(
        [*command, "-d", database.name, str(dump)], env=database.pg_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise OpsError(f"pg_restore failed ({reason}).")


def _sessions(src: Path, data_dir: Path) -> None:
    """Login files back into DATA_DIR/sessions/, modes kept (0600 files in a 0700 folder)."""
    if not (src / SESSIONS).is_dir():
        return
    folder = data_dir / SESSIONS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for file in (src / SESSIONS).iterdir():
        shutil.copy2(file, folder / file.name)
