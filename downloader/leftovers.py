"""Temporary files a dead download left behind: which files they are, and clearing them.

Every file a download writes starts as a temporary file beside its final name and is
renamed once complete: ours are ".<name>.<hex>.part"; yt-dlp adds its own ".part" to that
path (and ".ytdl" / ".part-Frag<N>" for fragmented formats). An account has one writer at
a time (its lease), so once a process holds an account whose previous holder died, the
account's temporary files are that holder's leftovers.

A partial file with its resume record (partials.py) is not garbage: the download that takes
the account over continues it with an HTTP Range request, and a download that ends sweeps
whatever of it is left. Everything else temporary is deleted.
"""

from __future__ import annotations

import logging
from pathlib import Path

from downloader.paths import RESUME_SUFFIX, TEMP_SUFFIX, downloads_root, inside

log = logging.getLogger(__name__)
YTDLP_SUFFIXES = (".ytdl",)
YTDLP_FRAGMENT = f"{TEMP_SUFFIX}-Frag"  # yt-dlp's "<path>.part-Frag3"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a download's unfinished file (ours or yt-dlp's)."""
    name = path.name
    return name.endswith((TEMP_SUFFIX, *YTDLP_SUFFIXES)) or YTDLP_FRAGMENT in name


def is_kept(path: Path) -> bool:
    """Whether a ``*.part`` file is a resumable partial file or its record (not garbage)."""
    name = path.name
    if name.endswith(RESUME_SUFFIX):
        base = name[1 : -len(RESUME_SUFFIX)]
        partial = path.with_name(f".{base}{TEMP_SUFFIX}")
        return partial.is_file() or partial.with_name(partial.name + TEMP_SUFFIX).is_file()
    if name.endswith(TEMP_SUFFIX + TEMP_SUFFIX):  # yt-dlp's own partial of our temporary name
        name = name[: -len(TEMP_SUFFIX)]
    base = name[1 : -len(TEMP_SUFFIX)]
    return name.startswith(".") and path.with_name(f".{base}{RESUME_SUFFIX}").is_file()


def clear_account(data_dir: Path, platform: str, username: str, keep_partials: bool = False) -> int:
    """Remove the temporary files under one account's folder; return how many.

    ``keep_partials``: resumable partial files stay, for the download that continues them.
    Call only while holding the account (its lease): then no live download writes there."""
    root = downloads_root(data_dir)
    folder = inside(root, platform, username)
    if root == folder or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob("*"):
        # A profile picture's partial file is not continued (the next sync fetches it whole).
        if keep_partials and is_kept(path) and "profile" not in path.relative_to(folder).parts[:1]:
            continue
        if is_temporary(path) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def clear_all(
    data_dir: Path,
    busy: set[tuple[str, str]] | frozenset = frozenset(),
    unfinished: set[tuple[str, str]] | frozenset = frozenset(),
) -> int:
    """At start-up: clear every account's leftovers, except ``busy`` ones; return how many.

    ``busy``: (platform, username) of accounts another live process is downloading right
    now; their temporary files are that download's, not leftovers. ``unfinished``: accounts
    with a download that may continue (paused, interrupted): their partial files are kept."""
    root = downloads_root(data_dir)
    if not root.is_dir():
        return 0
    removed = 0
    for platform in (p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for account in (a for a in platform.iterdir() if a.is_dir() and not a.is_symlink()):
            key = (platform.name, account.name)
            if key not in busy:
                removed += clear_account(data_dir, *key, keep_partials=key in unfinished)
    return removed
