"""The chats' Telegram pace, kept over a restart in a small file under DATA_DIR.

Telegram keeps counting a chat's recent messages when the bot restarts; a new process
that assumed a full allowance would be answered 429 for its first messages. The file
holds, per chat, the tokens left and when; a missing or damaged file means full ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path


def save(path: Path | None, tokens: dict[int, float]) -> None:
    """Write chat -> tokens left now (only chats below a full allowance matter)."""
    if path is None:
        return
    data = {"saved": time.time(), "tokens": {str(chat): round(t, 3) for chat, t in tokens.items()}}
    temp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(OSError):  # no pace file: the next start may meet one 429, retried
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # chat ids are private
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(temp, path)


def load(path: Path | None, rate: float) -> dict[int, float]:
    """Chat -> tokens now: those saved, refilled for the time the bot was down."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
        elapsed = max(0.0, time.time() - float(data["saved"]))
        return {int(chat): float(t) + elapsed * rate for chat, t in data["tokens"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
