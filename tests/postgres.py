"""The PostgreSQL server tests and benchmarks use, when one is reachable."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def where(url: str = PG_URL) -> str:
    """host:port/database of a URL, without credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def postgres_unreachable(url: str = PG_URL) -> str | None:
    """None when something listens at the URL's host and port, else why not."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5432), timeout=2):
            return None
    except OSError as exc:
        return f"no PostgreSQL reachable at {where(url)} ({exc.strerror or exc})"


async def reset_postgres(url: str = PG_URL) -> None:
    """An empty public schema, so the schema comes from our migrations alone."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
