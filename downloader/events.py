"""Progress events the DownloadService emits, and the results it returns.

Subscribers (the Telegram status message, the terminal progress bar, the log)
render these; they never reach back into the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# ``extra`` of a log record that says what an event says: a front end showing the events (the
# command line's terminal) leaves such records out, so each thing is said once there.
SHOWN_AS_EVENT = {"shown_as_event": True}


def shown_as_event(record) -> bool:
    """Whether a log record was logged with ``extra=SHOWN_AS_EVENT``."""
    return getattr(record, "shown_as_event", False)


MISSED_KEPT = 20  # not-archived items named per phase (all are counted)
MISSED_SHOWN = 3  # ...of which the summary line names
# Nouns whose plural is not the singular plus "s".
IRREGULAR = {"story": "stories", "new story": "new stories", "was": "were"}


def plural(count: int, noun: str) -> str:
    """ "1 story", "3 stories", "2 posts": a count with its noun in the right number."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {IRREGULAR.get(noun, noun + 's')}"


@dataclass
class PhaseResult:
    """What one phase did. ``status``: done | skipped | failed | paused | cancelled."""

    phase: str
    status: str = "pending"
    downloaded: int = 0
    archived: int = 0  # already in the archive, skipped without a media request
    failed: int = 0
    unsupported: int = 0  # things the platform has that cannot be archived (reported)
    # Posts with a newly downloaded file (a carousel counts once, as progress counts);
    # None where unknown (rows stored before this was counted): files stand in.
    posts: int | None = None
    bytes: int = 0
    gave_up: int = 0  # files that failed their last allowed attempt in this job
    # TikTok: photo posts with a newly downloaded file, and their slides ("posts" counts them too).
    photo_posts: int = 0
    images: int = 0
    # What was listed but not archived in this job, as [id, reason]: unsupported and failed items.
    missed: list = field(default_factory=list)
    top: int | None = None  # newest item time this job listed (epoch s): the next clean boundary
    message: str | None = None  # why it was skipped or failed, for a person
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able form stored on the Job row."""
        kept = {"warnings": self.warnings[-20:], "missed": self.missed[:MISSED_KEPT]}
        return {k: v for k, v in self.__dict__.items() if k not in kept} | kept

    def miss(self, media_id: str, reason: str) -> None:
        """Remember an item this job listed but could not archive (once per id)."""
        if len(self.missed) < MISSED_KEPT and all(entry[0] != media_id for entry in self.missed):
            self.missed.append([media_id, reason[:200]])  # kept on the job row and sent between processes

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
    requests: str | None = None  # the platform's request budget after the job, for people

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
    """The job waits (rate limit, politeness) until ``until``; ``trying_again``: after network
    trouble, to ask again then."""

    job_id: int
    until: datetime
    reason: str
    trying_again: bool = False


@dataclass(frozen=True)
class QueueWait:
    """With QUEUE_URL: the job waits for the task queue at ``where`` (None: handed over)."""

    job_id: int
    where: str | None


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


@dataclass(frozen=True)
class StopAsked:
    """Pause, Cancel or shutdown was asked for (the job ends with JobFinished soon)."""

    job_id: int
    state: str


Event = (
    JobStarted
    | PhaseStarted
    | ItemDone
    | ItemProgress
    | Waiting
    | QueueWait
    | Warned
    | PhaseFinished
    | StopAsked
    | JobFinished
)


def summary_line(result: JobResult) -> str:
    """The one-line summary shown in chat and on the terminal, e.g.
    "Completed: 24 posts (42 files) + 9 stories/highlights"."""
    if result.state == "failed":
        return f"Failed: {result.error or 'unknown error'}"
    if result.state == "completed" and result.error:  # a gone account: one sentence, not a failure
        return result.error
    head = {
        "completed": "Completed",
        "paused": "Paused",
        "cancelled": "Cancelled",
        "interrupted": "Interrupted",
    }.get(result.state, result.state.capitalize())
    line = f"{head}: {' + '.join(_counts(result)) or 'nothing'}"
    line += _missed_part(result.phases)
    gave_up = sum(p.gave_up for p in result.phases)
    if gave_up:
        verb = "is" if gave_up == 1 else "are"
        line += f"; {plural(gave_up, 'file')} failed 3 times and {verb} not retried"
    # Why a job stopped on its own (a full disk, the network), where it did.
    return f"{line}. {result.error}" if result.error and result.state != "completed" else line


def _counts(result: JobResult) -> list[str]:
    """One part per kind of content the job ran for."""
    by_phase = {p.phase: p for p in result.phases}
    if result.platform != "instagram":
        return _tiktok_parts(result.phases)
    parts = []
    if "posts" in by_phase:
        parts.append(_posts_part(by_phase["posts"]))
    reels = [by_phase[p] for p in ("stories", "highlights") if p in by_phase]
    items = sum(p.downloaded for p in reels)
    if len(reels) == 2:
        parts.append(f"{items} stories/highlights")
    elif reels:
        parts.append(plural(items, "story" if reels[0].phase == "stories" else "highlight item"))
    return parts


def _tiktok_parts(phases: list[PhaseResult]) -> list[str]:
    """ "4 videos", "4 videos + 1 photo post (3 images)"."""
    videos = sum(p.downloaded if p.posts is None else p.posts - p.photo_posts for p in phases)
    parts = [plural(videos, "video")]
    photo_posts = sum(p.photo_posts for p in phases)
    if photo_posts:
        images = sum(p.images for p in phases)
        parts.append(f"{plural(photo_posts, 'photo post')} ({plural(images, 'image')})")
    return parts


def _missed_part(phases: list[PhaseResult]) -> str:
    """ "; 1 item not archived: 7300…068 (live replay, not supported)", or "" when nothing was missed."""
    count = sum(p.unsupported + p.failed for p in phases)
    if not count:
        return ""
    named = [entry for p in phases for entry in p.missed][:MISSED_SHOWN]
    names = ", ".join(f"{short_id(media_id)} ({_short_reason(media_id, why)})" for media_id, why in named)
    more = f" and {count - len(named)} more" if named and count > len(named) else ""
    return f"; {plural(count, 'item')} not archived" + (f": {names}{more}" if names else "")


def short_id(media_id: str) -> str:
    """A long platform id shortened for a line of text: "7300…068", "7300…068_2"."""
    head, sep, tail = media_id.partition("_")
    return (f"{head[:4]}…{head[-3:]}" if len(head) > 10 else head) + sep + tail


def _short_reason(media_id: str, reason: str) -> str:
    """The reason without the id it names again, and short."""
    text = reason.split(f"{media_id}: ", 1)[-1].strip().rstrip(".")
    return text if len(text) <= 90 else text[:87] + "..."


def _posts_part(posts: PhaseResult) -> str:
    """ "24 posts (42 files)", or "3 posts" when every post is one file."""
    if posts.posts is None:
        return plural(posts.downloaded, "file")
    text = plural(posts.posts, "post")
    return text if posts.posts == posts.downloaded else f"{text} ({plural(posts.downloaded, 'file')})"


@dataclass(frozen=True)
class SyncStarted:
    """A sync-all (job ``job_id``) starts over ``total`` accounts."""

    job_id: int
    total: int
    phases: tuple[str, ...] | None
    skipped: tuple[str, ...] = ()  # accounts left alone, with why ("@alice: has a paused download")


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
