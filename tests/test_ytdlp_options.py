"""YTDLP_OPTIONS still work with our lean YoutubeDL (real yt-dlp, fake TikTok)."""

from __future__ import annotations

import pytest

from db.models import MediaItem
from downloader.events import summary_line
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
