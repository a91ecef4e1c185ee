"""The web gallery's test world: the real bot with its gallery on a free port, and a signed-in client."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest

from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.outage import free_port
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import TOKEN, make_settings, running_bot

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login/[A-Za-z0-9_-]+)")


@dataclass
class Gallery(World):
    """A chat world whose bot also serves the gallery at ``url``."""

    url: str = ""

    async def link(self) -> str:
        """A fresh /web sign-in link, as the owner reads it in the chat."""
        text = await self.reply("/web")
        found = LINK.search(text)
        assert found, text
        return found.group(1)

    @asynccontextmanager
    async def browser(self, signed_in: bool = True):
        """An HTTP client with its own cookie jar (signed in through a /web link unless told not)."""
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
        async with aiohttp.ClientSession(self.url, cookie_jar=jar) as client:
            if signed_in:
                async with client.get(await self.link(), allow_redirects=False) as response:
                    assert response.status == 303, await response.text()
            yield client


@pytest.fixture
async def gallery(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram (alice: 8 posts) with its gallery on a free port."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=8))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    tiktok = FakeTikTok(net, page_size=5)
    tiktok.add_account("bob.dance", videos=3)
    port = free_port()
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir,
            net=net,
            telegram=telegram,
            instagram_session_file=session,
            status_edit_interval=1.2,
            download_retries=0,
            web_port=port,
        )
        async with running_bot(settings) as app:
            yield Gallery(telegram, instagram, tiktok, app, url=f"http://127.0.0.1:{port}")
