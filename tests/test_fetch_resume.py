"""The fetcher stops at once and continues a partial file only when the server proves it is the same."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from downloader.errors import StopRequested
from downloader.partials import partial_for, record_for
from tests.fakes.instagram import FakeInstagram, make_profile
from tests.test_fetch import cdn, fetcher_for

SIZE = 400_000


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=1, stories=0, highlights=(), image_size=SIZE))
    return fake


def image_url(instagram: FakeInstagram) -> str:
    return instagram.profiles["alice"].posts[0].image_url


async def stopped_partway(instagram: FakeInstagram, fetcher, url: str, final, share: float = 0.3) -> int:
    """Start a slow fetch, stop it once ``share`` of the file went out; return the partial size."""
    instagram.media_delay = 2e-5
    stop = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(fetcher.fetch(url, final, stop=stop))
    deadline = time.monotonic() + 30
    while instagram.cdn_bytes_sent < share * SIZE:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    stop.set_result(None)
    stopped = time.monotonic()
    with pytest.raises(StopRequested):
        await task
    assert time.monotonic() - stopped < 1.0
    instagram.media_delay = 0
    return partial_for(final).stat().st_size


async def test_a_stopped_fetch_keeps_its_part_and_the_next_continues_it(net, instagram, tmp_path):
    url, final = image_url(instagram), tmp_path / "1.jpg"
    fetcher = fetcher_for(net)
    try:
        kept = await stopped_partway(instagram, fetcher, url, final)
        assert 0 < kept < SIZE and not final.exists()
        assert json.loads(record_for(final).read_text())["length"] == SIZE
        assert await fetcher.fetch(url, final) == SIZE
    finally:
        await fetcher.aclose()
    assert [value for _, value in instagram.range_requests()] == [f"bytes={kept}-"]
    assert final.read_bytes() == instagram.expected_bytes(url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.jpg"]  # no partial file, no record


async def test_a_changed_file_is_fetched_whole(net, instagram, tmp_path):
    """The record's ETag is not the server's any more: If-Range gets the whole file (200)."""
    url, final = image_url(instagram), tmp_path / "1.jpg"
    fetcher = fetcher_for(net)
    try:
        await stopped_partway(instagram, fetcher, url, final)
        record = json.loads(record_for(final).read_text())
        record_for(final).write_text(json.dumps(record | {"etag": '"an-older-version"'}))
        await fetcher.fetch(url, final)
    finally:
        await fetcher.aclose()
    assert [r.status for r in instagram.cdn_requests()][1:] == [200]
    assert final.read_bytes() == instagram.expected_bytes(url)


async def test_a_partial_answer_of_another_length_is_not_appended(net, instagram, tmp_path):
    """206, but the total in Content-Range is not the recorded length: asked again, whole."""
    url, final = image_url(instagram), tmp_path / "1.jpg"
    fetcher = fetcher_for(net)
    try:
        await stopped_partway(instagram, fetcher, url, final)
        record = json.loads(record_for(final).read_text())
        record_for(final).write_text(json.dumps(record | {"length": SIZE + 10}))
        await fetcher.fetch(url, final)
    finally:
        await fetcher.aclose()
    assert [r.status for r in instagram.cdn_requests()][1:] == [206, 200]
    assert final.read_bytes() == instagram.expected_bytes(url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.jpg"]


async def test_a_broken_connection_is_continued_by_the_retry(net, instagram, tmp_path):
    """Every answer is cut after 150,000 bytes: each retry asks for the rest, none starts over."""
    url, final = image_url(instagram), tmp_path / "1.jpg"
    instagram.break_media(url, after=150_000, stall_seconds=0.3)  # the client has them all, then the cut
    fetcher = fetcher_for(net, retries=2)
    try:
        assert await fetcher.fetch(url, final) == SIZE
    finally:
        await fetcher.aclose()
    assert [value for _, value in instagram.range_requests()] == ["bytes=150000-", "bytes=300000-"]
    assert instagram.cdn_bytes_sent == SIZE
    assert final.read_bytes() == instagram.expected_bytes(url)


async def test_without_validators_a_stopped_part_is_dropped(net, tmp_path):
    """A server that sends neither ETag nor Last-Modified cannot prove a later part belongs."""
    cdn(net, body=bytes(range(256)) * 4000)
    fetcher = fetcher_for(net)
    final = tmp_path / "1.jpg"
    try:
        stop = asyncio.get_running_loop().create_future()
        stop.set_result(None)  # stopped before a byte arrived
        with pytest.raises(StopRequested):
            await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", final, stop=stop)
        assert list(tmp_path.iterdir()) == []
        partial_for(final).write_bytes(b"x" * 1000)  # a leftover nothing vouches for
        await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", final)
    finally:
        await fetcher.aclose()
    assert final.read_bytes() == bytes(range(256)) * 4000
    assert all("Range" not in r.headers for r in net.requests)
