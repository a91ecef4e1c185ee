"""The two workloads: ``full`` (the sizes the issue asks for) and ``small`` (a smoke test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """Every knob of one benchmark run."""

    name: str
    # Network conditions for figures 1-3: added per response, and a cap per response body.
    latency: float
    bandwidth: int
    # Figures 1 and 2: one logged-in profile.
    posts: int
    stories: int
    image_size: int
    video_size: int
    # Figure 3: a sync-all through the bot.
    sync_accounts: int
    sync_posts: int
    # Figure 4: peak memory, large vs small profile (tiny media, no latency).
    memory_small: int
    memory_large: int
    memory_media: int
    # Figure 5: archive look-ups.
    archive_rows: int
    archive_ids: int
    archive_repeats: int
    # Figure 6: stories sweeps of this many tracked accounts (one in ten has a story).
    sweep_accounts: tuple[int, ...] = (30, 100)
    # Figure 7: hot-path queries against this many archived rows.
    million_rows: int = 1_000_000
    # Figure 9: old jobs pruned; a start-up with this many archive rows and (recent) jobs.
    history_jobs: int = 1_000_000
    startup_rows: int = 1_000_000
    startup_jobs: int = 100_000
    # Figure 10: the gallery, one account's posts among this many captioned files.
    gallery_posts: int = 10_000
    gallery_captions: int = 100_000
    # Figure 11: a full download's CPU, start-up runs per command, an idle bot's window (seconds).
    light_posts: int = 150
    light_rounds: int = 3  # full downloads per side, interleaved (the median is shown)
    light_repeats: int = 9
    idle_seconds: float = 20.0


SIZES = {
    "full": Size(
        name="full",
        latency=0.030,
        bandwidth=8 * 1024 * 1024,
        posts=300,
        stories=5,
        image_size=200_000,
        video_size=400_000,
        sync_accounts=100,
        sync_posts=3,
        memory_small=500,
        memory_large=5_000,
        memory_media=200,
        archive_rows=100_000,
        archive_ids=10_000,
        archive_repeats=7,
    ),
    "small": Size(
        name="small",
        latency=0.005,
        bandwidth=8 * 1024 * 1024,
        posts=14,
        stories=2,
        image_size=20_000,
        video_size=40_000,
        sync_accounts=3,
        sync_posts=2,
        memory_small=5,
        memory_large=30,
        memory_media=200,
        archive_rows=2_000,
        archive_ids=500,
        archive_repeats=2,
        sweep_accounts=(10,),
        million_rows=20_000,
        history_jobs=6_000,  # more than one batch of the prune
        startup_rows=5_000,
        startup_jobs=1_000,
        gallery_posts=700,
        gallery_captions=3_000,
        light_posts=6,
        light_rounds=1,
        light_repeats=2,
        idle_seconds=1.0,
    ),
}
