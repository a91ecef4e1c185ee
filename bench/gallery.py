"""Figure 10: the web gallery's server time against a large archive, on SQLite and PostgreSQL.

One account holds ``gallery_posts`` archived posts (one in four a carousel of three files)
among ``gallery_captions`` captioned files over many accounts. The real aiohttp app
(web.app.build_app, signed in with a real session cookie) answers, over HTTP on
127.0.0.1: the account's first page of tiles, its page 101, and a search of the
captions. Server time is what a middleware wrapped around every other one measures:
from the request's arrival to the response being ready, rendering included. There is
no reference program: the row states the target (< 100 ms each).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tortoise import connections

from bench.sizes import Size
from bench.table import Row, Section, seconds
from db import close_database, connection_name, open_database, web_access
from db.models import Account, MediaItem
from tests.postgres import PG_URL, own_database, postgres_unavailable, where
from web.app import build_app
from web.auth import COOKIE, make_cookie
from web.keys import SECRET, WebConfig

TARGET = 0.100
INSERT_BATCH = 5_000
ACCOUNTS = 50
WORDS = ("sunset", "harbour", "coffee", "mountain", "concert", "garden", "street", "winter")
Timings = dict[str, list[float]]
SEARCHED = "pier lights"  # in one caption in a hundred: a page of results, and a scan to find them


def run(size: Size) -> Section:
    """Both backends; a missing PostgreSQL becomes a row that says why."""
    label = f"10. Gallery, {size.gallery_posts:,} posts of one account, {size.gallery_captions:,} captions"
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-gallery-") as tmp:
        sqlite, cpu = asyncio.run(_measure(f"sqlite://{Path(tmp) / 'archive.sqlite3'}", Path(tmp), size))
    rows += _rows(f"{label}, SQLite", sqlite)
    notes.append(_note("SQLite", sqlite, cpu))
    reason = asyncio.run(postgres_unavailable())
    if reason:
        rows.append(Row(f"{label}, PostgreSQL", f"skipped: {reason}"))
    else:
        postgres, cpu = asyncio.run(_measure_postgres(size))
        rows += _rows(f"{label}, PostgreSQL", postgres)
        notes.append(
            _note(f"PostgreSQL (a database of its own beside {where(PG_URL)}, after ANALYZE)", postgres, cpu)
        )
    return Section(rows, notes)


def _rows(label: str, timings: Timings) -> list[Row]:
    return [
        Row(
            f"{label}: {name}",
            seconds(statistics.median(runs)),
            target=f"< {TARGET * 1000:g} ms server time",
            met=statistics.median(runs) < TARGET,
        )
        for name, runs in timings.items()
    ]


def _note(backend: str, timings: Timings, cpu: Timings) -> str:
    worst = ", ".join(f"{name} {seconds(max(runs))}" for name, runs in timings.items())
    used = ", ".join(f"{name} {seconds(statistics.median(runs))}" for name, runs in cpu.items())
    runs = len(next(iter(timings.values())))
    return (
        f"Gallery, {backend}: medians of {runs} requests after one warm-up; worst: {worst}; "
        f"CPU time of the bot's process (median; a loaded machine inflates the wall time, not this): {used}."
    )


async def _measure_postgres(size: Size) -> tuple[Timings, Timings]:
    async with own_database() as url:
        with tempfile.TemporaryDirectory(prefix="bench-gallery-") as tmp:
            return await _measure(url, Path(tmp), size)


async def _measure(url: str, data_dir: Path, size: Size) -> tuple[Timings, Timings]:
    """Fill the archive, then time each page through the real app."""
    await open_database(url)
    try:
        account_id = await _fill(size.gallery_posts, size.gallery_captions)
        # A long-lived database has planner statistics; one filled a moment ago has none.
        await connections.get(connection_name(url)).execute_script("ANALYZE")
        last_page = max(1, -(-size.gallery_posts // 60))
        paths = {
            "account page 1": f"/accounts/{account_id}",
            f"account page {min(101, last_page)}": f"/accounts/{account_id}?page={min(101, last_page)}",
            f'search "{SEARCHED}"': f"/search?q={SEARCHED.replace(' ', '+')}",
        }
        return await _serve_and_time(data_dir, paths, size.archive_repeats)
    finally:
        await close_database()


async def _serve_and_time(data_dir: Path, paths: dict[str, str], repeats: int) -> tuple[Timings, Timings]:
    """Wall and CPU seconds of this process per request, by page (the warm-up left out)."""
    took: list[float] = []
    cpu: list[float] = []

    @web.middleware
    async def server_time(request: web.Request, handler):
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return await handler(request)
        finally:
            took.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)

    app = build_app(WebConfig(data_dir=data_dir, base_url="http://127.0.0.1"), desk=None, service=_NoEvents())
    app.middlewares.insert(0, server_time)  # outermost: the session check is server time too
    timings: Timings = {name: [] for name in paths}
    cpu_times: Timings = {name: [] for name in paths}
    async with TestClient(TestServer(app)) as client:
        client.session.cookie_jar.update_cookies(
            {COOKIE: make_cookie(app[SECRET], await web_access.session_epoch())}
        )
        for name, path in paths.items():
            for attempt in range(repeats + 1):
                async with client.get(path) as response:
                    assert response.status == 200, (path, response.status, await response.text())
                    await response.read()
                if attempt:  # the first request warms caches (templates, statements)
                    timings[name].append(took[-1])
                    cpu_times[name].append(cpu[-1])
    return timings, cpu_times


class _NoEvents:
    """The live-progress part subscribes to the service; nothing runs here."""

    def subscribe(self, callback):
        return lambda: None


async def _fill(posts: int, captions: int) -> int:
    """The measured account's ``posts`` posts, then other accounts' files up to ``captions`` rows."""
    accounts = [
        Account(platform="instagram", username=f"gallery{i:03d}", tracked=True) for i in range(ACCOUNTS)
    ]
    await Account.bulk_create(accounts)
    accounts = await Account.all().order_by("id")
    main, others = accounts[0], accounts[1:]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch, written, post = [], 0, 0
    while written < captions:
        owner = main if post < posts else others[post % len(others)]
        files = 3 if post % 4 == 0 else 1
        for slide in range(files):
            media_id = f"{3_000_000_000 + post}_{slide + 1}" if files > 1 else str(3_000_000_000 + post)
            batch.append(
                MediaItem(
                    platform="instagram",
                    media_id=media_id,
                    kind="post",
                    account=owner,
                    taken_at=start + timedelta(minutes=post),
                    path=f"downloads/instagram/{owner.username}/posts/{media_id}.jpg",
                    size=200_000,
                    group_id=f"C{post:09d}",
                    group_size=files,
                    caption=_caption(post),
                )
            )
        written += files
        post += 1
        if len(batch) >= INSERT_BATCH:
            await MediaItem.bulk_create(batch)
            batch = []
    if batch:
        await MediaItem.bulk_create(batch)
    return main.id


def _caption(post: int) -> str:
    words = " ".join(WORDS[(post + i) % len(WORDS)] for i in range(3))
    extra = f" under the {SEARCHED}" if post % 100 == 7 else ""
    return f"Post {post}: {words}{extra} #archive #day{post % 365}"
