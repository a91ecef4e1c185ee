"""The code stays as the house style says: ruff-clean and ruff-formatted, so CI enforces it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_ruff_finds_nothing():
    done = ruff("check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout[-3000:]


def test_every_file_is_formatted():
    done = ruff("format", "--no-cache", "--check", ".")
    assert done.returncode == 0, done.stdout[-3000:]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Our modules imported when ``path`` is imported (function-level imports are lazy: not counted)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            # "from package import module" needs the module, not a finished package
            whole = [node.module] if any(name not in known for name in submodules) else []
            names = whole + submodules
        else:
            continue
        found |= {name for name in names if name in known}
    return found


PACKAGES = {"handlers", "downloader", "db", "web", "ops"}


def import_graph() -> dict[str, set[str]]:
    """Our modules and the modules of ours each one imports when it is imported."""
    files = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] in PACKAGES]
    files += list(ROOT.glob("*.py"))
    modules = {module_name(p): p for p in files if "migrations" not in p.parts}
    return {name: top_level_imports(path, set(modules)) - {name} for name, path in modules.items()}


def test_front_ends_stand_on_the_downloader_not_on_each_other():
    """bot.py -> handlers, web -> downloader -> db; handlers and web never import each other."""
    forbidden = {"handlers": {"web"}, "web": {"handlers"}, "downloader": {"handlers", "web"}}
    forbidden["db"] = {"handlers", "web", "downloader"}
    # ops/ (backup, restore, doctor) runs beside the bot, from bot.py only: it never sends chat
    forbidden["ops"] = {"handlers", "web"}
    for layer in ("handlers", "web", "downloader", "db"):
        forbidden[layer] = forbidden.get(layer, set()) | {"ops"}
    wrong = [
        f"{name} imports {other}"
        for name, imports in import_graph().items()
        for other in imports
        if other.split(".")[0] in forbidden.get(name.split(".")[0], set())
    ]
    assert wrong == []
    for path in [*(ROOT / "downloader").rglob("*.py"), *(ROOT / "web").rglob("*.py")]:
        assert "import telegram" not in path.read_text() and "from telegram" not in path.read_text(), path


def test_no_import_cycles():
    graph = import_graph()
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join([*trail[trail.index(other) :], other]))
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert sorted(graph["bot"])  # the walk sees our imports at all
    assert cycles == []
