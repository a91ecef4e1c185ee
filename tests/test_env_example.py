""".env.example names every setting, with its real default, and the README's table does too."""

from __future__ import annotations

import re
from pathlib import Path

from config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$")


def example_lines() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {m[1]: m[2] for m in map(LINE.match, lines) if m}


def test_every_setting_is_in_the_example_and_the_readme():
    names = {name.upper() for name in Settings.model_fields}
    assert set(example_lines()) == names
    table = (ROOT / "README.md").read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    assert {name for name in names if f"| `{name}`" not in table and f", `{name}`" not in table} == set()


def test_the_example_loads_and_its_defaults_are_the_real_ones(tmp_path, monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    env = tmp_path / "env"
    env.write_text("".join(f"{name}={value}\n" for name, value in example_lines().items()))
    settings = load_settings(str(env))  # every example value is valid
    # Settings without a default (None, or an empty list or dict) show an example instead.
    fields = Settings.model_fields.items()
    shown = {name: f.default for name, f in fields if f.default is not None and f.default_factory is None}
    wrong = {name: getattr(settings, name) for name in shown if getattr(settings, name) != shown[name]}
    assert wrong == {}


def test_licence_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the archive-bot authors" in text
