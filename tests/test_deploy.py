"""The systemd units in deploy/ pass `systemd-analyze verify` with nothing to say."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = ["archive-bot.service", "archive-bot-worker.service"]
INSTALL = "/opt/archive-bot"


def _installed(tmp_path: Path, name: str) -> Path:
    """The unit as installed: its /opt/archive-bot folder is a real one here (verify checks ExecStart)."""
    root = tmp_path / "opt-archive-bot"
    (root / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        python.symlink_to(sys.executable)
    (root / "bot.py").write_text("")
    unit = tmp_path / name
    unit.write_text((DEPLOY / name).read_text().replace(INSTALL, str(root)))
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies_cleanly(tmp_path, name):
    unit = _installed(tmp_path, name)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert (done.stdout + done.stderr).strip() == "" and done.returncode == 0


@pytest.mark.parametrize("name", UNITS)
def test_unit_has_what_a_small_box_needs(name):
    """Settings from a file, restarts on failure, time to save jobs, and a sandbox."""
    lines = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in (DEPLOY / name).read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert lines["EnvironmentFile"] == "/etc/archive-bot/env"
    assert lines["Restart"] == "on-failure"
    assert int(lines["TimeoutStopSec"]) >= 30  # jobs save within 7 s; closing takes a few more
    assert lines["NoNewPrivileges"] == lines["PrivateTmp"] == "yes"
    assert lines["ProtectSystem"] == "strict"
    assert (
        lines["ReadWritePaths"] == "/var/lib/archive-bot"
        and lines["Environment"] == "DATA_DIR=/var/lib/archive-bot"
    )
    assert lines["User"] == "archive-bot"


def test_a_broken_unit_is_reported(tmp_path):
    """The verify test can fail: a typo in a directive is output."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = _installed(tmp_path, UNITS[0])
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=on-failur"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert "on-failur" in done.stdout + done.stderr
