"""`bot.py --help` loads no library and the terminal commands no Telegram: each command imports what it needs.

Checked by the modules a real `python -X importtime bot.py ...` loads, not by a clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import BOT

ROOT = BOT.parent
# Libraries a help text does not need (each costs tens to hundreds of milliseconds to import).
HEAVY = {
    "telegram",
    "instaloader",
    "yt_dlp",
    "aiohttp",
    "tortoise",
    "pydantic",
    "pydantic_settings",
    "httpx",
    "tqdm",
    "taskiq",
    "curl_cffi",
    "jinja2",
}
OURS = {"config", "cli", "db", "downloader", "handlers", "web", "services", "wiring", "logsetup", "ops"}


def run_bot_py(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the real bot.py with -X importtime; the result and the top-level modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    env |= {"DATA_DIR": str(tmp_path / "data"), "TELEGRAM_BOT_TOKEN": "123456:TEST-TOKEN"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(BOT), *args],
        cwd=tmp_path,  # no .env of the developer's
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {line.split("|")[-1].strip().split(".")[0] for line in lines[1:]}  # after the header line
    done.stderr = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))
    return done, names


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--help"], "usage: bot.py"),
        (["download", "--help"], "usage: bot.py download"),
        (["--version"], "archive-bot "),
    ],
)
def test_help_and_version_load_no_library(tmp_path, args, shown):
    done, loaded = run_bot_py(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout and done.stderr == ""
    assert "argparse" in loaded  # the import list is read at all
    assert loaded & HEAVY == set()
    assert loaded & OURS == {"ops"}  # its sub-command parsers; its commands load when they run
    assert not (tmp_path / "data").exists()


def test_download_help_lists_its_options(tmp_path):
    done, _ = run_bot_py(tmp_path, "download", "--help")
    for option in ("--platform", "--wait", "--only", "target"):
        assert option in done.stdout
    assert "(default: 1; the bot itself waits much longer)" in " ".join(done.stdout.split())


def test_terminal_download_loads_no_telegram(tmp_path):
    """The download's own libraries load; the bot's (Telegram, the web gallery, the queue) and
    TikTok's (yt-dlp) do not."""
    done, loaded = run_bot_py(tmp_path, "download", "b@d!!")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "'b@d!!' is not a valid instagram name (letters, digits, '.' and '_', at most 30)."
    )
    assert {"pydantic", "tortoise", "instaloader", "cli", "services"} <= loaded
    assert loaded & {"telegram", "handlers", "web", "wiring", "taskiq", "jinja2"} == set()
    assert loaded & {"yt_dlp", "curl_cffi"} == set()  # loaded when TikTok is first read
    assert not (tmp_path / "data").exists()  # bad input changes nothing


def test_only_bot_py_builds_the_application():
    """wiring.py builds the Application for bot.py: no other module of the bot imports it."""
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] not in {"tests", "bench", ".venv", "data"}
        and ("from wiring import" in path.read_text() or "import wiring" in path.read_text())
    ]
    assert importers == ["bot.py"]
