"""Figures 1 and 2: full download and re-sync of one logged-in profile, ours vs the instaloader CLI.

Both sides run as child processes against the same fake (so neither shares the GIL with
the fake's TLS server), both with the same session file, both with rate-limit waits
and politeness delays off. Requests are counted at the fake.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.sizes import Size
from bench.table import Row, Section, seconds, speed, times
from bench.world import (
    ROOT,
    SESSION_USER,
    child_env,
    fake_instagram,
    python,
    run_child,
    session_file,
    with_public_roots,
)
from tests.fakes.instagram import make_profile

USERNAME = "alice"
TIMEOUT = 900
# Flags that make instaloader fetch what our service fetches: posts (best video, no
# thumbnails), stories, highlights and a JSON sidecar per post; no profile picture,
# no caption .txt files, and no random sleeps between requests. File names carry the
# media id, as ours do: with the default date-only names a story and a post taken in the
# same second overwrite each other's name and instaloader skips one.
INSTALOADER_FLAGS = [
    "--filename-pattern={date_utc}_UTC_{mediaid}",
    "--stories",
    "--highlights",
    "--no-compress-json",
    "--no-video-thumbnails",
    "--no-profile-pic",
    "--no-captions",
    "--no-sleep",
    "--quiet",
]


@dataclass
class Measured:
    """One run of one side: process wall time and what the fake served."""

    seconds: float
    api: int
    cdn: int
    detail: str
    inside: float | None = None  # ours: the time inside run_download, without process start-up

    def wall(self) -> str:
        """The wall time for a cell, with the in-service time when known."""
        if self.inside is None:
            return seconds(self.seconds)
        return f"{seconds(self.seconds)} ({seconds(self.inside)} in run_download)"


def run(size: Size, *, download: bool = True, resync: bool = True) -> Section:
    """Run both sides twice (full download, then re-sync); rows for the figures asked for."""
    profile = make_profile(
        USERNAME,
        1001,
        posts=size.posts,
        stories=size.stories,
        image_size=size.image_size,
        video_size=size.video_size,
    )
    with tempfile.TemporaryDirectory(prefix="bench-ig-") as tmp, fake_instagram() as (net, instagram):
        instagram.add_profile(profile)
        work = Path(tmp)
        session = session_file(instagram, work / "sessions")
        env = child_env(net)
        (work / "instaloader").mkdir()
        _warm_up(env)
        net.latency, net.bandwidth = size.latency, size.bandwidth

        def measure(side, *args) -> Measured:
            net.clear()
            wall, detail, inside = side(*args)
            return Measured(wall, instagram.api_count(), instagram.cdn_count(), detail, inside)

        data, target = work / "data", work / "instaloader"
        reference_env = with_public_roots(env, net, work)
        full_ours = measure(_ours, data, session, env)
        full_ref = measure(_instaloader, target, session, reference_env, False)
        again_ours = measure(_ours, data, session, env)
        again_ref = measure(_instaloader, target, session, reference_env, True)
    rows, notes = [], []
    media = f"{size.posts} posts + {size.stories} stories + {len(profile.highlights)} highlights"
    if download:
        rows += _download_rows(media, full_ours, full_ref)
        notes.append(_note("Full download", full_ours, full_ref))
        notes.append(
            f"Full download media: images {size.image_size // 1000} kB, videos {size.video_size // 1000} kB; "
            "instaloader also saves each highlight's cover image, which ours does not."
        )
    if resync:
        rows += _resync_rows(again_ours, again_ref)
        notes.append(_note("Re-sync", again_ours, again_ref))
    return Section(rows, notes)


def _download_rows(media: str, ours: Measured, ref: Measured) -> list[Row]:
    speedup = ref.seconds / ours.seconds
    return [
        Row(
            f"1. Full download ({media}): wall time",
            ours.wall(),
            ref.wall(),
            speed(ours.seconds, ref.seconds),
            "≥ 3× faster",
            speedup >= 3,
        ),
        Row(
            "1. Full download: Instagram API requests",
            str(ours.api),
            str(ref.api),
            times(ours.api / ref.api) if ref.api else "—",
            "≤ instaloader",
            ours.api <= ref.api,
        ),
    ]


def _resync_rows(ours: Measured, ref: Measured) -> list[Row]:
    return [
        Row(
            "2. Re-sync, unchanged (vs --fast-update): API requests",
            str(ours.api),
            str(ref.api),
            times(ours.api / ref.api) if ref.api else "—",
            "≤ instaloader",
            ours.api <= ref.api,
        ),
        Row(
            "2. Re-sync: CDN requests",
            str(ours.cdn),
            str(ref.cdn),
            target="≤ instaloader",
            met=ours.cdn <= ref.cdn,
        ),
        Row(
            "2. Re-sync: wall time",
            ours.wall(),
            ref.wall(),
            speed(ours.seconds, ref.seconds),
        ),
    ]


def _note(what: str, ours: Measured, ref: Measured) -> str:
    return (
        f"{what}: ours {ours.detail}, {ours.cdn} CDN requests; "
        f"instaloader {ref.detail}, {ref.cdn} CDN requests. Wall times are whole processes "
        "(start-up, login check, listing, media); a running bot pays only the run_download part."
    )


def _ours(data_dir: Path, session: Path, env: dict[str, str]) -> tuple[float, str, float]:
    """Our service in a child process; returns (wall seconds, detail, seconds inside run_download)."""
    argv = [python(), "-m", "bench.worker", str(data_dir), str(session), USERNAME]
    child = run_child(argv, env=env, cwd=ROOT, timeout=TIMEOUT)
    report = json.loads(child.stdout.strip().splitlines()[-1])
    if report["state"] != "completed":
        raise RuntimeError(f"our download ended {report['state']}: {report['error']}")
    phases = ", ".join(
        f"{name} {counts[1]} new/{counts[2]} archived" for name, counts in report["phases"].items()
    )
    return child.seconds, phases, report["seconds"]


def _instaloader(
    target: Path, session: Path, env: dict[str, str], fast_update: bool
) -> tuple[float, str, None]:
    """The instaloader CLI in a child process; returns (wall seconds, detail, None)."""
    before = _files(target)
    argv = [python(), str(ROOT / "bench" / "instaloader_cli.py"), "--sessionfile", str(session)]
    argv += ["--login", SESSION_USER, *INSTALOADER_FLAGS]
    argv += ["--fast-update"] if fast_update else []
    child = run_child([*argv, USERNAME], env=env, cwd=target, timeout=TIMEOUT)
    media = _files(target) - before
    return child.seconds, f"{len(media)} new media files", None


def _files(folder: Path) -> set[Path]:
    """Media files (not JSON/text) below ``folder``."""
    return {p for p in folder.rglob("*") if p.is_file() and p.suffix in (".jpg", ".mp4", ".webp")}


def _warm_up(env: dict[str, str]) -> None:
    """Import both sides once so neither timed run pays for a cold disk cache."""
    code = "import tests.harness, instaloader.__main__"
    run_child([python(), "-c", code], env=env, cwd=ROOT, timeout=120)
