"""Figure 6: Instagram requests of a stories sweep and of a re-sync, counted at the fake.

Ours is the InstagramSource itself (what the service calls), in this process: a stories
sweep is one ``prefetch("stories", ...)`` then one ``pages(account, "stories")`` per
account; a re-sync is a fresh source (a new process) that knows the stored account id and
the stamps of the last clean run. The reference is the instaloader CLI in a child process:
``--stories`` for all accounts at once, and ``--fast-update`` for the re-sync. Request
counts only: no latency, no politeness delays on either side.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.instagram import INSTALOADER_FLAGS
from bench.sizes import Size
from bench.table import Row, Section, times
from bench.world import ROOT, SESSION_USER, child_env, fake_instagram, python, run_child, session_file
from downloader.sources.base import Account, Known
from downloader.sources.instagram import InstagramSource
from tests.fakes.instagram import make_profile

TIMEOUT = 600
STORIES_FLAGS = ["--stories", "--no-posts", "--no-profile-pic", "--no-captions", "--no-sleep", "--quiet"]


def run(size: Size) -> Section:
    """Rows for each sweep size and for the re-sync of one account with stories and 3 highlights."""
    rows: list[Row] = []
    notes: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp,
        fake_instagram() as (net, instagram),
        _environment(net.env),
    ):
        work = Path(tmp)
        session = session_file(instagram, work / "sessions")
        env = child_env(net)
        for count in size.sweep_accounts:
            names = [f"sweep{count}_{i:03d}" for i in range(count)]
            for index, name in enumerate(names):
                stories = 2 if index % 10 == 3 else 0
                instagram.add_profile(
                    make_profile(name, 80_000 + count * 1000 + index, posts=0, stories=stories)
                )
            accounts = [Account("instagram", n, str(instagram.profiles[n].pk)) for n in names]
            net.clear()
            found = _our_sweep(session, accounts)
            ours = instagram.api_count()
            net.clear()
            _instaloader(work / f"ref{count}", session, env, [*STORIES_FLAGS, *names])
            ref = instagram.api_count()
            with_stories = sum(1 for i in range(count) if i % 10 == 3)
            target = "≤ 4" if count <= 30 else "—"
            rows.append(
                Row(
                    f"6. Stories sweep, {count} accounts ({with_stories} with stories): API requests",
                    str(ours),
                    str(ref),
                    times(ours / ref) if ref else "—",
                    target,
                    ours <= 4 if count <= 30 else None,
                )
            )
            notes.append(f"Stories sweep of {count}: ours listed {found} story items.")
        rows.append(_resync_row(instagram, net, session, env, work))
    notes.append(
        "Re-sync at the source: a fresh InstagramSource given the stored account id and the stamps "
        "of the last clean run (the service supplies both); the first posts page, stories and highlights."
    )
    return Section(rows, notes)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """This process's proxy and CA settings pointed at the fake (our source runs in-process)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _our_sweep(session: Path, accounts: list[Account]) -> int:
    source = InstagramSource(session_file=session, request_delay=(0, 0), sleep=lambda s: None)
    try:
        source.prefetch("stories", accounts, {})
        return sum(len(page.items) for a in accounts for page in source.pages(a, "stories", None))
    finally:
        source.close()


def _resync_row(instagram, net, session: Path, env: dict[str, str], work: Path) -> Row:
    instagram.add_profile(make_profile("resync", 4242, posts=30, stories=2))
    first = InstagramSource(session_file=session, request_delay=(0, 0), sleep=lambda s: None)
    account = first.resolve("resync")
    pages = {phase: list(first.pages(account, phase, None)) for phase in first.phases}
    first.close()
    stamps = {k: v for page in pages["highlights"] for k, v in page.stamps.items()}
    stamps["stories"] = max(int(i.taken_at.timestamp()) for page in pages["stories"] for i in page.items)
    known = Known(stamps=stamps)
    net.clear()
    fresh = InstagramSource(session_file=session, request_delay=(0, 0), sleep=lambda s: None)
    again = fresh.resolve("resync", user_id=account.user_id)
    listing = fresh.pages(again, "posts", None, known)
    next(listing)
    listing.close()
    for phase in ("stories", "highlights"):
        list(fresh.pages(again, phase, None, known))
    fresh.close()
    ours = instagram.api_count()
    target = work / "ref-resync"
    _instaloader(target, session, env, [*INSTALOADER_FLAGS, "resync"])
    net.clear()
    _instaloader(target, session, env, [*INSTALOADER_FLAGS, "--fast-update", "resync"])
    ref = instagram.api_count()
    return Row(
        "6. Re-sync at the source, id and stamps known (vs --fast-update): API requests",
        str(ours),
        str(ref),
        times(ours / ref) if ref else "—",
        "≤ 4",
        ours <= 4,
    )


def _instaloader(target: Path, session: Path, env: dict[str, str], args: list[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    argv = [python(), str(ROOT / "bench" / "instaloader_cli.py"), "--sessionfile", str(session)]
    run_child([*argv, "--login", SESSION_USER, *args], env=env, cwd=target, timeout=TIMEOUT)
