"""`bot.py reindex`: rebuild the archive's index from the files under DATA_DIR/downloads.

File names carry the date and the platform's media id, JSON sidecars the caption, and
each highlight folder's id file its highlight id, so the database can be rebuilt from
the folders alone, without a single request. Rows that exist are left as they are, so
running it twice changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from db import archive_state, queries
from downloader.highlights import ID_FILE
from downloader.leftovers import is_temporary
from downloader.paths import downloads_root
from downloader.profiles import PROFILE_FOLDER

NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})_([A-Za-z0-9_-]+)\.([A-Za-z0-9]{1,8})$")
USERNAME = re.compile(r"^[A-Za-z0-9._]{1,64}$")
PHASES = {"instagram": ("posts", "stories", "highlights"), "tiktok": ("videos",)}
AUDIO_EXTS = {"mp3", "m4a", "aac", "ogg", "wav"}


@dataclass
class File:
    """One media file as its name describes it."""

    media_id: str
    taken_at: datetime
    ext: str
    path: str  # relative to DATA_DIR
    size: int


@dataclass
class Folder:
    """The files of one phase folder (or one highlight folder), and its sidecars."""

    files: list[File] = field(default_factory=list)
    sidecars: dict[str, dict] = field(default_factory=dict)  # name id -> JSON
    label: dict | None = None  # a highlight folder's id file


@dataclass
class Report:
    """What a reindex found, added and left out."""

    files: int = 0
    added: int = 0
    accounts: set[tuple[str, str]] = field(default_factory=set)
    highlights: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: why"

    def lines(self) -> list[str]:
        """The summary a person reads on the terminal."""
        accounts = f"{len(self.accounts)} account" + ("" if len(self.accounts) == 1 else "s")
        lines = [f"Reindexed {self.files} files of {accounts}; 0 requests."]
        lines.append(f"{self.added} added to the index, {self.files - self.added} already in it.")
        if self.highlights:
            lines.append(f"{self.highlights} highlight folders matched to their highlights.")
        lines += [f"Skipped {entry}" for entry in self.skipped]
        return lines


async def reindex(data_dir: Path) -> Report:
    """Register every archive file under ``data_dir``/downloads that the index lacks."""
    data_dir = Path(data_dir).resolve()
    root = downloads_root(data_dir)
    report = Report()
    tree = await asyncio.to_thread(_scan, data_dir, root, report)
    for (platform, username), phases in sorted(tree.items()):
        account = await queries.get_or_create_account(platform, username)
        report.accounts.add((platform, username))
        # Stories before highlights: a highlight item is usually an old story, kept once.
        for phase in PHASES[platform]:
            for name, folder in phases.get(phase, []):
                await _register(account, phase, name, folder, report)
    return report


def _scan(data_dir: Path, root: Path, report: Report) -> dict:
    """(platform, username) -> phase -> [(highlight folder name or "", Folder)]."""
    tree: dict = {}
    for platform_dir in _dirs(root, report, data_dir):
        if platform_dir.name not in PHASES:
            report.skipped.append(f"{_rel(platform_dir, data_dir)}/: not a platform's folder")
            continue
        for user_dir in _dirs(platform_dir, report, data_dir):
            if not USERNAME.match(user_dir.name):
                report.skipped.append(f"{_rel(user_dir, data_dir)}/: not an account name")
                continue
            phases = tree.setdefault((platform_dir.name, user_dir.name), {})
            for phase_dir in _dirs(user_dir, report, data_dir):
                if phase_dir.name == PROFILE_FOLDER:
                    continue  # profile pictures: the profile's history, not archive media
                if phase_dir.name not in PHASES[platform_dir.name]:
                    report.skipped.append(f"{_rel(phase_dir, data_dir)}/: not a folder the bot writes")
                elif phase_dir.name == "highlights":
                    phases["highlights"] = [
                        (sub.name, _read_folder(sub, data_dir, report))
                        for sub in _dirs(phase_dir, report, data_dir)
                    ]
                else:
                    phases[phase_dir.name] = [("", _read_folder(phase_dir, data_dir, report))]
    return tree


def _dirs(folder: Path, report: Report, data_dir: Path) -> list[Path]:
    """Sub-folders in name order; loose files here are named as skipped."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            found.append(entry)
        elif not entry.name.startswith("."):
            report.skipped.append(f"{_rel(entry, data_dir)}: not in an account's phase folder")
    return found


def _read_folder(folder: Path, data_dir: Path, report: Report) -> Folder:
    """Parse every file name of one folder."""
    result = Folder()
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name == ID_FILE:
            result.label = _json(entry)
            continue
        if is_temporary(entry):
            report.skipped.append(f"{_rel(entry, data_dir)}: an unfinished download")
            continue
        if name.startswith(".") or entry.is_dir():
            continue
        match = NAME.match(name)
        if match is None or entry.is_symlink():
            report.skipped.append(f"{_rel(entry, data_dir)}: not an archive file name")
            continue
        moment, media_id, ext = match.groups()
        if ext.lower() == "json":
            result.sidecars[media_id] = _json(entry) or {}
            continue
        size = entry.stat().st_size
        if size <= 0:
            report.skipped.append(f"{_rel(entry, data_dir)}: an empty file")
            continue
        taken_at = datetime.strptime(moment, "%Y-%m-%d_%H-%M-%S").replace(tzinfo=UTC)
        result.files.append(File(media_id, taken_at, ext.lower(), _rel(entry, data_dir), size))
    return result


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _rel(path: Path, data_dir: Path) -> str:
    return str(path.relative_to(data_dir))


async def _register(account, phase: str, name: str, folder: Folder, report: Report) -> None:
    """Add the rows a folder's files describe that the index lacks."""
    rows = _rows(account, phase, folder)
    report.files += len(rows)
    known = await queries.archived_paths(account.platform, (row["media_id"] for row in rows))
    for row in rows:
        if row["media_id"] not in known:
            await queries.record_media(platform=account.platform, account=account, **row)
            report.added += 1
            known[row["media_id"]] = row["path"]
    if phase == "highlights":
        await _members(account, name, folder, report)


async def _members(account, name: str, folder: Folder, report: Report) -> None:
    """A highlight folder's membership, from its id file."""
    label = folder.label or {}
    if not label.get("id"):
        if folder.files:
            report.skipped.append(
                f"highlight folder {name!r}: no {ID_FILE}; its members come back with the next sync"
            )
        return
    highlight_id = str(label["id"])
    row = await archive_state.highlight_of(account.platform, highlight_id)
    if row is None:
        row = await archive_state.add_highlight(account, highlight_id, str(label.get("title") or name), name)
    await archive_state.add_members(row, [file.media_id for file in folder.files])
    report.highlights += 1


def _rows(account, phase: str, folder: Folder) -> list[dict]:
    """record_media's fields of each file, one per media id."""
    if account.platform == "tiktok":
        return [_tiktok_row(account.username, file, folder) for file in folder.files]
    if phase == "posts":
        return _post_rows(folder)
    kind = "story" if phase == "stories" else "highlight"
    link = "https://www.instagram.com/stories/{}/{}/"  # as the Instagram source links them
    return [_row(file, kind, link=link.format(account.username, file.media_id)) for file in folder.files]


def _post_rows(folder: Folder) -> list[dict]:
    """Instagram posts: "<pk>" or a carousel's "<pk>_<n>"; the sidecar names the shortcode."""
    by_pk = {str(meta.get("mediaid")): meta for meta in folder.sidecars.values()}
    sizes = Counter(file.media_id.split("_")[0] for file in folder.files)
    rows = []
    for file in folder.files:
        pk = file.media_id.split("_")[0]
        meta = by_pk.get(pk, {})
        shortcode = meta.get("shortcode") or _shortcode(pk)
        kind = "reel" if meta.get("product_type") == "clips" else "post"
        link = meta.get("url") or f"https://www.instagram.com/p/{shortcode}/"
        taken_at = _when(meta.get("taken_at")) or file.taken_at
        rows.append(
            _row(
                file,
                kind,
                group=(shortcode, _files(meta, sizes[pk])),
                caption=meta.get("caption"),
                link=link,
                taken_at=taken_at,
            )
        )
    return rows


def _tiktok_row(username: str, file: File, folder: Folder) -> dict:
    """A video "<id>", a photo post's slide "<id>_<n>" or its sound "<id>" (an audio file)."""
    post_id = file.media_id.split("_")[0]
    kind = _tiktok_kind(file)
    meta = folder.sidecars.get(post_id, {})
    page = "video" if kind == "video" else "photo"
    link = meta.get("url") or f"https://www.tiktok.com/@{username}/{page}/{post_id}"
    size = _files(meta, sum(1 for other in folder.files if other.media_id.split("_")[0] == post_id))
    taken_at = _when(meta.get("created")) or file.taken_at
    caption = meta.get("description") or None
    return _row(file, kind, group=(post_id, size), caption=caption, link=link, taken_at=taken_at)


def _files(meta: dict, on_disk: int) -> int:
    """How many files the post has: its sidecar says so (a missing slide is then noticed)."""
    stated = meta.get("files")
    return stated if isinstance(stated, int) and stated > 0 else on_disk


def _tiktok_kind(file: File) -> str:
    if file.ext in AUDIO_EXTS:
        return "audio"
    return "photo" if "_" in file.media_id else "video"


def _row(file: File, kind: str, *, group=(None, None), caption=None, link=None, taken_at=None) -> dict:
    return {
        "media_id": file.media_id,
        "kind": kind,
        "taken_at": taken_at or file.taken_at,
        "path": file.path,
        "size": file.size,
        "group_id": group[0],
        "group_size": group[1],
        "caption": caption,
        "link": link,
    }


def _when(text) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _shortcode(pk: str) -> str | None:
    """Instagram's shortcode of a post: its media id in URL-safe base64."""
    if not pk.isdigit():
        return None
    number, code = int(pk), ""
    while number:
        number, digit = divmod(number, 64)
        code = _B64[digit] + code
    return code or None
