"""The web gallery over plain HTTP: sign-in, refusals, CSRF, traversal, files, thumbnails, search."""

from __future__ import annotations

import io
import logging
import re
import socket
from pathlib import Path

import pytest
from PIL import Image

from config import SettingsError, load_settings
from db import web_access
from db.models import Account, Job, MediaItem
from logsetup import RedactSecrets
from tests.fakes.instagram import make_profile
from tests.fakes.outage import free_port
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, STRANGER, TOKEN, make_settings, media_on_disk, running_bot

SIGN_IN = "send <code>/web</code> to the bot"


async def download_alice(gallery) -> None:
    await gallery.reply("/download alice")
    await gallery.message_with("Completed:")


async def test_without_a_session_nothing_is_served(gallery, data_dir):
    await download_alice(gallery)
    item = await MediaItem.filter(kind="post").first()
    secret_bytes = (data_dir / item.path).read_bytes()[:64]
    async with gallery.browser(signed_in=False) as client:
        pages = ("/", "/accounts/1", f"/items/{item.id}", "/downloads", "/search?q=Post")
        for path in (*pages, f"/files/{item.id}"):
            async with client.get(path) as response:
                body = await response.read()
                assert response.status == 401, path
                assert SIGN_IN.encode() in body and secret_bytes not in body
        async with client.get(f"/thumbs/{item.id}") as response:
            assert response.status == 401 and response.content_type == "text/html"
        async with client.get("/events") as response:
            assert response.status == 401
        async with client.post("/syncall", data={"csrf": "x"}) as response:
            assert response.status == 401
    assert await Job.filter(kind="syncall").count() == 0  # a refused POST changed nothing


async def test_link_signs_in_once(gallery):
    link = await gallery.link()
    message = gallery.bot_messages()[-1]
    assert "within 10 minutes" in message.plain
    async with gallery.browser(signed_in=False) as client:
        async with client.head(link, allow_redirects=False) as response:
            assert response.status == 405  # a HEAD (a link checker) does not spend it
        async with client.get(link, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=2592000" in cookie
            assert response.headers["Cache-Control"] == "no-store"
        async with client.get("/") as response:
            assert response.status == 200 and "Accounts" in await response.text()
    async with gallery.browser(signed_in=False) as other:
        async with other.get(link) as response:  # the same link again: spent
            assert response.status == 403
            assert "already used or is not valid" in await response.text()
        async with other.get("/") as response:
            assert response.status == 401


async def test_expired_and_made_up_links_are_refused(gallery):
    async with gallery.browser(signed_in=False) as client:
        expired = await web_access.new_link_token(lifetime=-1)
        async with client.get(f"/login/{expired}") as response:
            assert response.status == 403 and "has expired" in await response.text()
        async with client.get("/login/" + "A" * 43) as response:
            assert response.status == 403 and "already used or is not valid" in await response.text()
        async with client.get("/") as response:
            assert response.status == 401


async def test_web_logout_in_chat_ends_every_session(gallery):
    async with gallery.browser() as first, gallery.browser() as second:
        for client in (first, second):
            async with client.get("/") as response:
                assert response.status == 200
        unused = await gallery.link()
        assert await gallery.reply("/web logout") == (
            "Signed out: every browser needs a new /web link to open the gallery."
        )
        for client in (first, second):
            async with client.get("/") as response:
                assert response.status == 401
        async with first.get(unused) as response:  # links sent before the logout are void too
            assert response.status == 403
    async with gallery.browser() as third, third.get("/") as response:  # a new link works
        assert response.status == 200


async def test_no_link_for_strangers_or_in_groups(gallery):
    refusal = await gallery.reply("/web", user=STRANGER)
    assert str(STRANGER) in refusal and "/login/" not in refusal  # the usual answer to strangers
    stranger_texts = [m.plain for m in gallery.bot_messages(STRANGER)]
    assert stranger_texts and not any("/login/" in t for t in stranger_texts)
    mark = len(gallery.telegram.calls)
    gallery.telegram.send_message(OWNER, "/web", chat_id=-100500, chat_type="group")
    call = await gallery.telegram.await_for("sendMessage", chat_id=-100500, after=mark, timeout=20)
    text = gallery.telegram.message(-100500, call.result["message_id"]).plain
    assert text.startswith("Send /web to me in a private chat") and "/login/" not in text
    assert await web_access.session_epoch() == 0


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
async def test_the_link_token_is_never_logged(gallery, caplog, level):
    """Our own lines never hold it; at DEBUG (PTB logs message texts) the log filter hides it."""
    caplog.set_level(level)
    if level == logging.DEBUG:
        caplog.handler.addFilter(RedactSecrets([TOKEN]))  # as configure_logging installs it
    async with gallery.browser() as client:
        async with client.get("/") as response:
            assert response.status == 200
        async with client.get(await gallery.link()) as response:  # a second sign-in
            assert response.status == 200
    tokens = [m.plain.rsplit("/login/", 1)[1] for m in gallery.bot_messages() if "/login/" in m.plain]
    assert len(tokens) == 2 and "signed in with a /web link" in caplog.text
    assert not any(token in caplog.text for token in tokens)
    if level == logging.DEBUG:
        assert "GET /login/… 303" in caplog.text  # the access log line, token hidden


async def test_posts_need_the_same_origin_and_the_csrf_token(gallery):
    await download_alice(gallery)
    jobs_before = await Job.all().count()
    async with gallery.browser() as client:
        async with client.get("/accounts/1") as response:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await response.text()).group(1)
        url = "/accounts/1/download"
        own = {"Origin": gallery.url}
        refusals = [
            ({"only": ""}, own, "security token"),  # no token
            ({"only": "", "csrf": "0" * 32}, own, "security token"),  # a wrong one
            ({"only": "", "csrf": csrf}, {"Origin": "http://evil.example"}, "not sent from the gallery"),
            ({"only": "", "csrf": csrf}, {"Referer": "http://evil.example/x"}, "not sent from the gallery"),
            ({"only": "", "csrf": csrf}, {}, "not sent from the gallery"),  # neither Origin nor Referer
        ]
        for form, headers, words in refusals:
            async with client.post(url, data=form, headers=headers, allow_redirects=False) as response:
                assert response.status == 403 and words in await response.text()
        assert await Job.all().count() == jobs_before  # nothing started
        async with client.post(url, data={"only": "bogus", "csrf": csrf}, headers=own) as response:
            assert response.status == 400
        referer = {"Referer": f"{gallery.url}/accounts/1"}
        async with client.post(url, data={"only": "stories", "csrf": csrf}, headers=referer) as response:
            assert response.status == 200 and str(response.url).endswith("/downloads")
            assert "Download started - stories only!" in await response.text()
    assert await Job.all().count() == jobs_before + 1
    job = await Job.all().order_by("-id").first()
    assert job.phases == ["stories"] and job.chat_id == OWNER


async def test_traversal_attempts_reach_nothing(gallery, data_dir):
    await download_alice(gallery)
    (data_dir / "secret.txt").write_text("TOP SECRET")
    attempts = [
        "/files/../archive.sqlite3",
        "/files/..%2farchive.sqlite3",
        "/files/%2e%2e%2fsecret.txt",
        "/files//etc/passwd",
        "/files/1/../../secret.txt",
        "/thumbs/..%2F..%2Fsecret.txt",
        "/static/../secret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static/..%2f..%2f..%2fsecret.txt",
        "/static/",
        "/files/",
        "/files/-1",
        "/files/99999",
    ]
    async with gallery.browser() as client:
        for path in attempts:
            async with client.get(path) as response:
                body = await response.read()
                assert response.status in (401, 403, 404), (path, response.status)
                assert b"TOP SECRET" not in body and b"SQLite" not in body, path
        # A row whose path was tampered with still reaches nothing outside downloads/.
        item = await MediaItem.filter(kind="post").first()
        item.path = "secret.txt"
        await item.save()
        async with client.get(f"/files/{item.id}") as response:
            assert response.status == 404 and b"TOP SECRET" not in await response.read()
        item.path = "downloads/../secret.txt"
        await item.save()
        async with client.get(f"/thumbs/{item.id}") as response:
            assert response.status == 404


async def test_files_stream_with_etag_and_range(gallery, data_dir):
    await download_alice(gallery)
    item = await MediaItem.filter(path__endswith=".mp4").first()
    content = (data_dir / item.path).read_bytes()
    async with gallery.browser() as client:
        async with client.get(f"/files/{item.id}") as response:
            assert response.status == 200 and await response.read() == content
            assert response.content_type == "video/mp4"
            etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
            assert response.headers["Accept-Ranges"] == "bytes"
            assert response.headers["Cache-Control"].startswith("private")
        async with client.get(f"/files/{item.id}", headers={"Range": "bytes=100-299"}) as response:
            assert response.status == 206 and await response.read() == content[100:300]
            assert response.headers["Content-Range"] == f"bytes 100-299/{len(content)}"
        async with client.get(f"/files/{item.id}", headers={"Range": "bytes=-50"}) as response:
            assert response.status == 206 and await response.read() == content[-50:]
        past_the_end = {"Range": f"bytes={len(content) + 10}-"}
        async with client.get(f"/files/{item.id}", headers=past_the_end) as response:
            assert response.status == 416
        async with client.get(f"/files/{item.id}", headers={"If-None-Match": etag}) as response:
            assert response.status == 304 and await response.read() == b""
        async with client.get(f"/files/{item.id}", headers={"If-Modified-Since": modified}) as response:
            assert response.status == 304
        async with client.get(f"/files/{item.id}?download=1") as response:
            assert response.headers["Content-Disposition"].startswith("attachment;")
        async with client.get("/") as response:
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


async def test_thumbnails_are_made_once_and_placeholders_never_fail(gallery, data_dir):
    await download_alice(gallery)
    images = await MediaItem.filter(path__endswith=".jpg", kind="post").order_by("id").limit(2)
    real, broken = images
    (data_dir / real.path).write_bytes(jpeg(1600, 1200))  # the fake CDN's bytes are not pictures
    video = await MediaItem.filter(path__endswith=".mp4").first()
    thumbs = data_dir / "thumbnails" / "instagram"
    async with gallery.browser() as client:
        async with client.get(f"/thumbs/{real.id}") as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            data = await response.read()
            assert "immutable" in response.headers["Cache-Control"] and "ETag" in response.headers
        with Image.open(io.BytesIO(data)) as thumb:
            assert thumb.size == (320, 240)
        assert len(data) < (data_dir / real.path).stat().st_size / 5
        made = thumbs / f"{real.media_id}.jpg"
        stamp = made.stat().st_mtime_ns
        async with client.get(f"/thumbs/{real.id}") as response:
            assert await response.read() == data
        assert made.stat().st_mtime_ns == stamp  # made once
        async with client.get(f"/thumbs/{broken.id}") as response:
            assert response.status == 200 and response.content_type == "image/svg+xml"
        assert (thumbs / f"{broken.media_id}.none").exists()  # not decoded again on every view
        async with client.get(f"/thumbs/{video.id}") as response:  # made from the video's cover
            assert response.status == 200 and response.content_type == "image/jpeg"
        async with client.get(f"/items/{broken.id}") as response:
            assert response.status == 200  # an undecodable image never makes an error page
    assert not list((data_dir / "downloads").rglob("*.none"))  # thumbnails stay outside downloads/


async def test_search_finds_names_and_captions_escaped(gallery):
    await download_alice(gallery)
    item = await MediaItem.filter(kind="post").order_by("id").first()
    caption = 'Sunset <script>alert("x")</script> on the pier'
    await MediaItem.filter(group_id=item.group_id).update(caption=caption)
    async with gallery.browser() as client:
        async with client.get("/search", params={"q": "ALI"}) as response:
            text = await response.text()
            assert '<a href="/accounts/1">@alice</a>' in text
        async with client.get("/search", params={"q": "post 3 of"}) as response:
            text = await response.text()
            assert len(re.findall(r'<li><a href="/items/\d+">', text)) == 1
        async with client.get("/search", params={"q": "sunset"}) as response:
            text = await response.text()
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text and "<script>alert" not in text
            assert f'href="/items/{item.id}"' in text or "/items/" in text
        async with client.get("/search", params={"q": "<b>nothing</b>"}) as response:
            text = await response.text()
            assert "No caption holds “&lt;b&gt;nothing&lt;/b&gt;”" in text
        async with client.get(f"/items/{item.id}") as response:
            assert "&lt;script&gt;" in await response.text()


async def test_every_archived_file_is_reachable_by_links(gallery):
    """Starting at the page the /web link opens, <a href>/<img src>/<video src> reach every file."""
    await download_alice(gallery)
    await gallery.reply("/download https://www.tiktok.com/@bob.dance")
    await gallery.message_with("Completed: 3 videos")
    seen, todo, files = set(), ["/"], set()
    async with gallery.browser() as client:
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            async with client.get(path) as response:
                assert response.status == 200, path
                if response.content_type != "text/html":
                    continue
                text = await response.text()
            base = path.split("?")[0]
            for link in re.findall(r'(?:href|src)="([^"]+)"', text):
                link = link.replace("&amp;", "&")
                if link.startswith("?"):
                    link = base + link
                if link.startswith("/files/"):
                    files.add(int(link.split("/")[2].split("?")[0]))
                elif link.startswith("/") and not link.startswith(("/static/", "/thumbs/")):
                    todo.append(link)
    assert files == set(await MediaItem.all().values_list("id", flat=True))
    assert len(files) == await MediaItem.all().count() > 20


async def test_a_port_in_use_is_one_sentence_and_the_bot_runs_on(net, data_dir, caplog):
    caplog.set_level(logging.INFO)
    with socket.socket() as taken, FakeTelegram(TOKEN) as telegram:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(data_dir, net=net, telegram=telegram, web_port=port)
        async with running_bot(settings):
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/web")
            call = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
            text = telegram.message(OWNER, call.result["message_id"]).plain
            sentence = f"The web gallery is off: port {port} on 127.0.0.1 is already in use"
            assert text.startswith(sentence)
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/help")  # the bot runs on
            await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
    lines = [r for r in caplog.records if sentence in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None and "Traceback" not in caplog.text


@pytest.mark.parametrize("base", ["https://archive.example.ts.net", "http://192.168.1.5:8443/"])
async def test_links_use_web_base_url(net, data_dir, base):
    with FakeTelegram(TOKEN) as telegram:
        port = free_port()
        settings = make_settings(data_dir, net=net, telegram=telegram, web_port=port, web_base_url=base)
        async with running_bot(settings):
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/web")
            call = await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
            assert call.params.get("link_preview_options") is not None  # no preview fetch spends it
            text = telegram.message(OWNER, call.result["message_id"]).plain
            assert re.search(re.escape(base.rstrip("/")) + r"/login/[A-Za-z0-9_-]{43}$", text), text
            assert await Account.all().count() == 0
    assert not Path(data_dir / "thumbnails").exists()


@pytest.mark.parametrize("bad", ["example.org", "https://example.org/gallery", "ftp://x", "https://a b"])
def test_a_bad_web_base_url_is_one_sentence(bad, monkeypatch):
    monkeypatch.setenv("WEB_BASE_URL", bad)
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    assert str(caught.value) == (
        "Setting WEB_BASE_URL is invalid: WEB_BASE_URL must look like https://host or http://host:port, "
        "without a path."
    )


async def read_events(response, until, timeout: float = 60) -> list[tuple[str, dict]]:
    """Server-sent events from an open /events response until ``until(events)`` holds."""
    import asyncio
    import json

    events: list[tuple[str, dict]] = []
    name = None
    async with asyncio.timeout(timeout):
        while not until(events):
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line[6:])))
                name = None
    return events


async def test_the_page_follows_a_job_the_chat_pauses_and_resumes(gallery):
    """Chat buttons and the page show one job: its live rows, paused, resumed, completed."""
    gallery.instagram.add_profile(make_profile("carol", 1002, posts=30))
    gallery.instagram.media_delay = 0.003  # seconds a file: still running when Pause is pressed

    def running(events) -> bool:
        toasted = any(name == "toast" for name, _ in events)
        return toasted and any("Downloading posts" in data.get("html", "") for _, data in events)

    def paused(events) -> bool:
        return any('class="state">paused<' in data.get("html", "") for _, data in events)

    def completed(events) -> bool:
        return any("Completed" in data.get("text", "") for _, data in events)

    async with gallery.browser() as client, client.get("/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        intro = await gallery.reply("/download carol")
        assert intro.startswith("Download started")
        rows = await read_events(stream, running)
        assert ("toast", {"text": "Download started - including posts, stories, and highlights!"}) in rows
        status = await gallery.message_with("Downloading @carol posts")
        assert "Pausing" in await gallery.press(status, "Pause")
        await read_events(stream, paused)
        async with client.get("/downloads") as response:
            page = await response.text()
            assert '<span class="state">paused</span>' in page and "/resume" in page
        await gallery.message_with("⏸ Paused")  # the chat shows it too, with its Resume button
        gallery.instagram.media_delay = 0
        assert "Resuming" in await gallery.press(status, "Resume")
        done = await read_events(stream, completed)
        assert ("toast", {"text": "Completed: 30 posts (44 files) + 8 stories/highlights"}) in done
    assert await Job.filter(state="completed").count() == 1


async def test_cancel_from_the_page_keeps_the_files_and_tells_the_chat(gallery, data_dir):
    gallery.instagram.add_profile(make_profile("carol", 1002, posts=30))
    gallery.instagram.media_delay = 0.001
    async with gallery.browser() as client:
        async with client.get("/accounts/1") as response:
            assert response.status == 404  # nothing archived yet, no such account
        await gallery.reply("/add carol")
        async with client.get("/accounts/1") as response:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await response.text()).group(1)
        own = {"Origin": gallery.url}
        async with client.post(
            "/accounts/1/download", data={"only": "", "csrf": csrf}, headers=own
        ) as response:
            assert "Download started - including posts" in await response.text()
        await gallery.message_with("Downloading @carol posts")  # its status message in the chat
        job = await Job.get(account_id=1)
        async with client.post(f"/jobs/{job.id}/cancel", data={"csrf": csrf}, headers=own) as response:
            assert "Cancelling; files already downloaded stay archived." in await response.text()
        final = await gallery.message_with("Cancelled:")
        assert "@carol" in final.plain
        await job.refresh_from_db()
        assert job.state == "cancelled"
        async with client.post(f"/jobs/{job.id}/resume", data={"csrf": csrf}, headers=own) as response:
            assert "That download cannot resume now (cancelled)." in await response.text()
        await job.refresh_from_db()
        assert job.state == "cancelled" and await Job.all().count() == 1
    files = [p for p in media_on_disk(data_dir) if p.endswith((".jpg", ".mp4"))]
    assert len(files) == await MediaItem.all().count()  # every finished file kept, and recorded
