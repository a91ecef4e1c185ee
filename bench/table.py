"""The printed report: machine header, one Markdown row per figure, notes."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

COLUMNS = ("Figure", "Ours", "Reference", "Ratio", "Target", "Met?")


@dataclass
class Row:
    """One line of the table; ``met`` None means "no target" (or not measured)."""

    figure: str
    ours: str
    reference: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: bool | None = None

    def cells(self) -> tuple[str, ...]:
        met = "—" if self.met is None else "yes" if self.met else "**no**"
        return (self.figure, self.ours, self.reference, self.ratio, self.target, met)


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def header(size_name: str, conditions: str) -> str:
    """Date, machine and conditions, printed above the table."""
    now = datetime.now(UTC)
    python = f"Python {platform.python_version()} ({sys.implementation.name})"
    return "\n".join(
        [
            f"# archive-bot benchmark (--size {size_name})",
            "",
            f"- Date: {now:%Y-%m-%d %H:%M} UTC",
            f"- Machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}",
            f"- {python}",
            f"- Conditions: {conditions}",
        ]
    )


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table (pipes in cells escaped)."""
    lines = [_line(COLUMNS), _line(tuple("---" for _ in COLUMNS))]
    lines += [_line(row.cells()) for row in rows]
    return "\n".join(lines)


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def seconds(value: float) -> str:
    """A duration for a cell: 3 significant digits, or milliseconds below a second."""
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def speed(ours: float, reference: float) -> str:
    """How much faster (or slower) ours is than the reference, from two durations."""
    if ours <= reference:
        return f"{reference / ours:.2f}× faster"
    return f"{ours / reference:.2f}× slower"


def times(value: float) -> str:
    """A ratio for a cell."""
    return f"{value:.2f}×"


@dataclass
class Section:
    """What one benchmark contributes: rows for the table and notes printed under it."""

    rows: list[Row]
    notes: list[str]
