"""A job as the download manager shows it: title, state, phase lines in words, progress, buttons."""

from __future__ import annotations

from dataclasses import dataclass, field

from db.models import Job
from downloader.events import PhaseResult
from downloader.words import phase_words, result_from_job, running_words, summary_line

ACTIONS = {
    "queued": ("pause", "cancel"),
    "running": ("pause", "cancel"),
    "paused": ("resume", "cancel"),
    "interrupted": ("resume", "cancel"),
}
ACTIVE = ("queued", "running", "paused", "interrupted")
FINISHED_PHASE = ("done", "skipped", "failed")


@dataclass
class Progress:
    """What the events said about a running job since this process saw it start."""

    phase: str | None = None
    done: int = 0
    total: int | None = None
    waiting: str | None = None  # "until 12:03:00 UTC (rate limited)"


@dataclass
class JobRow:
    """Everything one row of the download manager shows."""

    id: int
    title: str
    state: str
    account_id: int | None
    lines: list[str] = field(default_factory=list)
    done: int = 0
    total: int | None = None
    summary: str | None = None
    actions: tuple[str, ...] = ()
    when: str = ""


def job_title(job: Job) -> str:
    """ "@alice · Instagram", or "Sync all" for a sync of every account."""
    if job.kind == "syncall":
        return "Sync all" + (f" {' and '.join(job.phases)}" if job.phases else "")
    account = job.account
    if account is None:
        return f"Job {job.id}"
    return f"@{account.username} · {'TikTok' if account.platform == 'tiktok' else 'Instagram'}"


def job_row(job: Job, progress: Progress | None) -> JobRow:
    """The row of one job (its account prefetched), live progress laid over the stored counts."""
    row = JobRow(job.id, job_title(job), job.state, job.account_id, actions=ACTIONS.get(job.state, ()))
    row.when = f"{(job.finished_at or job.created_at):%Y-%m-%d %H:%M} UTC"
    counts = job.counts or {}
    for phase in job.phases:
        data = counts.get(phase) or {}
        if data.get("status") in FINISHED_PHASE:
            row.lines.append(phase_words(PhaseResult.from_dict(data)))
        elif progress is not None and progress.phase == phase and job.state == "running":
            row.lines.append(running_words(phase, progress.done, progress.total))
            row.done, row.total = progress.done, progress.total
        else:
            row.lines.append(f"{phase}: not yet")
    if progress is not None and progress.waiting and job.state == "running":
        row.lines.append(f"Waiting {progress.waiting}")
    if job.kind == "download" and job.account is not None and job.state not in ACTIVE:
        row.summary = summary_line(result_from_job(job, job.account.platform, job.account.username))
    elif job.kind == "syncall" and job.state not in ACTIVE:
        row.summary = f"{job.state.capitalize()}: sync of all accounts"
    elif job.state in ("paused", "interrupted") and job.error:
        row.summary = job.error
    return row
