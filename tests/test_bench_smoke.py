"""The benchmark command runs end to end on the small size and prints every figure (no timing checks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "1. Full download",
    "2. Re-sync",
    "3. Sync-all",
    "4. Peak RSS",
    "5. Archive check",
    "6. Stories sweep",
    "9. Gallery",
)
COLUMNS = "| Figure | Ours | Reference | Ratio | Target | Met? |"


def table_rows(output: str) -> list[list[str]]:
    """The cells of the printed Markdown table's body rows."""
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    assert lines and lines[0] == COLUMNS, output
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_small_bench_prints_every_figure():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "small"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,  # about 2 minutes on 2 shared cores under a load of 12; a hang still fails
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("# archive-bot benchmark (--size small)")
    assert "cores" in out and "Python 3." in out and "Date:" in out
    rows = table_rows(out)
    for figure in FIGURES:
        assert any(row[0].startswith(figure) for row in rows), f"{figure} missing:\n{out}"
    for row in rows:
        assert len(row) == 6, row
        assert not row[1].startswith("error:"), row
        assert row[5] in ("yes", "**no**", "—"), row
    assert "\nNotes:\n" in out


def test_unknown_figure_is_refused_with_the_list():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown figure(s) nonsense" in done.stderr and "download" in done.stderr
