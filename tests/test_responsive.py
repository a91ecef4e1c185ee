"""The bot answers within a second while a download writes to a very slow disk."""

from __future__ import annotations

import asyncio
import builtins
import threading
import time

import pytest
from aiohttp import web

from downloader.paths import TEMP_SUFFIX
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN, make_settings, running_bot

BODY = bytes(range(256)) * 4096  # 1 MiB: four chunks of 256 KiB
WRITE_SECONDS = 1.5  # each write of a chunk takes this long, as on a dying USB disk


class SlowFile:
    """A file object whose writes block like a slow disk (the OS boundary, not our code)."""

    def __init__(self, real, started: threading.Event):
        self._real, self._started = real, started

    def write(self, data: bytes) -> int:
        self._started.set()
        time.sleep(WRITE_SECONDS)
        return self._real.write(data)

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._real.close()


@pytest.fixture
def slow_disk(monkeypatch) -> threading.Event:
    """Temporary media files written from now on are slow; the event is set at the first write."""
    started = threading.Event()
    real_open = builtins.open

    def slow_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).endswith(TEMP_SUFFIX):
            return SlowFile(handle, started)
        return handle

    monkeypatch.setattr(builtins, "open", slow_open)
    return started


async def test_help_is_answered_within_a_second_during_a_slow_write(net, data_dir, slow_disk):
    async def media(request: web.Request) -> web.StreamResponse:
        return await net.send_bytes(request, BODY, content_type="image/jpeg")

    net.add_host("scontent.cdninstagram.com", media)
    with FakeTelegram(TOKEN) as telegram:
        async with running_bot(make_settings(data_dir, net=net, telegram=telegram)) as app:
            fetcher = app.bot_data.extras["services"].fetcher
            final = data_dir / "big.jpg"
            download = app.create_task(fetcher.fetch("https://scontent.cdninstagram.com/v/big.jpg", final))
            assert await asyncio.to_thread(slow_disk.wait, 20)  # the disk is busy with a chunk now
            waits = []
            for _ in range(3):
                mark = len(telegram.calls)
                sent = time.time()
                telegram.send_message(OWNER, "/help")
                reply = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
                waits.append(reply.time - sent)
            assert not download.done()  # the answers came while the file was still being written
            assert await download == len(BODY)
    assert max(waits) < 1.0, waits
    assert final.read_bytes() == BODY
