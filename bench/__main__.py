"""``python -m bench [--size small|full] [--only NAME[,NAME]]``: run the benchmarks, print the table."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

from bench import archive, gallery, history, instagram, light, memory, million, sweep, syncall, workers
from bench.sizes import SIZES, Size
from bench.table import Row, Section, header, markdown

# Name -> (the label its rows start with, what it needs run).
FIGURES: dict[str, str] = {
    "download": "1. Full download",
    "resync": "2. Re-sync",
    "syncall": "3. Sync-all",
    "memory": "4. Peak RSS",
    "archive": "5. Archive check",
    "sweep": "6. Stories sweep",
    "million": "7. With",
    "workers": "8. Workers",
    "history": "9. Old history",
    "gallery": "10. Gallery",
    "light": "11. Light",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """--size and --only."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure our bot side by side with references against the offline fakes "
        "and print a Markdown comparison table.",
    )
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="full", help="full: the issue's sizes (default)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these figures (repeat or comma-separate): {', '.join(FIGURES)}",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for value in args.only or [] for name in value.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    args.only = [name for name in FIGURES if name in chosen] if chosen else list(FIGURES)
    return args


def conditions(size: Size) -> str:
    """The network and politeness conditions, for the header."""
    return (
        f"figures 1-3 add {size.latency * 1000:g} ms per response and cap each response body at "
        f"{size.bandwidth / 2**20:g} MiB/s; figure 4 has neither. Instagram politeness delays and "
        "rate-limit waits are off on both sides (INSTAGRAM_REQUEST_DELAY=0; instaloader --no-sleep and an "
        "instant RateController)."
    )


def jobs(size: Size, names: list[str]) -> list[tuple[list[str], Callable[[], Section]]]:
    """What to run for the chosen figures: (names covered, function)."""
    planned = []
    wanted = [n for n in ("download", "resync") if n in names]
    if wanted:
        # The re-sync needs the full download's archive on both sides, so they run together.
        planned.append(
            (wanted, lambda: instagram.run(size, download="download" in names, resync="resync" in names))
        )
    figures = (
        ("syncall", syncall),
        ("memory", memory),
        ("archive", archive),
        ("sweep", sweep),
        ("million", million),
        ("workers", workers),
        ("history", history),
        ("gallery", gallery),
        ("light", light),
    )
    for name, module in figures:
        if name in names:
            planned.append(([name], lambda module=module: module.run(size)))
    return planned


def main(argv: list[str] | None = None) -> int:
    """Run the chosen figures, print header, table and notes; 1 if any figure failed to run."""
    args = parse_args(argv)
    size = SIZES[args.size]
    began = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    failed = False
    for names, job in jobs(size, args.only):
        print(f"bench: running {', '.join(names)}…", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            section = job()
        except Exception as exc:
            traceback.print_exc()
            failed = True
            section = Section(
                [Row(FIGURES[n], f"error: {type(exc).__name__}: {exc}", met=False) for n in names], []
            )
        rows += section.rows
        notes += section.notes
        notes.append(f"{', '.join(names)} took {time.perf_counter() - start:.0f} s to run.")
    print(header(size.name, conditions(size)))
    if size.name != "full":
        print("- Targets are meant for --size full; this size only shows that every figure runs.")
    print()
    print(markdown(rows))
    print()
    print("Notes:")
    print("\n".join(f"- {note}" for note in notes))
    print(f"- Whole run: {time.perf_counter() - began:.0f} s.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
