"""The benchmark command runs end to end on the small size and prints every figure (no timing checks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "1. Full download",
    "2. Re-sync",
    "3. Sync-all",
    "4. Peak RSS",
    "5. Archive check",
    "6. Stories sweep",
    "9. Old history",
    "10. Gallery",
)
# Figure 11 has a smoke of its own, so the two run side by side under xdist.
EXCEPT_LIGHT = "download,resync,syncall,memory,archive,sweep,million,workers,history,gallery"
COLUMNS = "| Figure | Ours | Reference | Ratio | Target | Met? |"


def table_rows(output: str) -> list[list[str]]:
    """The cells of the printed Markdown table's body rows."""
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    assert lines and lines[0] == COLUMNS, output
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def bench_run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -m bench ...` in a process group of its own: on a timeout the worker processes it
    started go too (killing the bench alone would leave them running after the test)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the bench did not finish in {timeout:.0f} s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# The bench is CPU-bound: about a minute on an idle 2-core machine, seven times that (424 s) when
# other tests and developers load the 2 cores to 13. The limits only catch a hang.
@pytest.mark.timeout(620)
def test_small_bench_prints_every_figure():
    done = bench_run("--size", "small", "--only", EXCEPT_LIGHT, timeout=600)
    rows = printed_rows(done)
    for figure in FIGURES:
        assert any(row[0].startswith(figure) for row in rows), f"{figure} missing:\n{done.stdout}"


@pytest.mark.timeout(120)
def test_small_light_figure_prints_its_rows():
    """Figure 11: a download's CPU against instaloader's, start-up times, an idle bot's memory and CPU."""
    done = bench_run("--size", "small", "--only", "light", timeout=100)
    rows = printed_rows(done)
    figures = [row[0] for row in rows]
    assert figures == [
        "11. Light: CPU of a full download (6 posts)",  # pinned to one core at --size full only
        "11. Light: `bot.py --help` wall time",
        "11. Light: `bot.py download --help` wall time",
        "11. Light: idle bot with 1,000 accounts, resident memory",
        "11. Light: idle bot, CPU share over 1 s",
    ], done.stdout
    assert rows[0][1].endswith(" s") and "instaloader CLI" in rows[0][2]
    assert rows[3][1].endswith(" MiB") and rows[4][1].endswith("% of a core")


def printed_rows(done: subprocess.CompletedProcess) -> list[list[str]]:
    """The table of a successful small run, after checking its header, cells and notes."""
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("# archive-bot benchmark (--size small)")
    assert "cores" in out and "Python 3." in out and "Date:" in out
    rows = table_rows(out)
    for row in rows:
        assert len(row) == 6, row
        assert not row[1].startswith("error:"), row
        assert row[5] in ("yes", "**no**", "—"), row
    assert "\nNotes:\n" in out
    return rows


def test_unknown_figure_is_refused_with_the_list():
    done = bench_run("--only", "nonsense", timeout=60)
    assert done.returncode == 2
    assert "unknown figure(s) nonsense" in done.stderr and "download" in done.stderr
