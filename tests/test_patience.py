"""How long a job waits out network trouble and rate limits: the bot's schedule, the command
line's --wait (its default is one minute)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot import DEFAULT_WAIT, parse_args
from downloader.errors import RateLimited, Transient
from downloader.patience import Patience, wait_reason

OUTAGE = Transient("Network trouble reaching Instagram for @alice; try again later.")


def waits(patience: Patience, exc) -> list[float]:
    """The waits ``patience`` makes after ``exc`` keeps coming back, until it gives up."""
    made = []
    while (delay := patience.delay(exc, len(made))) is not None:
        made.append(delay)
        patience.spent(delay)
    return made


def test_the_bot_waits_out_an_outage_for_23_minutes_45_seconds():
    made = waits(Patience(), OUTAGE)
    assert made == [15, 30, 60, 120, 300, 300, 300, 300]
    assert sum(made) == 23 * 60 + 45


def test_the_command_line_gives_up_after_a_minute_by_default_in_three_retries():
    assert DEFAULT_WAIT == 1.0 and parse_args(["download", "alice"]).wait == DEFAULT_WAIT
    assert parse_args(["download", "alice", "--wait", "30"]).wait == 30
    made = waits(Patience(DEFAULT_WAIT * 60), OUTAGE)
    assert made == [15, 30, 15] and sum(made) == 60


def test_a_longer_wait_follows_the_schedule_up_to_it_and_zero_gives_up_at_once():
    assert waits(Patience(5 * 60), OUTAGE) == [15, 30, 60, 120, 75]
    assert waits(Patience(0), OUTAGE) == []


def test_a_rate_limit_longer_than_the_wait_left_gives_up_instead_of_asking_early():
    limited = RateLimited(
        "Instagram is rate limiting the bot.", retry_at=datetime.now(UTC) + timedelta(minutes=10)
    )
    assert Patience(60).delay(limited, 0) is None
    delay = Patience(30 * 60).delay(limited, 0)
    assert delay is not None and 590 < delay <= 600
    assert 590 < Patience().delay(limited, 0) <= 600


def test_the_wait_reason_says_what_happens_now():
    assert wait_reason(OUTAGE) == "Network trouble reaching Instagram for @alice; trying again"
    proxy = Transient("The proxy to TikTok failed; check HTTPS_PROXY or try again later.")
    assert wait_reason(proxy) == "The proxy to TikTok failed; check HTTPS_PROXY; trying again"
    assert wait_reason(RateLimited("Rate limited; wait.")) == "Rate limited; wait."
