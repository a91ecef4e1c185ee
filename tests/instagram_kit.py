"""Shared fixtures of the Instagram source tests: the fake with three profiles, sources, a login."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from downloader.sources.instagram import InstagramSource
from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.harness import TOKEN, make_settings, running_bot, services_for


class Recorder:
    """Stands in for time.sleep and on_wait: remembers, never waits."""

    def __init__(self):
        self.sleeps: list[float] = []
        self.waits: list[tuple[datetime, str]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_wait(self, until: datetime, reason: str) -> None:
        self.waits.append((until, reason))


@pytest.fixture
def ig(net) -> FakeInstagram:
    """The fake Instagram with a public @alice (30 posts), a private @privy and a followed @friend."""
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=30))
    fake.add_profile(make_profile("privy", 2002, posts=5, private=True))
    fake.add_profile(make_profile("friend", 3003, posts=3, private=True, followed=True))
    return fake


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_source(recorder, tmp_path):
    """Build InstagramSources with no politeness delay and a no-op sleep; closed afterwards."""
    sources: list[InstagramSource] = []

    def build(**options) -> InstagramSource:
        options = {"request_delay": (0, 0), "sleep": recorder.sleep, "on_wait": recorder.on_wait} | options
        source = InstagramSource(timeout=10, **options)
        sources.append(source)
        return source

    yield build
    for source in sources:
        source.close()


@pytest.fixture
def session_file(ig, tmp_path) -> Path:
    """What `instaloader --login archivebot` writes, for a session the fake accepts."""
    return write_session_file(tmp_path / "session-archivebot", ig.login("archivebot"))


@pytest.fixture
async def anonymous(instagram, net, data_dir):
    """The real services without an Instagram login, against the module's ``instagram`` fake."""
    services = await services_for(make_settings(data_dir, net=net, download_retries=0))
    yield services
    await services.close()


@pytest.fixture
async def logged_in(instagram, net, data_dir, tmp_path):
    """The real services logged in with a session the module's ``instagram`` fake accepts."""
    session = write_session_file(tmp_path / "sessions" / "session-archivebot", instagram.login())
    settings = make_settings(data_dir, net=net, instagram_session_file=session, download_retries=0)
    services = await services_for(settings)
    yield services
    await services.close()


@contextlib.asynccontextmanager
async def chat_with_alice(net, data_dir, tmp_path, posts: int, **profile) -> AsyncIterator[World]:
    """The bot in chat, logged in to a fake Instagram with alice (``posts`` posts, ``profile``)."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=posts, **profile))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir, net=net, telegram=telegram, instagram_session_file=session, download_retries=0
        )
        async with running_bot(settings) as app:
            yield World(telegram, instagram, None, app)
