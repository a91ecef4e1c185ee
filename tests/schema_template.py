"""Migrated empty databases to copy, so a test does not pay for running every migration.

Running the migrations on an empty database costs about 0.7 CPU seconds (tortoise renders
every model state per operation); the suite opens hundreds of fresh databases. A SQLite
file migrated once and copied, or a PostgreSQL ``CREATE DATABASE ... TEMPLATE``, gives each
test the same schema the bot would create, in its own database. The templates carry a
hash of the migrations in their names, so a changed migration never meets an old template.
Tests of the migrations themselves start from empty databases (``migrated=False``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATE = "import asyncio, sys\nfrom db import close_database, open_database\n" + (
    "async def main():\n    await open_database(sys.argv[1])\n    await close_database()\n"
    "asyncio.run(main())\n"
)


def migrations_hash() -> str:
    """A short hash of the migration files (a new or changed migration: a new template)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "db" / "migrations").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def migrate_in_child(url: str) -> None:
    """Bring the database at ``url`` up to date in a separate process (tortoise's state is global)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    subprocess.run([sys.executable, "-c", MIGRATE, url], cwd=ROOT, env=env, check=True, timeout=120)


def sqlite_template(folder: Path) -> Path:
    """A migrated SQLite file in ``folder`` (made once; xdist workers wait for the first)."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / f"archive-template-{migrations_hash()}.sqlite3"
    with (folder / "archive-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            building = template.with_name(f"building-{secrets.token_hex(4)}.sqlite3")
            migrate_in_child(f"sqlite://{building}")
            building.replace(template)  # whole or absent, for the next run to trust
    return template


def copy_sqlite(template: Path, path: Path) -> None:
    """``path`` becomes a migrated database of its own (unless a file is there already)."""
    if not path.exists():
        shutil.copyfile(template, path)


def postgres_template_name() -> str:
    """The template database's name for these migrations."""
    return f"archive_test_template_{migrations_hash()}"
