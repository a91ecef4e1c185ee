"""Where the database lives and how a backup describes itself (the manifest)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
SESSIONS = "sessions"
MARKER_FILE = "archive-id"


class OpsError(Exception):
    """A maintenance command cannot go on; the message is one sentence for a person."""


@dataclass
class Database:
    """DATABASE_URL taken apart: an SQLite file, or PostgreSQL connection details."""

    kind: str  # "sqlite" or "postgres"
    path: Path | None = None
    host: str = "localhost"
    port: int = 5432
    user: str | None = None
    password: str | None = None
    name: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Parse the effective DATABASE_URL."""
        if url.startswith("sqlite"):
            return cls("sqlite", path=Path(url.split("://", 1)[1].split("?", 1)[0]))
        parts = urlsplit(url)
        return cls(
            "postgres",
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            name=parts.path.lstrip("/"),
        )

    def pg_args(self) -> list[str]:
        """Connection options for pg_dump, pg_restore and psql (the password goes in PGPASSWORD)."""
        args = ["-h", self.host, "-p", str(self.port)]
        return args + (["-U", self.user] if self.user else [])

    def pg_env(self) -> dict[str, str]:
        """The environment for those tools: never the password on the command line (ps shows it)."""
        return os.environ | ({"PGPASSWORD": self.password} if self.password else {})


def sha256(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_of(root: Path) -> dict[str, dict]:
    """Every file under ``root`` but the manifest: size, mode and checksum, by relative path."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        found[path.relative_to(root).as_posix()] = {
            "size": path.stat().st_size,
            "mode": oct(path.stat().st_mode & 0o777),
            "sha256": sha256(path),
        }
    return found


def read_manifest(src: Path) -> dict:
    """The manifest of a backup folder, its files checked against their checksums."""
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise OpsError(f"{src} is not a backup of this bot: it has no {MANIFEST}.") from None
    except (OSError, ValueError) as exc:
        raise OpsError(f"{src / MANIFEST} cannot be read ({exc}).") from None
    for name, expected in manifest.get("files", {}).items():
        path = src / name
        if not path.is_file() or sha256(path) != expected["sha256"]:
            raise OpsError(
                f"The backup in {src} is damaged: {name} is missing or changed; nothing was restored."
            )
    return manifest


def sqlite_migrations(path: Path) -> list[str]:
    """Names of the migrations applied to an SQLite database (empty for none, or no file)."""
    if not path.is_file():
        return []
    with closing(open_readonly(path)) as conn:
        try:
            rows = conn.execute("SELECT name FROM tortoise_migrations ORDER BY name").fetchall()
        except sqlite3.OperationalError:  # no such table: nothing migrated yet
            return []
    return [row[0] for row in rows]


def open_readonly(path: Path) -> sqlite3.Connection:
    """A backup's SQLite file, read without writing anything beside it (no -wal, no -shm)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
