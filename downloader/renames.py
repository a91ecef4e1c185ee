"""An account renamed on its platform (same id, new name): its folder and rows follow, crash-safe.

The move is three steps: the intended move is recorded (an AccountRename row, "pending"),
the folder is renamed with one os.rename, then the rows (media paths, the account's name)
are updated in one transaction that also marks the move "done". A process killed anywhere
in between leaves a pending row that the next start finishes (finish_pending): the folder
is either still at the old name (renamed now) or already at the new one (rows updated now).
Nothing is downloaded again: the archive is keyed by media id, and the paths follow.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from tortoise.transactions import in_transaction

from db import queries
from db.models import Account, AccountRename, FailedItem, MediaItem, ProfileChange
from downloader.paths import downloads_root, inside

log = logging.getLogger(__name__)


def moved_sentence(old: str, new: str) -> str:
    """What the chat and the terminal say about a rename the archive followed."""
    return f"@{old} is now @{new} — the archive moved with it."


async def follow_rename(data_dir: Path, account: Account, new_username: str) -> str:
    """Move ``account`` (its folder and rows) to ``new_username``; return the sentence to show.

    Another archived account already holding the new name is left alone: the move is
    abandoned (recorded, logged) and the account keeps its old name."""
    old, new = account.username, new_username.lower()
    other = await Account.filter(platform=account.platform, username=new).exclude(id=account.id).first()
    if other is not None and not await _absorb(other, account):
        await AccountRename.create(
            account=account, platform=account.platform, old_username=old, new_username=new, state="abandoned"
        )
        log.warning("@%s is now @%s, but another archived account has that name: not moved", old, new)
        return (
            f"@{old} is now @{new}, but the archive already has another @{new}: its files stay under @{old}."
        )
    move = await AccountRename.create(
        account=account, platform=account.platform, old_username=old, new_username=new
    )
    await finish_move(data_dir, move)
    await account.refresh_from_db(fields=["username", "tracked"])
    if account.username != new:  # both folders held files: nothing moved (logged)
        return f"@{old} is now @{new}, but a folder @{new} already holds files: nothing was moved."
    return moved_sentence(old, new)


async def _absorb(other: Account, account: Account) -> bool:
    """An empty row under the new name (a /download of it before the rename was seen) gives way.

    Only a row with no files and no other id; anything else is a different archive."""
    if other.platform_user_id not in (None, account.platform_user_id):
        return False
    if await MediaItem.filter(account=other).exists():
        return False
    if other.tracked and not account.tracked:  # tracked under the new name: keep it tracked
        await Account.filter(id=account.id).update(tracked=True)
    await other.delete()  # its jobs and settings hold nothing archived
    return True


async def finish_move(data_dir: Path, move: AccountRename) -> None:
    """Carry out a recorded move: rename the folder (if not yet done), then update the rows."""
    root = downloads_root(data_dir)
    old = inside(root, move.platform, move.old_username)
    new = inside(root, move.platform, move.new_username)
    if not await asyncio.to_thread(_move_folder, old, new):
        move.state, move.finished_at = "abandoned", queries.now()
        await move.save(update_fields=["state", "finished_at"])
        log.warning("could not move %s to %s: both folders exist; left as they are", old, new)
        return
    await _move_rows(move)
    log.info("%s @%s is now @%s: folder and rows moved", move.platform, move.old_username, move.new_username)


def _move_folder(old: Path, new: Path) -> bool:
    """One os.rename (atomic on one filesystem); False when both folders hold files."""
    if not old.exists():
        return True  # already moved (or nothing archived on disk yet)
    if new.exists():
        if any(new.iterdir()):
            return False
        new.rmdir()  # an empty folder made under the new name is no archive
    new.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(old, new)
    except FileNotFoundError:  # another process finishing the same move was first
        return new.exists()
    return True


async def _move_rows(move: AccountRename) -> None:
    """Media and picture paths, failed items' recipes, the account's name, the move's end: one transaction."""
    old_prefix = f"downloads/{move.platform}/{move.old_username}/"
    new_prefix = f"downloads/{move.platform}/{move.new_username}/"
    async with in_transaction():
        rows = await MediaItem.filter(account_id=move.account_id, path__startswith=old_prefix)
        for row in rows:
            row.path = new_prefix + row.path[len(old_prefix) :]
        if rows:
            await MediaItem.bulk_update(rows, fields=["path"], batch_size=500)
        for failed in await FailedItem.filter(account_id=move.account_id):
            path = (failed.recipe or {}).get("metadata_path") or ""
            if path.startswith(old_prefix):
                failed.recipe = failed.recipe | {"metadata_path": new_prefix + path[len(old_prefix) :]}
                await failed.save(update_fields=["recipe"])
        for picture in await ProfileChange.filter(account_id=move.account_id, path__startswith=old_prefix):
            picture.path = new_prefix + picture.path[len(old_prefix) :]
            await picture.save(update_fields=["path"])
        await Account.filter(id=move.account_id).update(username=move.new_username)
        move.state, move.finished_at = "done", queries.now()
        await move.save(update_fields=["state", "finished_at"])


async def finish_pending(data_dir: Path) -> int:
    """At start-up: finish every move a killed process recorded but did not end; return how many."""
    pending = await AccountRename.filter(state="pending").order_by("id")
    for move in pending:
        await finish_move(data_dir, move)
    return len(pending)
