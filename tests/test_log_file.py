"""LOG_FILE: the real bot logs to a file that logrotate moves away while it runs."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN
from tests.process import BOT, BotProcess, bot_env

LOGROTATE = Path(__file__).resolve().parent.parent / "deploy" / "logrotate"


def _wait_for_line(path: Path, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}")


def _rotate(tmp_path: Path, logs: Path) -> None:
    """Run the real logrotate with deploy/logrotate, pointed at ``logs`` (as the user running the tests)."""
    config = LOGROTATE.read_text().replace("/var/log/archive-bot", str(logs))
    config = "\n".join(line for line in config.splitlines() if not line.strip().startswith("su "))
    config = config.replace("create 0640 archive-bot archive-bot", "create 0640")
    (tmp_path / "logrotate.conf").write_text(config)
    subprocess.run(
        ["logrotate", "-f", "-s", str(tmp_path / "logrotate.state"), str(tmp_path / "logrotate.conf")],
        check=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_rotated_while_running_the_bot_writes_a_new_file(tmp_path):
    logs = tmp_path / "logs"
    log_file = logs / "bot.log"
    with FakeTelegram(TOKEN) as telegram:
        env = bot_env(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=telegram.url,
            ALLOWED_USER_IDS=str(OWNER),
            LOG_FILE=str(log_file),
            LOG_LEVEL="DEBUG",
            WEB_PORT="0",
        )
        bot = BotProcess(tmp_path, env)
        try:
            _wait_for_line(log_file, "bot @")
            _rotate(tmp_path, logs)
            # Lines after the rotation go to the new file (start-up may still be writing some).
            assert (logs / "bot.log.1").exists() and "ready" not in log_file.read_text()
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/help")
            telegram.wait_for("sendMessage", chat_id=OWNER, after=mark, timeout=30)
            bot.signal(signal.SIGTERM)
        finally:
            code = bot.wait(timeout=60)
    assert code == 0
    before, after = (logs / "bot.log.1").read_text(), log_file.read_text()
    assert "ready" in before and "shutting down" not in before
    assert "shutting down: saving running jobs" in after and "closed the database" in after
    for text in (before, after):
        assert TOKEN not in text and "TEST-TOKEN" not in text
        # one line per event: every line starts with its date
        assert all(line[:2] == "20" for line in text.splitlines())
    assert "ready" not in bot.output and "shutting down" not in bot.output  # not on stderr too


def test_unwritable_log_file_is_one_sentence(tmp_path):
    (tmp_path / "logs").mkdir()
    done = subprocess.run(
        [sys.executable, str(BOT), "download", "alice"],
        cwd=tmp_path,
        env=bot_env(tmp_path, LOG_FILE=str(tmp_path / "logs")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"LOG_FILE {tmp_path}/logs cannot be written (Is a directory)."
    ]
    assert not (tmp_path / "data").exists()
