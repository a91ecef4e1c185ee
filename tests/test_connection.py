"""Backoff and outage logging of the Telegram connection (the process tests show them live)."""

from __future__ import annotations

import itertools
import logging

from telegram.error import NetworkError

from handlers.connection import PollingWatch, backoff


def test_backoff_doubles_from_five_seconds_to_five_minutes():
    assert list(itertools.islice(backoff(), 9)) == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_an_outage_is_three_lines_however_many_polls_fail(caplog):
    now = [0.0]
    watch = PollingWatch(reminder=300, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="handlers.connection")
    watch.answered()  # nothing to report while all is well
    for _ in range(40):  # PTB polls again every 1 to 30 s: ten minutes of failures
        watch.failed(NetworkError("httpx.ConnectError: All connection attempts failed"))
        now[0] += 15
    watch.answered()
    watch.answered()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3, lines  # failures at 0, 15, ... 585 s: one reminder, at 300 s
    assert lines[0].startswith("lost the connection to Telegram (httpx.ConnectError")
    assert lines[1].startswith("still no connection to Telegram after 300 s")
    assert lines[2] == "Telegram answers again after 600 s (40 failed polls)"
    assert all("Traceback" not in line for line in lines)
