"""Our fetcher against a fake CDN over real TLS through the proxy."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest
from aiohttp import web

from downloader.errors import DownloadError, Transient
from downloader.fetch import Fetcher, MediaGone
from downloader.network import Network

BODY = bytes(range(256)) * 400  # 102,400 bytes


def cdn(
    net,
    *,
    cut_after: int | None = None,
    fail_first: int = 0,
    status: int = 200,
    encoding: str | None = None,
    body: bytes = BODY,
):
    """Serve ``body`` on scontent.cdninstagram.com; optionally cut, fail or compress the answers.

    ``encoding`` compresses the body as a server ignoring ``Accept-Encoding: identity`` would.
    """
    calls = {"n": 0, "accept_encoding": []}
    compress = {
        None: bytes,
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "raw deflate": _raw_deflate,
        "br": lambda b: b"\x0b" + b,
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        calls["n"] += 1
        calls["accept_encoding"].append(request.headers.get("Accept-Encoding"))
        if status != 200:
            return web.Response(status=status)
        if calls["n"] <= fail_first:
            return web.Response(status=503)
        headers = {"Content-Encoding": encoding.split()[-1]} if encoding else None
        data = compress[encoding](body)
        return await net.send_bytes(request, data, headers=headers, abort_after=cut_after)

    net.add_host("scontent.cdninstagram.com", handler)
    return calls


def _raw_deflate(body: bytes) -> bytes:
    """Deflate without the zlib wrapper, as some servers send "Content-Encoding: deflate"."""
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(body) + packer.flush()


def fetcher_for(net, **kwargs) -> Fetcher:
    network = Network(proxy=net.proxy_url, ca_bundle=net.ca_path)
    return Fetcher(proxy=network.proxy, ssl_context=network.ssl_context(), backoff=0.01, **kwargs)


async def test_fetch_writes_complete_file_atomically(net, tmp_path):
    cdn(net)
    fetcher = fetcher_for(net)
    try:
        sizes = await asyncio.gather(
            *(
                fetcher.fetch(f"https://scontent.cdninstagram.com/v/{i}.jpg", tmp_path / f"{i}.jpg")
                for i in range(6)
            )
        )
    finally:
        await fetcher.aclose()
    assert sizes == [len(BODY)] * 6
    assert all((tmp_path / f"{i}.jpg").read_bytes() == BODY for i in range(6))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.jpg" for i in range(6)]


async def test_one_client_reuses_its_connection(net, tmp_path):
    cdn(net)
    fetcher = fetcher_for(net)
    try:
        for i in range(5):
            await fetcher.fetch(f"https://scontent.cdninstagram.com/v/{i}.jpg", tmp_path / f"{i}.jpg")
    finally:
        await fetcher.aclose()
    assert net.count("scontent.cdninstagram.com") == 5
    assert len(net.connects) == 1  # keep-alive: no new TLS connection per file


async def test_cut_download_leaves_no_file(net, tmp_path):
    calls = cdn(net, cut_after=50_000)
    fetcher = fetcher_for(net, retries=1)
    try:
        with pytest.raises(Transient):
            await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert list(tmp_path.iterdir()) == []  # neither a final nor a temporary file
    assert calls["n"] == 2  # retried once


async def test_transient_errors_are_retried(net, tmp_path):
    calls = cdn(net, fail_first=2)
    fetcher = fetcher_for(net, retries=3)
    try:
        size = await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert size == len(BODY) and calls["n"] == 3


async def test_forbidden_media_is_not_retried(net, tmp_path):
    calls = cdn(net, status=403)
    fetcher = fetcher_for(net)
    try:
        with pytest.raises(MediaGone):
            await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert calls["n"] == 1 and list(tmp_path.iterdir()) == []


async def test_untrusted_certificate_is_refused(net, tmp_path, monkeypatch):
    """CA_BUNDLE adds trust; without it the fake's certificate is rejected (no silent -k)."""
    monkeypatch.delenv("SSL_CERT_FILE")
    cdn(net)
    fetcher = Fetcher(proxy=net.proxy_url, ssl_context=Network().ssl_context(), retries=0)
    try:
        with pytest.raises(Transient):
            await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
async def test_a_compressed_answer_is_stored_decoded(net, tmp_path, encoding):
    calls = cdn(net, encoding=encoding)
    fetcher = fetcher_for(net)
    try:
        size = await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert calls["accept_encoding"] == ["identity"]  # we asked for the file as is
    assert (tmp_path / "1.jpg").read_bytes() == BODY and size == len(BODY)
    assert [p.name for p in tmp_path.iterdir()] == ["1.jpg"]


async def test_an_undecodable_encoding_is_refused_and_nothing_stored(net, tmp_path):
    calls = cdn(net, encoding="br")
    fetcher = fetcher_for(net)
    try:
        with pytest.raises(DownloadError, match=r"compressed \(br\), which cannot be decoded") as caught:
            await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert not isinstance(caught.value, Transient)  # asking again would get the same answer
    assert calls["n"] == 1 and list(tmp_path.iterdir()) == []


async def test_a_cut_compressed_answer_is_retried_not_stored(net, tmp_path):
    calls = cdn(net, encoding="gzip", body=bytes(range(256)) * 40_000 + b"tail", cut_after=20_000)
    fetcher = fetcher_for(net, retries=1)
    try:
        with pytest.raises(Transient, match=r"cut short|connection broke"):
            await fetcher.fetch("https://scontent.cdninstagram.com/v/1.jpg", tmp_path / "1.jpg")
    finally:
        await fetcher.aclose()
    assert calls["n"] == 2 and list(tmp_path.iterdir()) == []
