"""The web gallery in a real browser (Playwright driving Debian's chromium), signed in by a /web link."""

from __future__ import annotations

import asyncio
import io
import shutil
import time
import wave
from pathlib import Path

import pytest
from PIL import Image

from db.models import Job, MediaItem
from tests.fakes.instagram import make_profile

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",  # play() from the test, not from a click
]
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (apt-get install -y chromium)"
)
COLOURS = [(233, 196, 106), (42, 157, 143), (231, 111, 81), (38, 70, 83), (244, 162, 97), (138, 177, 125)]


def paint_archive(data_dir: Path) -> None:
    """The fake CDN serves bytes, not pictures: give the archived images real pixels."""
    for index, path in enumerate(sorted((data_dir / "downloads").rglob("*.jpg"))):
        buffer = io.BytesIO()
        size = (1080, 1350) if index % 3 else (1080, 1080)
        Image.new("RGB", size, COLOURS[index % len(COLOURS)]).save(buffer, "JPEG", quality=90)
        path.write_bytes(buffer.getvalue())


def playable_videos(data_dir: Path) -> None:
    """The fake CDN's videos are bytes too, and there is no encoder here: 3 s of silent WAV
    stand in (chromium recognises media by content, so it plays them from the .mp4 file)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 8000 * 3)
    for path in (data_dir / "downloads").rglob("*.mp4"):
        path.write_bytes(buffer.getvalue())


async def play_to_one_second(page) -> float:
    """Play the page's first video until it reaches 1 s; returns where it got to."""
    await page.evaluate("() => document.querySelector('video').play()")
    deadline = time.monotonic() + 20
    while (position := await page.evaluate("() => document.querySelector('video').currentTime")) < 1:
        assert time.monotonic() < deadline, "the video did not play"
        await asyncio.sleep(0.1)
    return position


async def all_images_loaded(page) -> list[int]:
    """naturalWidth of every image on the page, once each has loaded (polled: the page's CSP
    forbids the eval that wait_for_function would need)."""
    deadline = time.monotonic() + 20
    while not await page.evaluate("() => [...document.images].every(i => i.complete)"):
        assert time.monotonic() < deadline, "images did not load"
        await asyncio.sleep(0.1)
    return await page.evaluate("() => [...document.images].map(i => i.naturalWidth)")


async def test_sign_in_browse_download_pause_resume_complete(gallery, data_dir, tmp_path):
    from playwright.async_api import async_playwright, expect

    await gallery.reply("/download alice")
    await gallery.message_with("Completed:")
    paint_archive(data_dir)
    playable_videos(data_dir)
    gallery.instagram.add_profile(make_profile("carol", 1002, posts=30))
    await gallery.reply("/add carol")
    link = await gallery.link()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(link)
        await expect(page.locator("h1")).to_have_text("Accounts")
        await expect(page.locator(".card")).to_have_count(2)
        await page.screenshot(path=str(tmp_path / "accounts.png"))
        await page.click("text=@alice")
        await expect(page.locator(".grid .tile")).to_have_count(8)
        widths = await all_images_loaded(page)
        assert len(widths) == 8 and all(w > 0 for w in widths)
        await page.screenshot(path=str(tmp_path / "account.png"), full_page=True)
        await page.click(".tile >> nth=2")  # a carousel: every file in order
        await expect(page.locator(".media figure")).to_have_count(3)
        await expect(page.locator(".media video")).to_have_count(1)
        assert all(w > 0 for w in await all_images_loaded(page))
        assert await play_to_one_second(page) >= 1
        seekable = await page.evaluate("() => document.querySelector('video').seekable.end(0)")
        assert seekable >= 2.9  # the whole file is seekable: the server answers Range requests
        await page.screenshot(path=str(tmp_path / "item.png"), full_page=True)
        here, older = page.url, await page.get_attribute("#older", "href")
        await page.keyboard.press("ArrowRight")  # the older post
        await page.wait_for_url(lambda url: url != here)
        assert page.url.endswith(older)
        await page.goto(gallery.url + "/")
        await page.click("text=@carol")
        gallery.instagram.media_delay = 0.001  # slow enough to be paused mid-way
        await page.click("button:has-text('Download new')")
        await page.wait_for_url("**/downloads")
        await expect(page.locator(".toast").first).to_have_text(
            "Download started - including posts, stories, and highlights!"
        )
        row = page.locator(".job", has_text="@carol")
        await expect(row.locator(".phases")).to_contain_text("Downloading posts", timeout=30_000)
        await row.locator("button:has-text('Pause')").click()
        await expect(page.locator(".toast").first).to_have_text("Pausing…")
        row = page.locator(".job", has_text="@carol")
        await expect(row.locator(".state")).to_have_text("paused", timeout=30_000)
        gallery.instagram.media_delay = 0
        await row.locator("button:has-text('Resume')").click()
        await expect(page.locator(".toast").first).to_have_text("Resuming.")
        done = page.locator("#recent .job", has_text="@carol")  # moved by the live stream, no reload
        await expect(done.locator(".summary")).to_contain_text(
            "Completed: 30 posts (44 files) + 8 stories/highlights", timeout=60_000
        )
        await page.screenshot(path=str(tmp_path / "downloads.png"), full_page=True)
        await page.set_viewport_size({"width": 390, "height": 844})  # a phone
        await page.goto(gallery.url + "/accounts/1")
        await page.screenshot(path=str(tmp_path / "account-phone.png"))
        await browser.close()
    assert errors == []
    job = await Job.filter(account__username="carol").get()
    assert job.state == "completed" and job.chat_id is not None
    # The chat's status message followed the pause and the resume (a resume within the edit
    # interval once left the message stuck at its paused state).
    final = await gallery.message_with("Completed: 30 posts (44 files)")
    assert "@carol" in final.plain
    assert await MediaItem.filter(account__username="carol").count() == 52
    assert gallery.telegram.rate_limited == 0  # web and chat together stay within Telegram's limits
