"""The real `python bot.py` as a child process, configured like a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot.py"


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment (no inherited bot settings) with DATA_DIR in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "INSTAGRAM_"))}
    env |= {"DATA_DIR": str(tmp_path / "data"), "INSTAGRAM_REQUEST_DELAY": "0", "PYTHONUNBUFFERED": "1"}
    return env | extra


class BotProcess:
    """Start, signal and collect one bot process; output goes to a log file."""

    def __init__(self, tmp_path: Path, env: dict[str, str], name: str = "bot"):
        self.log_path = tmp_path / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            [sys.executable, str(BOT)], cwd=tmp_path, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def signal(self, sig: int) -> None:
        """Send a signal (SIGTERM, SIGINT, SIGKILL)."""
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the exit; kill on timeout; return the exit code."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code

    def kill(self) -> None:
        """kill -9: no chance to save anything."""
        self.signal(signal.SIGKILL)
        self.wait()

    def wait_for_output(self, text: str, count: int = 1, timeout: float = 30) -> str:
        """Wait until ``text`` appears ``count`` times in the output (or the process ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            output = self.output
            if output.count(text) >= count:
                return output
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen {count} times in the bot's output:\n{self.output[-3000:]}")

    @property
    def output(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text()


def answer_then_stop(tmp_path: Path, env: dict[str, str], telegram, text: str, stop: int = signal.SIGTERM):
    """Start the bot, send ``text`` as the first allowed user, then ``stop`` it.

    Returns (the bot's reply as sent, exit code, everything it logged)."""
    owner = int(env["ALLOWED_USER_IDS"].split(",")[0])
    mark = len(telegram.calls)
    bot = BotProcess(tmp_path, env, name=f"bot-{mark}")
    try:
        telegram.wait_for("setMyCommands", after=mark, timeout=30)
        mark = len(telegram.calls)
        telegram.send_message(owner, text)
        reply = telegram.wait_for("sendMessage", chat_id=owner, after=mark, timeout=30)
        bot.signal(stop)
    finally:
        code = bot.wait(timeout=30)
    return reply.params["text"], code, bot.output
