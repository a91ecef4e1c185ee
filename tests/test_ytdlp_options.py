"""Our lean YoutubeDL: YTDLP_OPTIONS still work, one archive question per video (real yt-dlp, fake TikTok)."""

from __future__ import annotations

from collections import Counter

import pytest

from db.models import MediaItem
from downloader.errors import DownloadError
from downloader.events import summary_line
from downloader.sources.tiktok import TikTokSource
from tests.fakes.tiktok import FakeTikTok
from tests.harness import make_settings, run_download, services_for

TEST_OPTIONS = {"retries": 0, "extractor_retries": 0, "socket_timeout": 5}


@pytest.fixture
def fake(net):
    return FakeTikTok(net, page_size=4)


async def test_print_to_file_still_prints_each_video(fake, net, data_dir, tmp_path):
    account = fake.add_account("printer.one", videos=3)
    printed = tmp_path / "printed.txt"
    # yt-dlp's --print-to-file: one line per video after the download, rendered by yt-dlp.
    options = TEST_OPTIONS | {"print_to_file": {"after_move": [("%(id)s %(formats_table)s", str(printed))]}}
    services = await services_for(make_settings(data_dir, net=net, ytdlp_options=options))
    try:
        result = await run_download(services, "tiktok", "printer.one")
        archived = await MediaItem.filter(platform="tiktok").count()
    finally:
        await services.close()
    assert summary_line(result) == "Completed: 3 videos"
    lines = [line for line in printed.read_text().splitlines() if line.split(" ")[0].isdigit()]
    assert sorted(line.split(" ")[0] for line in lines) == sorted(post.id for post in account.videos)
    assert printed.read_text().count("EXT") == 3  # yt-dlp rendered each video's formats table
    assert archived == 3


async def test_verbose_names_yt_dlp_in_the_log(fake, net, data_dir, caplog):
    fake.add_account("talker.one", videos=1)
    options = TEST_OPTIONS | {"verbose": True}
    services = await services_for(make_settings(data_dir, net=net, ytdlp_options=options))
    try:
        with caplog.at_level("DEBUG", logger="downloader.sources.ytdlp"):
            result = await run_download(services, "tiktok", "talker.one")
    finally:
        await services.close()
    assert summary_line(result) == "Completed: 1 video"
    assert "yt-dlp version" in caplog.text  # the debug header auto_init would have printed


class CountingArchive:
    """An archive that has ``held`` and counts every question."""

    def __init__(self, held: set[str]):
        self.held = held
        self.asked: Counter[str] = Counter()

    def __contains__(self, archive_id: object) -> bool:
        self.asked[str(archive_id)] += 1
        return archive_id in self.held


def test_the_archive_is_asked_once_per_download_and_again_next_time(fake, net, tmp_path):
    account = fake.add_account("asked.once", videos=2)
    sizes = {post.id: post.size for post in account.videos}
    archive = CountingArchive(held=set())
    source = TikTokSource(proxy=net.proxy_url, ca_file=net.ca_path, test_mode=True, archive=archive)
    try:
        listed = source.pages(source.resolve("asked.once"), "videos", None)
        item = next(item for page in listed for item in page.items)
        key = f"tiktok {item.media_id}"
        first, second = tmp_path / ".first.mp4.1a2b.part", tmp_path / ".second.mp4.3c4d.part"
        item.download(first, lambda done, total: None)
        assert archive.asked == Counter({key: 1})  # yt-dlp asks three times per video
        archive.held.add(key)  # another job archived it meanwhile
        with pytest.raises(DownloadError, match="already in the archive"):
            item.download(second, lambda done, total: None)
    finally:
        source.close()
    # The second download asked afresh (no stale answer), then the source to say why: 1 + 1 + 1.
    assert archive.asked == Counter({key: 3})
    assert first.stat().st_size == sizes[item.media_id]
    assert not second.exists()
