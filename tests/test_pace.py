"""A chat's Telegram pace survives a restart: the next process neither floods nor waits for nothing."""

from __future__ import annotations

import json
import stat
import time

from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN, make_settings, running_bot

PACE = ".telegram-pace.json"


async def help_replies(telegram: FakeTelegram, count: int) -> list[float]:
    """Send /help ``count`` times at once; the seconds each reply took."""
    mark, sent = len(telegram.calls), time.time()
    for _ in range(count):
        telegram.send_message(OWNER, "/help")
    replies = []
    for _ in range(count):
        reply = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
        replies.append(reply.time - sent)
        mark = telegram.calls.index(reply) + 1
    return replies


async def test_a_restart_keeps_the_chat_pace_and_telegram_never_answers_429(net, data_dir):
    with FakeTelegram(TOKEN) as telegram:
        async with running_bot(make_settings(data_dir, net=net, telegram=telegram)):
            first = await help_replies(telegram, 3)  # a burst of three goes out at once
        saved = json.loads((data_dir / PACE).read_text())
        assert saved["tokens"][str(OWNER)] < 1  # the burst is spent
        assert stat.S_IMODE((data_dir / PACE).stat().st_mode) == 0o600
        async with running_bot(make_settings(data_dir, net=net, telegram=telegram)):
            await help_replies(telegram, 3)  # the restarted bot paces them: a full burst would 429
        assert telegram.rate_limited == 0
    assert max(first) < 2.0, first  # not paced one a second (that would take 2.2 s)


async def test_a_damaged_pace_file_means_a_full_allowance(net, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / PACE).write_text("{not json")
    with FakeTelegram(TOKEN) as telegram:
        async with running_bot(make_settings(data_dir, net=net, telegram=telegram)):
            replies = await help_replies(telegram, 3)
    assert max(replies) < 2.0 and telegram.rate_limited == 0, replies
    assert json.loads((data_dir / PACE).read_text())["tokens"]  # written anew at the stop
