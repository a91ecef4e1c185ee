"""What the user types becomes a validated (platform, username) or a clear refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from downloader.errors import InvalidInput
from downloader.paths import UnsafePath, downloads_root, inside, phase_dir, sanitize_component
from downloader.targets import Target, parse_target


@pytest.mark.parametrize(
    ("text", "platform", "expected"),
    [
        ("alice", None, Target("instagram", "alice")),
        ("@Alice.B_1", None, Target("instagram", "alice.b_1")),
        ("https://www.instagram.com/alice/", None, Target("instagram", "alice")),
        ("https://instagram.com/alice?igsh=abc&hl=en", None, Target("instagram", "alice")),
        ("instagram.com/alice", None, Target("instagram", "alice")),
        ("https://www.tiktok.com/@bob.x?lang=en", None, Target("tiktok", "bob.x")),
        ("bob_x", "tiktok", Target("tiktok", "bob_x")),
        ("@bob_x", "TikTok", Target("tiktok", "bob_x")),
    ],
)
def test_accepted(text, platform, expected):
    assert parse_target(text, platform) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "../../etc/passwd",
        "a" * 31,
        "alice;rm -rf /",
        "al ice",
        "$(id)",
        "alice/../bob",
        "ａｌｉｃｅ",
        "ali\u0000ce",
        ".alice",
        "alice.",
        "al..ice",
        "https://evil.com/alice",
        "https://www.instagram.com/p/Cxyz/",
        "https://www.instagram.com/",
        "ftp://instagram.com/a",
        "https://www.tiktok.com/bob",
        "x" * 500,
    ],
)
def test_refused_with_a_reason(text):
    with pytest.raises(InvalidInput) as caught:
        parse_target(text)
    assert caught.value.sentence and len(caught.value.sentence) < 200


def test_platform_mismatch_and_unknown_platform():
    with pytest.raises(InvalidInput, match="tiktok profile, not instagram"):
        parse_target("https://www.tiktok.com/@bob", "instagram")
    with pytest.raises(InvalidInput, match="Unknown platform"):
        parse_target("bob", "youtube")
    with pytest.raises(InvalidInput):
        parse_target("b", "tiktok")  # TikTok names have at least 2 characters


def test_paths_stay_inside_data_dir(tmp_path):
    folder = phase_dir(tmp_path, "instagram", "alice", "highlights", "../../etc <b>&😀")
    assert folder.is_relative_to(tmp_path.resolve() / "downloads" / "instagram" / "alice")
    assert "/" not in sanitize_component("a/b\\c") and sanitize_component("..") == "untitled"
    with pytest.raises(UnsafePath):
        inside(tmp_path.resolve(), "..", "x")


def test_downloads_root_is_kept_per_absolute_path_and_follows_the_working_folder(tmp_path, monkeypatch):
    """The resolved root is kept for an absolute DATA_DIR (one lstat per component per file was a
    visible share of a download's CPU); a relative one is resolved against the working folder."""
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        (folder / "data").mkdir(parents=True)
    expected = first.resolve() / "data" / "downloads"
    assert downloads_root(first / "data") == downloads_root(first / "data") == expected
    monkeypatch.chdir(first)
    assert downloads_root(Path("data")) == expected
    monkeypatch.chdir(second)
    assert downloads_root(Path("data")) == second.resolve() / "data" / "downloads"
    # A link inside the archive that leads out is still refused for every file.
    root = downloads_root(first / "data")
    root.mkdir()
    (root / "instagram").symlink_to(second, target_is_directory=True)
    with pytest.raises(UnsafePath):
        phase_dir(first / "data", "instagram", "alice", "posts")
