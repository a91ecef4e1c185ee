"""Figure 4: peak RSS of our service archiving a large profile vs a small one.

Each run is its own child process (bench.worker) that reports its own high-water RSS.
Media are tiny and there is no latency, so the figure is about listing, per-item
bookkeeping and the database, not about buffers of file data.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.sizes import Size
from bench.table import Row, Section, times
from bench.world import ROOT, child_env, fake_instagram, python, run_child, session_file
from tests.fakes.instagram import make_profile

TIMEOUT = 900
TARGET = 1.5


def run(size: Size) -> Section:
    """Archive a ``memory_large`` and a ``memory_small`` post profile; compare peak RSS."""
    small = _peak(size.memory_small, size.memory_media)
    large = _peak(size.memory_large, size.memory_media)
    ratio = large["peak_rss_kib"] / small["peak_rss_kib"]
    row = Row(
        f"4. Peak RSS archiving {size.memory_large:,} vs {size.memory_small:,} posts",
        _mib(large["peak_rss_kib"]),
        _mib(small["peak_rss_kib"]),
        times(ratio),
        f"≤ {TARGET}×",
        ratio <= TARGET,
    )
    notes = [
        f"Memory: {size.memory_large:,} posts -> {large['files']:,} files in {large['seconds']:.1f} s; "
        f"{size.memory_small:,} posts -> {small['files']:,} files in {small['seconds']:.1f} s "
        f"({size.memory_media} B per file, no latency); growth "
        f"{(large['peak_rss_kib'] - small['peak_rss_kib']) / 1024:.1f} MiB over a start-up baseline of "
        "imports. RSS is the child's own VmHWM: getrusage's ru_maxrss of a child also counts the "
        "parent's RSS at fork on Linux.",
    ]
    return Section([row], notes)


def _peak(posts: int, media_size: int) -> dict:
    """One fresh download of a ``posts``-post profile in a child process; its JSON report."""
    profile = make_profile(
        "bulky", 2002, posts=posts, stories=0, highlights=(), image_size=media_size, video_size=media_size
    )
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp, fake_instagram() as (net, instagram):
        instagram.add_profile(profile)
        work = Path(tmp)
        session = session_file(instagram, work / "sessions")
        argv = [python(), "-m", "bench.worker", str(work / "data"), str(session), profile.username]
        child = run_child(argv, env=child_env(net), cwd=ROOT, timeout=TIMEOUT)
    report = json.loads(child.stdout.strip().splitlines()[-1])
    if report["state"] != "completed":
        raise RuntimeError(f"the {posts}-post download ended {report['state']}: {report['error']}")
    return report


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"
