"""A job's state in words, shared by every front end (chat status messages, the web gallery)."""

from __future__ import annotations

from db.models import Job
from downloader.events import JobResult, PhaseResult, plural, summary_line

__all__ = ["STARTED", "phase_words", "result_from_job", "running_words", "started_text", "summary_line"]

STARTED = {
    "instagram": "Download started - including posts, stories, and highlights!",
    "tiktok": "Download started - TikTok videos and photo posts!",
}
ALL_PHASES = {"instagram": ("posts", "stories", "highlights"), "tiktok": ("videos",)}

SITES = {"instagram": "Instagram", "tiktok": "TikTok"}


def site_name(platform: str) -> str:
    """The platform as people write it: "Instagram", "TikTok"."""
    return SITES.get(platform, platform)


def started_text(platform: str, phases: tuple[str, ...] | list[str] | None) -> str:
    """What a front end says when a download starts: everything, or only some phases."""
    if not phases or tuple(phases) == ALL_PHASES[platform]:
        return STARTED[platform]
    return f"Download started - {' and '.join(phases)} only!"


def phase_words(result: PhaseResult) -> str:
    """A finished phase in words: "posts: 3 new, 2 already archived" or why it did not run."""
    if result.status in ("skipped", "failed") and result.message:
        return f"{result.phase}: {result.status} — {result.message}"
    extra = f", {result.archived} already archived" if result.archived else ""
    failed = f", {result.failed} failed" if result.failed else ""
    unsupported = f", {result.unsupported} not downloadable" if result.unsupported else ""
    new = f"{result.downloaded} new"
    if result.photo_posts and result.posts is not None:  # TikTok: videos, then photo posts
        photos = f"{plural(result.photo_posts, 'photo post')} ({plural(result.images, 'image')})"
        new = f"{result.posts - result.photo_posts} new + {photos}"
    elif result.posts is not None and result.posts != result.downloaded:
        new = f"{result.posts} new ({plural(result.downloaded, 'file')})"  # posts, as progress counts
    return f"{result.phase}: {new}{extra}{failed}{unsupported}"


def running_words(phase: str, done: int, total: int | None) -> str:
    """The running phase in words: "Downloading posts… 12/40"."""
    count = f"{done}/{total}" if total else f"{done}"
    return f"Downloading {phase}… {count}"


def result_from_job(job: Job, platform: str, username: str) -> JobResult:
    """The JobResult stored on a job row (counts per phase)."""
    phases = [PhaseResult.from_dict((job.counts or {}).get(p, {"phase": p})) for p in job.phases]
    return JobResult(job.id, platform, username, job.state, phases, job.error)
