"""`bot.py backup DEST`: a consistent snapshot of what the media folders cannot rebuild."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from config import Settings
from ops.store import (
    MANIFEST,
    MARKER_FILE,
    PG_FILE,
    SESSIONS,
    SQLITE_FILE,
    Database,
    OpsError,
    files_of,
    sqlite_migrations,
)
from version import VERSION

MARKER = Path("downloads") / ".archive-id"


def backup_command(settings: Settings, dest: Path) -> int:
    """Write the backup folder DEST (refused if it holds anything); exit 0 when it is complete."""
    try:
        return _backup(settings, Path(dest))
    except OpsError as exc:
        print(exc, file=sys.stderr)
        return 1


def _backup(settings: Settings, dest: Path) -> int:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OpsError(f"{dest} already exists and is not an empty folder; choose a new one.")
    database = Database.from_url(settings.effective_database_url)
    # Written beside DEST and renamed at the end: a DEST folder is always a whole backup.
    work = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        work.mkdir(mode=0o700, parents=True)
        missing = _database(database, work, dest)
        _sessions(settings.data_dir, work)
        if (settings.data_dir / MARKER).is_file():
            shutil.copy2(settings.data_dir / MARKER, work / MARKER_FILE)
        _manifest(work, database, missing)
        if dest.exists():
            dest.rmdir()
        work.rename(dest)
    except OSError as exc:
        reason = exc.strerror or exc
        raise OpsError(f"Could not write the backup to {dest} ({reason}); nothing was kept.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if missing:
        print(missing, file=sys.stderr)
        return 1
    print(f"Backup written to {dest}: {_summary(dest)}.")
    return 0


def _database(database: Database, work: Path, dest: Path) -> str | None:
    """Copy the database into ``work``; for PostgreSQL without pg_dump, the command to run instead."""
    if database.kind == "sqlite":
        _sqlite(database.path, work / SQLITE_FILE)
        return None
    command = ["pg_dump", *database.pg_args(), "--format=custom", "--no-owner", "-f"]
    if shutil.which("pg_dump") is None:
        shown = shlex.join([*command, str(dest / PG_FILE), database.name])
        return (
            "pg_dump is not installed (Debian: apt install postgresql-client), so the backup has no "
            f"database; run this to add it (password from DATABASE_URL in PGPASSWORD): {shown}"
        )
    done = subprocess.run(
        [*command, str(work / PG_FILE), database.name], env=database.pg_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise OpsError(f"pg_dump could not copy the database ({reason}); nothing was kept.")
    return None


def _sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while the bot writes (WAL included)."""
    if not source.is_file():
        raise OpsError(f"There is no database at {source} to back up (check DATA_DIR and DATABASE_URL).")
    with closing(sqlite3.connect(source, timeout=60)) as src, closing(sqlite3.connect(target)) as copy:
        src.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    os.chmod(target, 0o600)


def _sessions(data_dir: Path, work: Path) -> None:
    """DATA_DIR/sessions/ (login files sent in chat), modes kept (0600 files, a 0700 folder)."""
    folder = data_dir / SESSIONS
    if folder.is_dir():
        shutil.copytree(folder, work / SESSIONS, copy_function=shutil.copy2)


def _manifest(work: Path, database: Database, missing: str | None) -> None:
    """What the backup holds, with checksums that `restore` checks before it changes anything."""
    file = None if missing else SQLITE_FILE if database.kind == "sqlite" else PG_FILE
    migrations = sqlite_migrations(work / SQLITE_FILE) if database.kind == "sqlite" else None
    manifest = {
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": {"kind": database.kind, "file": file, "migrations": migrations},
        "files": files_of(work),
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _summary(dest: Path) -> str:
    manifest = json.loads((dest / MANIFEST).read_text())
    size = sum(entry["size"] for entry in manifest["files"].values())
    return f"{len(manifest['files'])} files, {size / 1e6:.1f} MB"
