"""A lost database costs no downloads: files in the archive's layout are registered, not
fetched, and `bot.py reindex` rebuilds the index from the folders without a request."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.tiktok import FakeTikTok
from tests.harness import BOT, media_on_disk, process_env

ROW_FIELDS = "platform, media_id, kind, path, size, group_id, group_size, caption, link, taken_at"


def bot(tmp_path: Path, net, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run `python bot.py ARGS` with settings pointing at the fakes."""
    return subprocess.run(
        [sys.executable, str(BOT), *args],
        cwd=tmp_path,
        env=process_env(tmp_path / "data", net) | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "archive.sqlite3"


def lose_database(tmp_path: Path) -> None:
    """What a user sees as "the database is gone": the file and its WAL companions deleted."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database(tmp_path)}{suffix}").unlink(missing_ok=True)


def rows(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database(tmp_path)) as conn:
        return sorted(conn.execute(sql).fetchall(), key=repr)


def media_rows(tmp_path: Path) -> list[tuple]:
    return rows(tmp_path, f"SELECT {ROW_FIELDS} FROM media_items")


def membership(tmp_path: Path) -> list[tuple]:
    return rows(
        tmp_path,
        "SELECT h.highlight_id, h.title, h.folder, i.media_id FROM highlight_items i "
        "JOIN highlights h ON h.id = i.highlight_id",
    )


def inodes(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Every media file's inode and modification time: a file written again changes them."""
    root = data_dir / "downloads"
    return {
        name: ((root / name).stat().st_ino, (root / name).stat().st_mtime_ns)
        for name in media_on_disk(data_dir)
    }


@pytest.fixture
def alice(net, tmp_path):
    """alice archived in full (logged in: posts, stories and highlights), the database then lost."""
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=14))
    session = write_session_file(tmp_path / "session-archivebot", fake.login())
    env = {"INSTAGRAM_SESSION_FILE": str(session)}
    first = bot(tmp_path, net, "download", "alice", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == "Completed: 14 posts (20 files) + 8 stories/highlights"
    fake.env, fake.cdn_first = env, fake.cdn_count() - fake.cover_count()  # media files, not stills
    fake.rows, fake.members = media_rows(tmp_path), membership(tmp_path)
    fake.files, fake.inodes = media_on_disk(tmp_path / "data"), inodes(tmp_path / "data")
    lose_database(tmp_path)
    net.clear()
    return fake


def test_download_after_a_lost_database_fetches_no_media(tmp_path, net, alice):
    again = bot(tmp_path, net, "download", "alice", **alice.env)
    assert again.returncode == 0, again.stderr
    assert alice.cdn_first == 28  # 20 post files + 2 stories + 6 highlight items
    assert alice.cdn_count() == 0  # only listing requests
    assert again.stdout.strip().splitlines()[-1] == "Completed: 0 posts + 0 stories/highlights"
    assert media_rows(tmp_path) == alice.rows
    assert membership(tmp_path) == alice.members
    assert media_on_disk(tmp_path / "data") == alice.files
    assert inodes(tmp_path / "data") == alice.inodes  # nothing written over
    net.clear()
    third = bot(tmp_path, net, "download", "alice", **alice.env)
    assert third.returncode == 0 and alice.cdn_count() == 0


def test_reindex_rebuilds_the_index_without_a_request(tmp_path, net, alice):
    done = bot(tmp_path, net, "reindex")
    assert done.returncode == 0, done.stderr
    assert net.count() == 0 and net.connects == []
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "Reindexed 28 files of 1 account; 0 requests."
    assert lines[1] == "28 added to the index, 0 already in it."
    assert "Skipped" not in done.stdout and "Traceback" not in done.stderr
    assert media_rows(tmp_path) == alice.rows
    assert membership(tmp_path) == alice.members
    again = bot(tmp_path, net, "reindex")  # idempotent: the same rows, nothing added
    assert again.stdout.strip().splitlines()[:2] == [lines[0], "0 added to the index, 28 already in it."]
    assert media_rows(tmp_path) == alice.rows and membership(tmp_path) == alice.members
    assert net.count() == 0
    sync = bot(tmp_path, net, "download", "alice", **alice.env)
    assert sync.returncode == 0, sync.stderr
    assert alice.cdn_count() == 0
    assert sync.stdout.strip().splitlines()[-1] == "Completed: 0 posts + 0 stories/highlights"
    assert inodes(tmp_path / "data") == alice.inodes


def test_unfinished_or_empty_files_are_fetched_again(tmp_path, net, alice):
    posts = tmp_path / "data" / "downloads" / "instagram" / "alice" / "posts"
    first, second = sorted(p for p in posts.iterdir() if p.suffix == ".jpg")[:2]
    first.write_bytes(b"")  # a zero-byte file under the final name
    second.rename(posts / f".{second.name}.0a1b2c3d.part")  # only a temporary file is left
    indexed = bot(tmp_path, net, "reindex")
    assert f"Skipped {first.relative_to(tmp_path / 'data')}: an empty file" in indexed.stdout
    assert "an unfinished download" in indexed.stdout
    assert indexed.stdout.splitlines()[0] == "Reindexed 26 files of 1 account; 0 requests."  # 28 less the two
    again = bot(tmp_path, net, "download", "alice", **alice.env)
    assert again.returncode == 0, again.stderr
    assert alice.cdn_count() == 2  # exactly the two, nothing else
    assert first.stat().st_size == alice.files[str(first.relative_to(tmp_path / "data" / "downloads"))]
    assert second.stat().st_size == alice.files[str(second.relative_to(tmp_path / "data" / "downloads"))]
    assert media_rows(tmp_path) == alice.rows


def test_reindex_names_what_it_cannot_parse_and_changes_nothing_for_it(tmp_path, net, alice):
    stray = tmp_path / "data" / "downloads" / "instagram" / "alice" / "posts" / "holiday.jpg"
    stray.write_bytes(b"x" * 10)
    done = bot(tmp_path, net, "reindex")
    assert done.returncode == 0
    assert "Skipped downloads/instagram/alice/posts/holiday.jpg: not an archive file name" in done.stdout
    assert media_rows(tmp_path) == alice.rows
    assert stray.read_bytes() == b"x" * 10


def test_reindex_without_an_archive_folder_says_so(tmp_path, net):
    done = bot(tmp_path, net, "reindex")
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Nothing to reindex: there is no archive folder at ")
    assert "Traceback" not in done.stderr and net.count() == 0


@pytest.mark.parametrize("reindex_first", [False, True])
def test_tiktok_videos_and_photo_posts_after_a_lost_database(tmp_path, net, reindex_first):
    fake = FakeTikTok(net, page_size=3)
    fake.add_account("bob.dance", videos=4, photos=(1,), slides=3)
    first = bot(tmp_path, net, "download", "https://www.tiktok.com/@bob.dance")
    assert first.returncode == 0, first.stderr
    assert fake.count_images() == 3 and fake.count_sounds() == 1 and fake.count_media() == 4
    before, files, nodes = media_rows(tmp_path), media_on_disk(tmp_path / "data"), inodes(tmp_path / "data")
    lose_database(tmp_path)
    net.clear()
    if reindex_first:
        done = bot(tmp_path, net, "reindex")
        assert done.stdout.splitlines()[0] == "Reindexed 8 files of 1 account; 0 requests."
        assert net.count() == 0 and net.connects == []
        assert media_rows(tmp_path) == before
    again = bot(tmp_path, net, "download", "https://www.tiktok.com/@bob.dance")
    assert again.returncode == 0, again.stderr
    assert (fake.count_media(), fake.count_images(), fake.count_sounds(), fake.count_video_pages()) == (
        0,
        0,
        0,
        0,
    )
    assert media_rows(tmp_path) == before
    assert media_on_disk(tmp_path / "data") == files and inodes(tmp_path / "data") == nodes


async def test_a_file_counts_only_when_plausible_and_each_folder_is_listed_once(tmp_path):
    from downloader.present import OnDisk

    folder = tmp_path / "posts"
    folder.mkdir()
    whole, empty, gone = (folder / f"2025-06-15_12-00-00_{n}.jpg" for n in ("1", "2", "3"))
    whole.write_bytes(b"x" * 10)
    empty.write_bytes(b"")
    (folder / "2025-06-15_12-00-00_4.jpg").mkdir()
    on_disk = OnDisk()
    assert await on_disk.size_of(whole) == 10
    assert await on_disk.size_of(whole, 10) == 10
    assert await on_disk.size_of(whole, 11) is None  # the listing announced another size
    assert await on_disk.size_of(empty) is None
    assert await on_disk.size_of(gone) is None
    assert await on_disk.size_of(folder / "2025-06-15_12-00-00_4.jpg") is None  # not a file
    assert await on_disk.size_of(tmp_path / "missing" / "2025-06-15_12-00-00_5.jpg") is None
    gone.write_bytes(b"y" * 5)  # appears after the folder was listed: not looked at again
    assert await on_disk.size_of(gone) is None
    assert await OnDisk().size_of(gone) == 5
