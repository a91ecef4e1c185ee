"""Sending archived files into a chat: one post as one album, within Telegram's limits.

A TikTok photo post goes as an album of its slides, then its sound as an audio message
(Telegram albums cannot mix audio with photos).

Files are read from DATA_DIR (never fetched again); a file Telegram already has goes
by its file_id; with a local Bot API server files go by path (file:// URI).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from telegram import Bot, InputMediaAudio, InputMediaDocument, InputMediaPhoto, InputMediaVideo, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from db import delivery_queries as dq
from db.models import MediaItem
from downloader.paths import UnsafePath, inside
from handlers.delivery.captions import caption, too_large_line
from handlers.ratelimit import BACKGROUND

log = logging.getLogger(__name__)
MB = 1024 * 1024
MAX_PHOTO = 10 * MB  # larger photos go as documents
MAX_UPLOAD = 50 * MB  # the Bot API's upload limit (per request here, so albums stay small too)
MAX_LOCAL = 2000 * MB  # a local Bot API server's limit
ALBUM = 10
PHOTO_EXTS = {"jpg", "jpeg", "png", "webp"}
VIDEO_EXTS = {"mp4", "mov", "m4v"}
AUDIO_EXTS = {"mp3", "m4a", "aac"}
# Upload time is size-bound; Telegram's own default (20 s) cuts off large files on slow links.
UPLOAD_TIMEOUT = 600
MISSING = "the file is missing from the archive folder"
CHAT_REFUSALS = ("chat not found", "not enough rights", "have no rights", "chat_write_forbidden")
# Failures before the request could reach Telegram: the send certainly did not happen.
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.WriteError,
    httpx.WriteTimeout,
)


@dataclass
class Piece:
    """One archived file about to be sent; ``sent_as`` None: too large for Telegram."""

    row: MediaItem
    path: Path
    size: int
    sent_as: str | None


class Journal(Protocol):
    """Where deliveries note a send before it starts and Telegram's answer after (the outbox)."""

    async def begin(self, rows: list[MediaItem], unknown_as: str) -> None: ...

    async def answered(
        self, rows: list[MediaItem], state: str, file_ids: dict[str, tuple[str, str]]
    ) -> None: ...

    async def forget(self, rows: list[MediaItem]) -> None: ...

    def file_ids(self) -> dict[tuple[str, str], str]: ...


@dataclass
class Outcome:
    """What happened to one post's files in one chat."""

    sent: list[MediaItem] = field(default_factory=list)
    too_large: list[MediaItem] = field(default_factory=list)
    failed: list[tuple[MediaItem, str]] = field(default_factory=list)
    unanswered: list[MediaItem] = field(default_factory=list)  # sent, but Telegram's answer was lost
    stop: str | None = None  # set when the chat itself refuses (blocked, gone) or the network is down
    outage: bool = False  # the stop is network trouble or 429: try again later, nothing counted
    # Notes each send in the outbox; None (/latest): nothing noted, file ids go straight to the DB.
    journal: Journal | None = field(default=None, repr=False)

    async def begin(self, rows: list[MediaItem], unknown_as: str) -> None:
        """Note a send before it starts (durably), so a lost answer is never sent again blindly."""
        if self.journal is not None:
            await self.journal.begin(rows, unknown_as)

    async def forget(self, rows: list[MediaItem]) -> None:
        """Telegram said no, or the request never left: nothing of these was sent."""
        if self.journal is not None:
            await self.journal.forget(rows)

    async def settled(self, rows: list[MediaItem], state: str, file_ids: dict | None = None) -> None:
        """Files Telegram confirmed (sent) or that were named in a line (too_large), noted at once."""
        (self.sent if state == "sent" else self.too_large).extend(rows)
        if self.journal is not None:
            await self.journal.answered(rows, state, file_ids or {})
            return
        for media_id, (sent_as, file_id) in (file_ids or {}).items():
            with contextlib.suppress(Exception):  # only saves an upload next time
                await dq.remember_file_id(rows[0].platform, media_id, sent_as, file_id)


class ChatProblem(Exception):
    """The chat refuses everything (bot blocked, chat gone): tried a bounded number of times."""


class Unreachable(Exception):
    """Telegram cannot be reached or asks to slow down: stop now, try again later, count nothing."""


class KeyedLocks:
    """One lock per key, held together in a fixed order (no deadlock), dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, keys: list[str]):
        """Hold the locks of every key for the duration of the block."""
        keys = sorted(set(keys))
        for key in keys:
            lock, users = self._locks.get(key, (None, 0))
            self._locks[key] = (lock or asyncio.Lock(), users + 1)
        held: list[asyncio.Lock] = []
        try:
            for key in keys:
                lock = self._locks[key][0]
                await lock.acquire()
                held.append(lock)
            yield
        finally:
            for lock in held:
                lock.release()
            for key in keys:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class Sender:
    """Sends groups of archived files (one post, one story, one video) to chats."""

    def __init__(self, bot: Bot, data_dir: Path, *, local_mode: bool = False):
        self.bot = bot
        self.data_dir = Path(data_dir).resolve()
        self.local_mode = local_mode
        self.limit = MAX_LOCAL if local_mode else MAX_UPLOAD
        self._locks = KeyedLocks()

    async def send_unit(
        self,
        chat_id: int,
        platform: str,
        username: str,
        rows: list[MediaItem],
        *,
        urgent: bool = False,
        journal: Journal | None = None,
    ) -> Outcome:
        """Send the files of one post (album), story or video with its caption.

        ``journal`` notes each message or album before it goes and once Telegram answered,
        so a crash between the two albums of a long carousel never sends the first one again."""
        outcome = Outcome(journal=journal)
        pieces = await asyncio.to_thread(self._inspect, rows)
        outcome.failed = [(p.row, MISSING) for p in pieces if p.size < 0]
        pieces = [p for p in pieces if p.size >= 0]
        if not pieces:
            return outcome
        first = pieces[0].row
        text = caption(
            platform=platform,
            username=username,
            kind=first.kind,
            taken_at=first.taken_at,
            text=first.caption,
            link=first.link,
        )
        options = {} if urgent else {"rate_limit_args": BACKGROUND}
        sendable = [p for p in pieces if p.sent_as]
        large = [p for p in pieces if not p.sent_as]
        try:
            # Another chat sending the same files first: wait, then reuse its file_ids.
            async with self._locks.hold([f"{platform}:{p.row.media_id}" for p in sendable]):
                for chunk in await self._chunks(platform, sendable, journal):
                    await self._send_chunk(chat_id, platform, chunk, text, outcome, options)
                    text = ""  # the caption goes with the first message only
            if large:
                await self._send_large_line(chat_id, large, text, outcome, options)
        except ChatProblem as exc:
            outcome.stop = str(exc)
        except Unreachable as exc:
            outcome.stop, outcome.outage = str(exc), True
        return outcome

    async def _send_large_line(self, chat_id: int, large: list[Piece], text: str, outcome, options) -> None:
        """One text line naming the files over the upload limit (with the caption when nothing else went)."""
        line = too_large_line(((p.path.name, p.size) for p in large), self.limit)
        body = f"{text}\n{line}" if text else line
        rows = [p.row for p in large]
        await outcome.begin(rows, "too_large")
        try:
            await self.bot.send_message(chat_id, body, parse_mode=ParseMode.HTML, **options)
        except TelegramError as exc:
            if not maybe_delivered(exc):  # a line that may have arrived is not repeated
                await outcome.forget(rows)
                _raise_stop(exc)
                outcome.failed.extend((row, exc.message) for row in rows)
                return
        await outcome.settled(rows, "too_large")

    def _inspect(self, rows: list[MediaItem]) -> list[Piece]:
        """Stat each file (in a thread) and choose how it goes: photo, video, document or not at all."""
        pieces = []
        # Slides in order; a photo post's sound after them (it goes as its own message).
        for row in sorted(rows, key=lambda row: (row.kind == "audio", _slide_key(row))):
            try:
                path = inside(self.data_dir, row.path)
                size = path.stat().st_size if path.is_file() else -1
            except (UnsafePath, OSError):
                path, size = self.data_dir, -1
            pieces.append(Piece(row, path, size, self._method(path, size)))
        return pieces

    def _method(self, path: Path, size: int) -> str | None:
        """photo (up to 10 MB), video, audio, document; None over the upload limit."""
        if size > self.limit or size <= 0:
            return None
        ext = path.suffix.lower().lstrip(".")
        if ext in PHOTO_EXTS:
            return "photo" if size <= MAX_PHOTO else "document"
        return "video" if ext in VIDEO_EXTS else "audio" if ext in AUDIO_EXTS else "document"

    async def _chunks(self, platform: str, pieces: list[Piece], journal) -> list[list[tuple[Piece, object]]]:
        """Albums of at most 10 files and 50 MB of upload; documents and audio never mix with media."""
        known = await dq.file_ids(platform, [p.row.media_id for p in pieces])
        if journal is not None:  # uploads whose file ids wait in the outbox for the database
            known = journal.file_ids() | known
        chunks: list[list[tuple[Piece, object]]] = []
        media = [p for p in pieces if p.sent_as in ("photo", "video")]
        alone = [[p for p in pieces if p.sent_as == kind] for kind in ("audio", "document")]
        for group in (media, *alone):
            current, load = [], 0
            for piece in group:
                file_id = known.get((piece.row.media_id, piece.sent_as))
                cost = 0 if file_id or self.local_mode else piece.size
                if current and (len(current) == ALBUM or load + cost > MAX_UPLOAD):
                    chunks.append(current)
                    current, load = [], 0
                current.append((piece, file_id))
                load += cost
            if current:
                chunks.append(current)
        return chunks

    async def _send_chunk(self, chat_id, platform, chunk, text, outcome: Outcome, options) -> None:
        """One message or one album; an album Telegram refuses is tried file by file."""
        rows = [piece.row for piece, _ in chunk]
        await outcome.begin(rows, "unconfirmed")
        try:
            if len(chunk) == 1:
                messages = [await self._send_one(chat_id, chunk[0], text, options)]
            else:
                messages = await self._send_album(chat_id, chunk, text, options)
        except OSError:  # the file went away before it was read: nothing was sent
            await outcome.forget(rows)
            outcome.failed.extend((row, MISSING) for row in rows)
            return
        except TelegramError as exc:
            if maybe_delivered(exc):
                log.warning("chat %s: no answer from Telegram to %d file(s) (%s)", chat_id, len(rows), exc)
                outcome.unanswered.extend(rows)
                return
            await outcome.forget(rows)
            _raise_stop(exc)
            if isinstance(exc, BadRequest) and len(chunk) > 1:
                log.info("album refused in chat %s (%s); sending its files one by one", chat_id, exc.message)
                for number, single in enumerate(chunk):
                    first = text if number == 0 else ""
                    await self._send_chunk(chat_id, platform, [single], first, outcome, options)
                return
            outcome.failed.extend((piece.row, exc.message) for piece, _ in chunk)
            return
        file_ids = {}
        for (piece, file_id), message in zip(chunk, messages, strict=False):
            new_id = _file_id_of(message, piece.sent_as)
            if new_id and not file_id:
                file_ids[piece.row.media_id] = (piece.sent_as, new_id)
        await outcome.settled(rows[: len(messages)], "sent", file_ids)

    async def _input(self, piece: Piece, file_id: str | None):
        """What to put in the request: a file_id, a file:// path (local server) or the bytes."""
        if file_id:
            return file_id
        if self.local_mode:
            return piece.path.as_uri()
        return await asyncio.to_thread(piece.path.read_bytes)

    async def _send_one(self, chat_id: int, entry, text: str, options) -> Message:
        piece, file_id = entry
        media = await self._input(piece, file_id)
        methods = {"photo": self.bot.send_photo, "video": self.bot.send_video, "audio": self.bot.send_audio}
        method = methods.get(piece.sent_as, self.bot.send_document)
        extra = {"filename": piece.path.name} if isinstance(media, bytes) else {}
        if piece.sent_as == "video":
            extra["supports_streaming"] = True
        return await method(
            chat_id,
            media,
            caption=text or None,
            parse_mode=ParseMode.HTML,
            write_timeout=UPLOAD_TIMEOUT,
            read_timeout=60,
            **extra,
            **options,
        )

    async def _send_album(self, chat_id: int, chunk, text: str, options) -> list[Message]:
        media = []
        for number, (piece, file_id) in enumerate(chunk):
            data = await self._input(piece, file_id)
            kinds = {"photo": InputMediaPhoto, "video": InputMediaVideo, "audio": InputMediaAudio}
            kind = kinds.get(piece.sent_as, InputMediaDocument)
            extra = {"filename": piece.path.name} if isinstance(data, bytes) else {}
            first = {"caption": text, "parse_mode": ParseMode.HTML} if number == 0 and text else {}
            media.append(kind(data, **extra, **first))
        sent = await self.bot.send_media_group(
            chat_id, media, write_timeout=UPLOAD_TIMEOUT, read_timeout=60, **options
        )
        return list(sent)


def _slide_key(row: MediaItem) -> tuple:
    """Carousel files "<pk>_<n>" in slide order; others by time."""
    head, _, tail = row.media_id.rpartition("_")
    return (row.taken_at is None, row.taken_at, head or row.media_id, int(tail) if tail.isdigit() else 0)


def _file_id_of(message: Message, sent_as: str) -> str | None:
    """The file_id Telegram gave the file (the largest photo size)."""
    if sent_as == "photo" and message.photo:
        return message.photo[-1].file_id
    found = getattr(message, sent_as, None) or message.document or message.video
    return found.file_id if found else None


def maybe_delivered(exc: TelegramError) -> bool:
    """True when the request may have reached Telegram but its answer did not come back
    (timed out or cut while waiting); False when Telegram answered or the request never left."""
    cause = exc.__cause__  # PTB raises its network errors from the HTTP client's
    return isinstance(exc, NetworkError) and cause is not None and not isinstance(cause, NOT_SENT)


def _raise_stop(exc: TelegramError) -> None:
    """Raise ChatProblem when the chat refuses everything, Unreachable on network trouble or 429;
    return when the error is about this file only (too big, bad format...)."""
    # BadRequest and TimedOut are NetworkErrors in PTB: the file's own problems are told apart first.
    if isinstance(exc, Forbidden) or (isinstance(exc, BadRequest) and _chat_refuses(exc)):
        raise ChatProblem(_reason(exc)) from None
    if isinstance(exc, BadRequest) or "too large" in exc.message.lower():
        return  # 400, or 413 Request Entity Too Large: this file, not the chat
    if isinstance(exc, RetryAfter | NetworkError):
        raise Unreachable(_reason(exc)) from None


def _chat_refuses(exc: BadRequest) -> bool:
    """Bad requests that are about the chat, not the file."""
    text = exc.message.lower()
    return any(s in text for s in CHAT_REFUSALS)


def _reason(exc: TelegramError) -> str:
    """A short cause for the log and the one report."""
    if isinstance(exc, Forbidden | BadRequest):
        return f"Telegram refused: {exc.message}"
    if isinstance(exc, RetryAfter):
        return "Telegram asked to slow down"
    return f"Telegram could not be reached ({exc.message})"
