"""Partly downloaded files kept across a Pause or a crash, and what proves they may be continued.

A transfer to ``<name>`` writes ``.<name>.part`` beside it (yt-dlp writes its own
``.<name>.part.part`` and renames it to ``.<name>.part`` when complete). Beside it,
``.<name>.resume.part`` records the file's total length and the validators the
server sent with it (ETag, Last-Modified). A partial file is continued only when
that record exists and the server's answer to a ``Range`` request matches it; any
other leftover ``*.part`` file is garbage. Every such name ends in ``.part``, so
whatever cleans temporary files by that suffix also cleans these.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from downloader.paths import RESUME_SUFFIX, TEMP_SUFFIX


@dataclass(frozen=True)
class Validators:
    """What identifies one version of a file on the server."""

    length: int
    etag: str | None = None
    last_modified: str | None = None

    def checkable(self) -> bool:
        """Whether a later answer can be proven to be the same file (a validator was sent)."""
        return bool(self.etag or self.last_modified)

    def if_range(self) -> str | None:
        """The ``If-Range`` value: a strong ETag, else the Last-Modified date."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def partial_for(final: Path) -> Path:
    """Where the transfer to ``final`` writes (same folder: the rename is atomic)."""
    return final.with_name(f".{final.name}{TEMP_SUFFIX}")


def final_for(partial: Path) -> Path:
    """The final name a partial file stands for (the inverse of partial_for; a name not shaped
    like one stands for itself)."""
    name = partial.name
    if name.startswith(".") and name.endswith(TEMP_SUFFIX) and len(name) > len(TEMP_SUFFIX) + 1:
        return partial.with_name(name[1 : -len(TEMP_SUFFIX)])
    return partial


def record_for(final: Path) -> Path:
    """The validators record of ``final``'s partial file."""
    return final.with_name(f".{final.name}{RESUME_SUFFIX}")


def save(final: Path, validators: Validators) -> None:
    """Record ``final``'s validators (before its first byte is written)."""
    record = record_for(final)
    temp = record.with_name(f"{record.name[: -len(TEMP_SUFFIX)]}.new{TEMP_SUFFIX}")  # garbage if left
    temp.write_text(json.dumps(asdict(validators)))
    os.replace(temp, record)


def load(final: Path) -> Validators | None:
    """The recorded validators of ``final``'s partial file, or None (none, or unreadable)."""
    try:
        data = json.loads(record_for(final).read_text())
        return Validators(int(data["length"]), data.get("etag"), data.get("last_modified"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def discard(final: Path) -> None:
    """Remove ``final``'s partial files and their record."""
    partial = partial_for(final)
    for path in (partial, partial.with_name(partial.name + TEMP_SUFFIX), record_for(final)):
        path.unlink(missing_ok=True)


def resume_point(final: Path) -> tuple[int, Validators | None]:
    """Where ``final``'s partial file can continue (0: from the start, nothing kept)."""
    known = load(final)
    partial = partial_for(final)
    size = partial.stat().st_size if partial.is_file() else 0
    if known is None or not known.checkable() or not 0 < size < known.length:
        discard(final)
        return 0, None
    return size, known


def worth_remembering(validators: Validators | None, smallest: int = 0) -> bool:
    """Whether a partial file of this answer could be continued: validators that prove it is
    the same file, and at least ``smallest`` bytes (a smaller one simply starts over)."""
    return validators is not None and validators.checkable() and validators.length >= smallest


def remember(final: Path, validators: Validators | None, smallest: int = 0) -> None:
    """Record what proves a later partial answer continues this file (nothing if nothing can,
    or for a file under ``smallest`` bytes: not worth it, it starts over)."""
    if worth_remembering(validators, smallest):
        save(final, validators)
    else:
        record_for(final).unlink(missing_ok=True)


def keep_if_resumable(final: Path) -> None:
    """After a stop: keep the partial file only if it can be continued."""
    if load(final) is None:
        discard(final)
