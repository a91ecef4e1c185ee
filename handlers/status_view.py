"""Pure rendering of a job's state to status-message text (HTML) and buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from downloader.events import JobResult, PhaseResult, plural, summary_line
from downloader.words import phase_words

LIMIT = 4096
MAX_LINES = 12  # finished accounts / warnings shown before "…and N more"
BAR_WIDTH = 10
ICONS = {"done": "✅", "skipped": "⏭", "failed": "⚠️", "paused": "⏸", "cancelled": "⏹"}


@dataclass
class JobView:
    """What the status message of one download shows."""

    job_id: int
    platform: str
    username: str
    phases: list[str]
    state: str = "queued"
    phase: str | None = None
    done: int = 0
    total: int | None = None
    finished: dict[str, PhaseResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    waiting_until: datetime | None = None
    waiting_reason: str = ""
    result: JobResult | None = None
    behind: str | None = None  # while queued: the running download it waits for ("@bob")
    reason: str | None = None  # why a paused or interrupted job stopped (a full disk, the network)
    queue_wait: str | None = None  # while queued: the unreachable task queue it waits for


@dataclass
class SyncView:
    """What the one status message of a sync-all shows."""

    job_id: int
    total: int = 0
    done: int = 0
    state: str = "running"
    title: str = "Sync all"
    current: dict[int, JobView] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    new_items: int = 0
    problems: int = 0
    skipped: list[str] = field(default_factory=list)  # accounts left alone, with why
    requests: str | None = None  # the request budget after the last account (Instagram)
    waiting: dict[int, str] = field(default_factory=dict)  # child job -> the unreachable task queue


def progress_bar(done: int, total: int | None) -> str:
    """A ten-cell bar with a percentage, or nothing when the total is unknown."""
    if not total:
        return ""
    ratio = min(done / total, 1.0)
    cells = round(ratio * BAR_WIDTH)
    return f"[{'▓' * cells}{'░' * (BAR_WIDTH - cells)}] {ratio:.0%}"


def render_job(view: JobView) -> str:
    """The text of a single download's status message."""
    platform = "Instagram" if view.platform == "instagram" else "TikTok"
    lines = [f"<b>@{escape(view.username)}</b> · {platform}"]
    lines += [_phase_line(view, phase) for phase in view.phases]
    if view.waiting_until is not None and view.state == "running":
        lines.append(f"⏳ waiting until {view.waiting_until:%H:%M:%S} UTC ({escape(view.waiting_reason)})")
    lines += limited([f"⚠️ {escape(w)}" for w in view.warnings], MAX_LINES // 2)
    if view.result is not None:
        lines.append("")
        lines.append(f"<b>{escape(summary_line(view.result))}</b>")
        if view.result.requests:
            lines.append(escape(view.result.requests))
    elif view.state == "paused" and view.reason:
        lines.append(f"\n⏸ Paused: {escape(view.reason)}")
    elif view.state == "paused":
        lines.append("\n⏸ Paused — press Resume or send /resume.")
    elif view.state == "interrupted":
        why = escape(view.reason) if view.reason else "Interrupted (the bot stopped)"
        lines.append(f"\n⏸ {why} — press Resume or send /resume.")
    elif view.state == "queued" and view.queue_wait:
        lines.append(f"\n⏳ {queue_sentence(view.queue_wait)}")
    elif view.state == "queued" and view.behind:
        lines.append(f"\n⏳ Waiting for the running download of {escape(view.behind)} to finish first.")
    elif view.state == "queued":
        lines.append("\n⏳ Starting…")
    return _fit("\n".join(lines))


def queue_sentence(where: str) -> str:
    """What a job waiting for an unreachable task queue shows."""
    return f"Waiting for the task queue at {escape(where)}: not reachable; the download starts once it is up."


def _phase_line(view: JobView, phase: str) -> str:
    """One line per phase: finished counts, the running progress, or pending."""
    result = view.finished.get(phase)
    if result is not None:
        return _finished_line(result)
    if phase == view.phase and view.state == "running":
        count = f"{view.done}/{view.total}" if view.total else f"{view.done}"
        bar = progress_bar(view.done, view.total)
        text = f"⬇️ Downloading @{escape(view.username)} {phase}… {count}"
        return text + (f"\n{bar}" if bar else "")
    return f"▫️ {phase}"


def _finished_line(result: PhaseResult) -> str:
    """A finished phase with its counts or the reason it did not run."""
    return f"{ICONS.get(result.status, '▫️')} {escape(phase_words(result))}"


def render_sync(view: SyncView) -> str:
    """The text of a sync-all's status message."""
    head = f"<b>{escape(view.title)}</b> · {view.done}/{view.total} accounts"
    lines = [head, progress_bar(view.done, view.total)]
    for child in view.current.values():
        phase = child.phase or "starting"
        count = f" {child.done}/{child.total}" if child.total else f" {child.done}" if child.done else ""
        lines.append(f"⬇️ @{escape(child.username)} {phase}…{count}")
    if view.waiting and view.state == "running":  # while any account still waits for it
        lines.append(f"⏳ {queue_sentence(next(iter(view.waiting.values())))}")
    lines += limited(view.lines, MAX_LINES)
    lines += limited([f"⏭ {escape(line)}" for line in view.skipped], MAX_LINES)
    if view.state != "running":
        state = "Completed" if view.state == "completed" else view.state.capitalize()
        problems = f", {view.problems} with problems" if view.problems else ""
        lines.append(
            f"\n<b>{state}: {plural(view.new_items, 'new item')} from "
            f"{plural(view.total, 'account')}{problems}</b>"
        )
        if view.requests:
            lines.append(escape(view.requests))
    return _fit("\n".join(line for line in lines if line is not None))


def sync_line(result: JobResult) -> str:
    """One line per finished account of a sync-all."""
    name = f"@{escape(result.username)}" + (" (TikTok)" if result.platform == "tiktok" else "")
    if result.state == "failed":
        return f"⚠️ {name}: {escape(result.error or 'failed')}"
    if result.state == "completed" and result.error:  # a gone account
        return f"⏭ {name}: {escape(result.error)}"
    problems = [p for p in result.phases if p.status == "failed"]
    note = f" ({escape(problems[0].phase)}: {escape(problems[0].message or '')})" if problems else ""
    if result.state != "completed":
        return f"⏸ {name}: {result.state}{note}"
    return f"✅ {name}: {result.new_items} new{note}"


def job_keyboard(job_id: int, state: str) -> InlineKeyboardMarkup | None:
    """Pause/Cancel while running, Resume/Cancel when paused, Retry after a failure."""
    buttons = {
        "queued": [("⏸ Pause", "pause"), ("⏹ Cancel", "cancel")],
        "running": [("⏸ Pause", "pause"), ("⏹ Cancel", "cancel")],
        "paused": [("▶️ Resume", "resume"), ("⏹ Cancel", "cancel")],
        "interrupted": [("▶️ Resume", "resume"), ("⏹ Cancel", "cancel")],
        "failed": [("🔁 Retry", "retry")],
    }.get(state)
    if not buttons:
        return None
    row = [InlineKeyboardButton(text, callback_data=f"job:{action}:{job_id}") for text, action in buttons]
    return InlineKeyboardMarkup([row])


def limited(lines: list[str], most: int) -> list[str]:
    """At most ``most`` lines, then "…and N more"."""
    if len(lines) <= most:
        return lines
    return [*lines[:most], f"…and {len(lines) - most} more"]


def _fit(text: str) -> str:
    """Stay under Telegram's 4,096-character limit, cutting whole lines."""
    if len(text) <= LIMIT:
        return text
    lines = text.split("\n")
    while lines and len("\n".join(lines)) > LIMIT - 40:
        lines.pop(-2 if len(lines) > 1 else -1)
    return "\n".join([*lines[:-1], "…(cut)", lines[-1]] if len(lines) > 1 else lines)
