"""A small local outbox of deliveries: sends under way and Telegram's answers not yet in the database.

One JSON file in DATA_DIR, replaced atomically (written, flushed to disk, renamed), so it
survives a crash or a restart; it exists only while it holds something. An entry is
written *before* a send ("sending") and changed to its final state once Telegram answered
("sent", "too_large", "skipped"); it leaves the file when the database has stored it. A
file in the outbox is never picked for sending, so a confirmation the database could not
take yet is never sent again. An entry still "sending" when the next pass of its chat
starts had no answer (the connection broke, or the bot died, mid-send): its outcome is
unknown and it becomes ``unknown_as`` instead of being sent again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from db import delivery_queries as dq
from db.models import MediaItem

log = logging.getLogger(__name__)
FILE_NAME = "delivery-outbox.json"
SENDING = "sending"


@dataclass
class Entry:
    """One file in one chat: a send under way, or Telegram's answer waiting for the database."""

    chat: int
    platform: str
    account: int
    media_id: str
    state: str  # "sending", or the state to store: sent | too_large | skipped | unconfirmed
    unknown_as: str  # what a send with no answer becomes (it is never repeated)
    sent_as: str | None = None
    file_id: str | None = None

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.chat, self.platform, self.media_id)


class Outbox:
    """The outbox file and its entries (one per chat and file)."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / FILE_NAME
        self._entries: dict[tuple[int, str, str], Entry] = _load(self.path)
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def held(self, chat: int, platform: str) -> set[str]:
        """Media ids of a chat that are in the outbox: never picked for sending."""
        return {e.media_id for e in self._entries.values() if (e.chat, e.platform) == (chat, platform)}

    def file_ids(self, platform: str) -> dict[tuple[str, str], str]:
        """(media id, sent as) -> file_id of uploads whose answer waits here for the database."""
        found = self._entries.values()
        return {(e.media_id, e.sent_as): e.file_id for e in found if e.platform == platform and e.file_id}

    def unanswered(self, chat: int, account: int) -> list[Entry]:
        """Sends of an account in a chat that got no answer (only call between passes of that chat)."""
        found = self._entries.values()
        return [e for e in found if e.state == SENDING and (e.chat, e.account) == (chat, account)]

    async def put(self, entries: list[Entry]) -> None:
        """Add or replace entries, durably."""
        if entries:
            async with self._lock:
                self._entries.update((e.key, e) for e in entries)
                await self._write()

    async def forget(self, keys: set[tuple[int, str, str]]) -> None:
        """Remove the entries of these (chat, platform, media id) keys, durably."""
        await self.drop([self._entries[key] for key in keys if key in self._entries])

    async def drop(self, entries: list[Entry]) -> None:
        """Remove entries (only those not replaced meanwhile), durably."""
        async with self._lock:
            gone = [e for e in entries if self._entries.get(e.key) is e]
            for entry in gone:
                del self._entries[entry.key]
            if gone:
                await self._write()

    async def store(self) -> int:
        """Write every answered entry to the database and drop it; how many were stored.

        Raises whatever the database raises; what was not stored stays for the next call."""
        ready = [e for e in list(self._entries.values()) if e.state != SENDING]
        for entry in ready:
            if entry.file_id and entry.sent_as:
                await dq.remember_file_id(entry.platform, entry.media_id, entry.sent_as, entry.file_id)
            await dq.settle(entry.chat, entry.platform, [entry.media_id], entry.state)
        await self.drop(ready)
        return len(ready)

    def journal(self, chat: int, platform: str, account: int) -> Journal:
        """What a Sender notes its sends in, for one account in one chat."""
        return Journal(self, chat, platform, account)

    async def _write(self) -> None:
        data = [asdict(e) for e in self._entries.values()]
        await asyncio.to_thread(_replace, self.path, data)


class Journal:
    """Notes one chat's sends of one account in the outbox: before sending, and Telegram's answer."""

    def __init__(self, outbox: Outbox, chat: int, platform: str, account: int):
        self.outbox, self.chat, self.platform, self.account = outbox, chat, platform, account

    def _entry(self, row: MediaItem, state: str, unknown_as: str, **extra) -> Entry:
        return Entry(self.chat, self.platform, self.account, row.media_id, state, unknown_as, **extra)

    async def begin(self, rows: list[MediaItem], unknown_as: str) -> None:
        """A send is about to start: without an answer these files become ``unknown_as``."""
        await self.outbox.put([self._entry(row, SENDING, unknown_as) for row in rows])

    async def answered(self, rows: list[MediaItem], state: str, file_ids: dict[str, tuple[str, str]]) -> None:
        """Telegram answered (``state``: sent, too_large, skipped); ``file_ids``: media id -> (as, id)."""
        entries = []
        for row in rows:
            sent_as, file_id = file_ids.get(row.media_id, (None, None))
            entries.append(self._entry(row, state, state, sent_as=sent_as, file_id=file_id))
        await self.outbox.put(entries)

    def file_ids(self) -> dict[tuple[str, str], str]:
        """File ids Telegram gave that the database may not have yet (any chat)."""
        return self.outbox.file_ids(self.platform)

    async def forget(self, rows: list[MediaItem]) -> None:
        """Telegram refused, or the request never left: nothing was sent."""
        await self.outbox.forget({(self.chat, self.platform, row.media_id) for row in rows})


def _load(path: Path) -> dict[tuple[int, str, str], Entry]:
    """The entries of the outbox file; a damaged file is kept aside (and said so), never lost."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        entries = [Entry(**row) for row in rows]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as exc:
        aside = path.with_suffix(".damaged")
        log.error("delivery outbox %s cannot be read (%s); kept as %s", path, exc, aside.name)
        os.replace(path, aside)
        return {}
    if entries:
        log.info("delivery outbox: %d file(s) from before the restart", len(entries))
    return {e.key: e for e in entries}


def _replace(path: Path, data: list[dict]) -> None:
    """Write the outbox atomically (or remove it when empty), flushed to disk before it counts."""
    if not data:
        path.unlink(missing_ok=True)
        return
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform allows opening a folder)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
