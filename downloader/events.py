"""Progress events the DownloadService emits, and the results it returns.

Subscribers (the Telegram status message, the terminal progress bar, the log)
render these; they never reach back into the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

PHASE_NOUNS = {
    "posts": "posts",
    "stories": "stories",
    "highlights": "highlights",
    "videos": "videos",
}


@dataclass
class PhaseResult:
    """What one phase did. ``status``: done | skipped | failed | paused | cancelled."""

    phase: str
    status: str = "pending"
    downloaded: int = 0
    archived: int = 0  # already in the archive, skipped without a media request
    failed: int = 0
    unsupported: int = 0  # things the platform has that cannot be archived (reported)
    bytes: int = 0
    message: str | None = None  # why it was skipped or failed, for a person
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able form stored on the Job row."""
        return {k: v for k, v in self.__dict__.items() if k != "warnings"} | {"warnings": self.warnings[-20:]}

    @classmethod
    def from_dict(cls, data: dict) -> PhaseResult:
        """Inverse of to_dict."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class JobResult:
    """The outcome of a job: its state and every phase's result."""

    job_id: int
    platform: str
    username: str
    state: str  # completed | failed | paused | cancelled | interrupted
    phases: list[PhaseResult]
    error: str | None = None

    @property
    def new_items(self) -> int:
        """Files downloaded in this job, all phases."""
        return sum(p.downloaded for p in self.phases)


@dataclass(frozen=True)
class JobStarted:
    job_id: int
    platform: str
    username: str
    phases: tuple[str, ...]


@dataclass(frozen=True)
class PhaseStarted:
    job_id: int
    phase: str
    total: int | None


@dataclass(frozen=True)
class ItemDone:
    job_id: int
    phase: str
    done: int  # items handled so far in this phase (downloaded + already archived + failed)
    total: int | None
    media_id: str
    size: int


@dataclass(frozen=True)
class ItemProgress:
    """Bytes of one file downloaded so far (from yt-dlp's progress hooks), at most twice a second."""

    job_id: int
    phase: str
    media_id: str
    done_bytes: int
    total_bytes: int | None


@dataclass(frozen=True)
class Waiting:
    """The job waits (rate limit, politeness) until ``until``."""

    job_id: int
    until: datetime
    reason: str


@dataclass(frozen=True)
class Warned:
    job_id: int
    phase: str | None
    message: str


@dataclass(frozen=True)
class PhaseFinished:
    job_id: int
    result: PhaseResult


@dataclass(frozen=True)
class JobFinished:
    job_id: int
    result: JobResult


Event = JobStarted | PhaseStarted | ItemDone | ItemProgress | Waiting | Warned | PhaseFinished | JobFinished


def summary_line(result: JobResult) -> str:
    """The one-line summary shown in chat and on the terminal."""
    if result.state == "failed":
        return f"Failed: {result.error or 'unknown error'}"
    by_phase = {p.phase: p for p in result.phases}
    if result.platform == "instagram":
        posts = by_phase.get("posts", PhaseResult("posts")).downloaded
        rest = sum(by_phase.get(p, PhaseResult(p)).downloaded for p in ("stories", "highlights"))
        counts = f"{posts} posts + {rest} stories/highlights"
    else:
        counts = f"{sum(p.downloaded for p in result.phases)} videos"
    head = {
        "completed": "Completed",
        "paused": "Paused",
        "cancelled": "Cancelled",
        "interrupted": "Interrupted",
    }.get(result.state, result.state.capitalize())
    return f"{head}: {counts}"


@dataclass(frozen=True)
class SyncStarted:
    """A sync-all (job ``job_id``) starts over ``total`` accounts."""

    job_id: int
    total: int
    phases: tuple[str, ...] | None


@dataclass(frozen=True)
class SyncAccountDone:
    """One account of a sync-all finished."""

    job_id: int
    done: int
    total: int
    result: JobResult


@dataclass(frozen=True)
class SyncFinished:
    job_id: int
    state: str
    results: list[JobResult]


SyncEvent = SyncStarted | SyncAccountDone | SyncFinished
