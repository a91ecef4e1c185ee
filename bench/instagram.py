"""Figures 1 and 2: full download and re-sync of one logged-in profile, ours vs the instaloader CLI.

Both sides run as child processes against the same fake (so neither shares the GIL with
the fake's TLS server), both with the same session file, both with rate-limit waits
and politeness delays off. Requests are counted at the fake.

Figure 1 also runs our full download at DOWNLOAD_CONCURRENCY 4, 8 and 16 (the default's
run is the one compared and re-synced) and sets each against the physical floor:
our API requests one after another (one listing thread asks for one page at a time)
times the latency, plus the media bytes over the total bandwidth, taken as the
per-connection bandwidth times DOWNLOAD_CONCURRENCY (the media requests in flight).
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
from config import Settings
from tests.fakes.instagram import make_profile

USERNAME = "alice"
CONCURRENCIES = (4, 8, 16)  # DOWNLOAD_CONCURRENCY values measured side by side in figure 1
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
    cdn_bytes: int = 0

    def wall(self) -> str:
        """The wall time for a cell, with the in-service time when known."""
        if self.inside is None:
            return seconds(self.seconds)
        return f"{seconds(self.seconds)} ({seconds(self.inside)} in run_download)"


def default_concurrency() -> int:
    """DOWNLOAD_CONCURRENCY when the user sets nothing (config.py)."""
    return Settings.model_fields["download_concurrency"].default


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
    default = default_concurrency()
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
            counts = instagram.api_count(), instagram.cdn_count()
            return Measured(wall, *counts, detail, inside, instagram.cdn_bytes())

        data, target = work / "data", work / "instaloader"
        reference_env = with_public_roots(env, net, work)
        # The default's archive is the one re-synced; the other concurrencies start empty too.
        runs = {n: data if n == default else work / f"data-{n}" for n in (*CONCURRENCIES, default)}
        full = {n: measure(_ours, folder, session, env, n) for n, folder in runs.items()} if download else {}
        full_ours = full[default] if download else measure(_ours, data, session, env, default)
        full_ref = measure(_instaloader, target, session, reference_env, False)
        again_ours = measure(_ours, data, session, env, default)
        again_ref = measure(_instaloader, target, session, reference_env, True)
    rows, notes = [], []
    media = f"{size.posts} posts + {size.stories} stories + {len(profile.highlights)} highlights"
    if download:
        rows += _download_rows(media, full_ours, full_ref, size, default)
        rows += [_concurrency_row(n, full[n], full_ref, size, default) for n in sorted(full)]
        notes.append(_note("Full download", full_ours, full_ref))
        notes.append(_floor_note(full_ours, size, default))
        notes.append(
            f"Full download media: images {size.image_size // 1000} kB, videos {size.video_size // 1000} kB; "
            "instaloader also saves each highlight's cover image, which ours does not."
        )
    if resync:
        rows += _resync_rows(again_ours, again_ref)
        notes.append(_note("Re-sync", again_ours, again_ref))
    return Section(rows, notes)


def floor(measured: Measured, size: Size, connections: int) -> float:
    """The physical floor: the API requests one after another, plus bytes over the total bandwidth."""
    return measured.api * size.latency + measured.cdn_bytes / (size.bandwidth * connections)


def _download_rows(media: str, ours: Measured, ref: Measured, size: Size, default: int) -> list[Row]:
    speedup = ref.seconds / ours.seconds
    lowest = floor(ours, size, default)
    assert ours.inside is not None
    return [
        Row(
            f"1. Full download ({media}): wall time",
            ours.wall(),
            ref.wall(),
            speed(ours.seconds, ref.seconds),
            "≥ 6× faster",
            speedup >= 6,
        ),
        Row(
            "1. Full download: Instagram API requests",
            str(ours.api),
            str(ref.api),
            times(ours.api / ref.api) if ref.api else "—",
            "≤ instaloader",
            ours.api <= ref.api,
        ),
        Row(
            f"1. Full download: time in run_download vs the physical floor (DOWNLOAD_CONCURRENCY={default})",
            seconds(ours.inside),
            f"floor {seconds(lowest)}",
            times(ours.inside / lowest),
            "≤ 2×",
            ours.inside <= 2 * lowest,
        ),
    ]


def _concurrency_row(n: int, ours: Measured, ref: Measured, size: Size, default: int) -> Row:
    """One DOWNLOAD_CONCURRENCY of the sweep: wall time, and the in-service time against its floor."""
    assert ours.inside is not None
    lowest = floor(ours, size, n)
    chosen = " (default)" if n == default else ""
    return Row(
        f"1. Full download at DOWNLOAD_CONCURRENCY={n}{chosen}",
        ours.wall(),
        f"instaloader {seconds(ref.seconds)}; floor {seconds(lowest)}",
        f"{speed(ours.seconds, ref.seconds)}; {times(ours.inside / lowest)} the floor",
    )


def _floor_note(ours: Measured, size: Size, default: int) -> str:
    chain = ours.api * size.latency
    transfer = ours.cdn_bytes / (size.bandwidth * default)
    round_trips = ours.cdn * size.latency / default
    return (
        f"Physical floor at DOWNLOAD_CONCURRENCY={default}: {ours.api} API requests in a row × "
        f"{size.latency * 1000:g} ms = {seconds(chain)}, plus {ours.cdn_bytes / 2**20:.1f} MiB of media "
        f"over {size.bandwidth / 2**20:g} MiB/s × {default} connections = {seconds(transfer)}. It counts "
        f"neither the {ours.cdn} media requests' own round trips ({seconds(round_trips)} spread over "
        f"{default} connections) nor the time a page takes beyond its latency, and it is compared "
        "with the time in run_download (process start-up is not network time)."
    )


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


def _ours(data_dir: Path, session: Path, env: dict[str, str], concurrency: int) -> tuple[float, str, float]:
    """Our service in a child process; returns (wall seconds, detail, seconds inside run_download)."""
    argv = [python(), "-m", "bench.worker", str(data_dir), str(session), USERNAME]
    argv += ["--concurrency", str(concurrency)]
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
