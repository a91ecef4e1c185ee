"""Child process: the ``instaloader`` command line, unchanged except that its rate controller never sleeps.

Run as ``python bench/instaloader_cli.py ARGS...`` (same arguments as ``instaloader``).
Our service in the benchmark skips the same waits (harness.services_for injects an
instant sleep), so both sides see identical delays: only the fake's latency.
"""

from __future__ import annotations

import sys

import instaloader
from instaloader.__main__ import main


class InstantRateController(instaloader.RateController):
    """instaloader's rate windows, counted as usual, but waited out instantly."""

    def sleep(self, secs: float) -> None:
        """Do not wait."""


if __name__ == "__main__":
    # The CLI builds its Instaloader without a rate_controller argument, so swap the default class.
    instaloader.instaloadercontext.RateController = InstantRateController
    sys.exit(main())
