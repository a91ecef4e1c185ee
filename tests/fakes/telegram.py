"""A strict fake Telegram Bot API server that the real python-telegram-bot talks to over HTTP.

It answers the methods our bot uses with real Telegram shapes and real Telegram
errors: 401 for a wrong token, 400 for an edit that
changes nothing, for unknown messages, empty or too long text and malformed
HTML, 413 for files over 50 MB, and 429 with ``retry_after`` when a chat, a
group or the bot as a whole sends faster than Telegram allows. A bot that
passes against a lenient fake gets throttled in real life.

The aiohttp app runs on its own event loop in a background thread, so a test's
event loop, worker threads and a bot in a subprocess can all use it. Tests
inject updates with ``send_message``/``press_button`` and wait on what the bot
did with ``wait_for``/``await_for``, never on ``sleep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from aiohttp import web

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_FILE = 50 * 1024 * 1024
MAX_GET_FILE = 20 * 1024 * 1024  # getFile serves files up to 20 MB
MAX_PHOTO = 10 * 1024 * 1024
MAX_LOCAL_FILE = 2000 * 1024 * 1024  # a local Bot API server (--local) takes files by path up to 2000 MB
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)
# PTB sends these as raw strings; every other value is JSON and decoded (so a text of "42" stays text).
TEXT_FIELDS = frozenset({"text", "caption", "callback_query_id", "title", "description", "short_description"})
# What puts something into a chat, and so counts against Telegram's flood limits.
RATE_LIMITED = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage", "sendMediaGroup"}
RATE_LIMITED |= {"sendDocument", "sendPhoto", "sendVideo", "sendAudio"}
# Tag -> entity type, for every tag Telegram's HTML accepts.
TAGS = {
    tag: kind
    for tags, kind in [
        ("b strong", "bold"),
        ("i em", "italic"),
        ("u ins", "underline"),
        ("s strike del", "strikethrough"),
        ("a", "text_link"),
        ("code", "code"),
        ("pre", "pre"),
        ("span tg-spoiler", "spoiler"),
        ("blockquote", "blockquote"),
        ("tg-emoji", "custom_emoji"),
    ]
    for tag in tags.split()
}
_TAG = re.compile(r"<(/?)([^\s>]*)([^>]*)>")
_ATTR = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"


class ApiError(Exception):
    """A Telegram error answer: HTTP status, description and optional ``parameters``."""

    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters

    def body(self) -> dict:
        """The JSON Telegram answers with."""
        body = {"ok": False, "error_code": self.status, "description": self.description}
        return body | ({"parameters": self.parameters} if self.parameters else {})


def bad(description: str) -> ApiError:
    """A 400 Bad Request."""
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Upload:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class Received:
    """One file the fake received (an upload or a local path), as Telegram stored it."""

    method: str
    chat_id: int
    kind: str  # photo | video | audio | document
    filename: str
    size: int
    sha256: str
    file_id: str
    by_path: bool = False  # passed as a file:// path to a local Bot API server


@dataclass
class Call:
    """One request the fake answered; ``result`` on success, ``error`` (description) otherwise."""

    method: str
    params: dict
    status: int
    time: float
    result: Any = None
    error: str | None = None
    answered: bool = True  # False: accepted, then the connection was cut before the answer (hang_up)


@dataclass
class Message:
    """A message in a chat as it stands now; ``text`` is as sent (the caption for media)."""

    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    chat: dict = field(repr=False)
    sender: dict = field(repr=False)
    text: str | None = None
    parse_mode: str | None = None
    plain: str = ""  # the text as clients show it: HTML parsed away
    entities: list = field(default_factory=list)
    reply_markup: dict | None = None
    media_type: str | None = None  # "document", "photo", "video" or "audio"
    media: Any = None  # its Telegram object (a list of sizes for a photo)
    media_group_id: str | None = None
    edits: int = 0
    edit_date: int | None = None
    deleted: bool = False

    def to_dict(self) -> dict:
        """The Telegram Message object."""
        data = {"message_id": self.message_id, "date": self.date, "chat": self.chat, "from": self.sender}
        key = "caption" if self.media_type else "text"
        if self.plain:
            data[key] = self.plain
        if self.entities:
            data[f"{key}_entities" if self.media_type else "entities"] = self.entities
        if self.media_type:
            data[self.media_type] = self.media
        if self.media_group_id:
            data["media_group_id"] = self.media_group_id
        if self.edit_date:
            data["edit_date"] = self.edit_date
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup  # Telegram echoes only inline keyboards
        return data


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _cant_parse(source: str, at: int, what: str) -> ApiError:
    """400 "can't parse entities" naming the byte offset as Telegram does."""
    offset = len(source[:at].encode())
    return bad(f"can't parse entities: {what} at byte offset {offset}")


def _open_entity(source: str, at: int, name: str, attrs: str, offset: int) -> dict:
    """The entity a start tag begins, or 400 for a tag Telegram does not support."""
    if name not in TAGS:
        raise _cant_parse(source, at, f'Unsupported start tag "{name}"')
    # Attribute values are HTML too: "&amp;" in a link is "&".
    values = {m[1]: _unescape(m[2] or m[3] or m[4]) for m in _ATTR.finditer(attrs)}
    if name == "span" and values.get("class") != "tg-spoiler":
        raise _cant_parse(source, at, 'Tag "span" must have class "tg-spoiler"')
    entity: dict[str, Any] = {"type": TAGS[name], "offset": offset}
    if name == "a":
        entity["url"] = values.get("href", "")
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = values.get("emoji-id", "")
    elif name == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif name == "code" and values.get("class", "").startswith("language-"):
        entity["language"] = values["class"].removeprefix("language-")
    return entity


def _unescape(text: str) -> str:
    """Decode the entities Telegram's HTML knows (named lt/gt/amp/quot and numeric ones)."""

    def one(match: re.Match) -> str:
        named, dec, hexa = match.groups()
        return _NAMED[named] if named else chr(int(dec or hexa, 10 if dec else 16))

    return _ENTITY.sub(one, text)


def parse_html(source: str) -> tuple[str, list[dict]]:
    """Plain text and entities of Telegram-flavoured HTML, or 400 "can't parse entities"."""
    out: list[str] = []
    length = 0
    stack: list[tuple[str, dict]] = []
    entities: list[dict] = []
    i = 0
    while i < len(source):
        if source[i] == "&":
            match = _ENTITY.match(source, i)
            if match is None:  # Bot API docs: a bare "&" must be written as &amp;
                raise _cant_parse(source, i, 'Unescaped "&" (write &amp;)')
            named, dec, hexa = match.groups()
            piece = _NAMED[named] if named else chr(int(dec or hexa, 10 if dec else 16))
        elif source[i] == "<":
            match = _TAG.match(source, i)
            if match is None:
                raise _cant_parse(source, i, "Unclosed start tag")
            closing, name, attrs = match[1], match[2].lower(), match[3]
            if not closing:
                stack.append((name, _open_entity(source, i, name, attrs, length)))
            elif not stack:
                raise _cant_parse(source, i, "Unexpected end tag")
            elif stack[-1][0] != name:
                raise _cant_parse(
                    source, i, f'Unmatched end tag, expected "</{stack[-1][0]}>", found "</{name}>"'
                )
            else:
                _close_entity(stack, entities, length)
            i = match.end()
            continue
        else:
            match, piece = None, source[i]
        out.append(piece)
        length += utf16_len(piece)
        i = match.end() if match else i + 1
    if stack:
        raise bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _close_entity(stack: list[tuple[str, dict]], entities: list[dict], length: int) -> None:
    """Finish the innermost open entity; a <code class="language-x"> inside <pre> names the pre's language."""
    name, entity = stack.pop()
    entity["length"] = length - entity["offset"]
    if name == "code" and "language" in entity and stack and stack[-1][0] == "pre":
        stack[-1][1]["language"] = entity["language"]
        return
    if name == "code":
        entity.pop("language", None)  # only a <pre> carries a language
    if entity["length"] and entity.get("url", True):
        entities.append(entity)


def parse_content(values: dict, key: str = "text") -> dict:
    """Message fields for the text (or caption) of a request, checked like Telegram checks them."""
    raw, mode = values.get(key), values.get("parse_mode")
    given = values.get("entities" if key == "text" else "caption_entities") or []
    plain, entities = parse_html(str(raw or "")) if str(mode).lower() == "html" else (str(raw or ""), given)
    if key == "text" and not plain.strip():
        raise bad("message text is empty")
    # Telegram counts a caption in UTF-16 code units after entity parsing (an emoji costs two).
    length = len(plain) if key == "text" else utf16_len(plain)
    if length > (MAX_TEXT if key == "text" else MAX_CAPTION):
        raise bad("message is too long" if key == "text" else "message caption is too long")
    return {"text": raw, "parse_mode": mode, "plain": plain, "entities": entities}


def check_markup(values: dict) -> dict | None:
    """The reply_markup of a request, with inline buttons checked like Telegram checks them."""
    markup = values.get("reply_markup")
    if markup is not None and not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if len(button) < 2:
                raise bad("text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad("BUTTON_DATA_INVALID")
    return markup


def decode(name: str, value: Any) -> Any:
    """A form value as the client meant it: JSON for non-strings, raw for text fields."""
    if name in TEXT_FIELDS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request, params: dict, file_limit: int) -> None:
    """Fill ``params`` from the query string and a form, multipart or JSON body."""
    params.update({k: decode(k, v) for k, v in request.query.items()})
    if request.content_type == "application/json":
        params.update(json.loads(await request.read() or b"{}"))
    elif request.content_type == "multipart/form-data":
        too_big = False
        async for part in await request.multipart():
            if not part.filename:
                params[part.name] = decode(part.name, await part.text())
                continue
            data, size = bytearray(), 0
            # Drain the whole body even past the limit, so the client reads our answer, not a reset.
            while chunk := await part.read_chunk():
                size += len(chunk)
                data += chunk if size <= file_limit else b""
            too_big |= size > file_limit
            params[part.name] = Upload(part.filename, part.headers.get("Content-Type", ""), bytes(data))
        if too_big:
            raise ApiError(413, "Request Entity Too Large")
    elif request.can_read_body:
        params.update({k: decode(k, v) for k, v in (await request.post()).items()})


class FakeTelegram:
    """aiohttp app served from a background thread with its own event loop, so both
    in-process tests (any event loop) and subprocess tests can use it."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "archive_test_bot",
        rate_limits: bool = True,
        chat_rate: float = 1.0,
        chat_burst: int = 3,
        group_per_minute: int = 20,
        global_per_second: int = 30,
    ) -> None:
        self.token, self.url = token, ""
        bot_id = token.split(":")[0]
        self.bot_user = {"id": int(bot_id) if bot_id.isdigit() else 1, "is_bot": True}
        self.bot_user |= {"first_name": "Archive Test Bot", "username": bot_username}
        self.rate_limits, self.chat_rate, self.chat_burst = rate_limits, chat_rate, chat_burst
        self.group_per_minute, self.global_per_second = group_per_minute, global_per_second
        self.max_file_size = MAX_FILE
        self.max_photo_size = MAX_PHOTO
        # True: behave like a local Bot API server started with --local (file:// paths, 2000 MB).
        self.local_mode = False
        self.received: list[Received] = []
        self.blocked: set[int] = set()  # chats where the user blocked the bot (or removed it)
        # Method -> how many more of its calls are answered; every later one gets 502 Bad Gateway,
        # as Telegram's front end answers while its back end is in trouble. Clear it to recover.
        self.bad_gateway: dict[str, int] = {}
        # Method -> how many of its next successful calls are carried out (the message is in the
        # chat) but never answered: the connection is cut, as when the network fails mid-request.
        self.hang_up: dict[str, int] = {}
        # Called (in the server thread) with each successful send of a message into a chat, before
        # the answer goes out: a test can make the bot's next database write fail at that moment.
        self.on_sent: Callable[[Call], None] | None = None
        # Method -> HTTP status a reverse proxy in front of the Bot API answers it with: an HTML
        # page that names the request's path (and so the token), as some proxies' error pages do.
        self.proxy_errors: dict[str, int] = {}
        # True: another process polls with this token; getUpdates answers 409 Conflict.
        self.conflict = False
        self.calls: list[Call] = []
        self.rate_limited = 0
        self.commands: list = []
        self.commands_scope: dict | None = None
        self.commands_language: str | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ids = itertools.count(1)  # update, callback query, file and album ids
        self._updates: list[dict] = []
        self._allowed_updates: list[str] = []
        self._chats: dict[int, dict] = {}
        self._users: dict[int, dict] = {}
        self._messages: dict[int, dict[int, Message]] = {}
        self._queries: dict[str, bool] = {}  # callback query id -> answered
        self._files: dict[str, Any] = {}
        self._user_files: dict[str, bytes] = {}  # file_id of a file a user sent -> its bytes
        self._file_paths: dict[str, str] = {}  # file_path handed out by getFile -> file_id
        self.downloads: list[str] = []  # file paths fetched through /file/bot<token>/...
        self._menus: dict[str, list] = {}
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (tokens, when)
        self._group_sends: dict[int, deque] = {}
        self._global_sends: deque = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        # Every ``_on_<snake_name>`` method answers the Bot API method of that name.
        self._handlers = {_camel(n[4:]): getattr(self, n) for n in dir(self) if n.startswith("_on_")}
        self._names = {name.lower(): name for name in self._handlers}

    # ----- lifecycle --------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Serve on 127.0.0.1 at a free port from a background thread; return self."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-telegram", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """End pending long polls, close the server and the thread."""
        if self._loop is None:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        """Runs in the server thread."""
        self._wake = asyncio.Event()
        app = web.Application(client_max_size=2 * MAX_FILE)
        app.router.add_route("*", "/bot{token}/{method}", self._answer)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # A long poll still pending at stop() must not hold up the shutdown for a minute.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def _shutdown(self) -> None:
        self._wake.set()
        await self._runner.cleanup()

    # ----- injecting updates ------------------------------------------------

    def send_message(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        *,
        chat_type: str = "private",
        first_name: str = "Owner",
        username: str | None = None,
    ) -> dict:
        """A user writes ``text``; returns the Update. A leading /command gets its entity."""
        chat_id = user_id if chat_id is None else chat_id
        named = {"first_name": first_name} | ({"username": username} if username else {})
        with self._lock:
            user = self._users[user_id] = {"id": user_id, "is_bot": False} | named
            chat = self._chats.setdefault(chat_id, {"id": chat_id, "type": chat_type, "title": "Test group"})
            if chat_type == "private":  # the user's current name, also if the bot wrote first
                chat.pop("title", None)
                chat |= named
            command = _COMMAND.match(text)
            entities = (
                [{"type": "bot_command", "offset": 0, "length": utf16_len(command[0])}] if command else []
            )
            message = self._new_message(chat_id, user, text=text, plain=text, entities=entities)
            return self._push({"message": message.to_dict()})

    def send_document(
        self,
        user_id: int,
        filename: str,
        data: bytes,
        chat_id: int | None = None,
        *,
        mime: str = "text/plain",
    ) -> dict:
        """A user sends a file as a document (as Telegram delivers it: no bytes, a file_id)."""
        chat_id = user_id if chat_id is None else chat_id
        with self._lock:
            user = self._users.setdefault(user_id, {"id": user_id, "is_bot": False, "first_name": "Owner"})
            chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group", "first_name": "Owner"}
            self._chats.setdefault(chat_id, chat)
            number = next(self._ids)
            document = {
                "file_id": f"USERFILE{number}-document",
                "file_unique_id": f"UU{number}",
                "file_name": filename,
                "mime_type": mime,
                "file_size": len(data),
            }
            self._user_files[document["file_id"]] = data
            message = self._new_message(chat_id, user, media_type="document", media=document)
            return self._push({"message": message.to_dict()})

    def press_button(self, user_id: int, message_id: int, data: str, chat_id: int | None = None) -> dict:
        """A user presses an inline button carrying ``data``; returns the Update.

        ``data`` is not checked against the keyboard: crafted clients can send anything."""
        chat_id = user_id if chat_id is None else chat_id
        with self._lock:
            message = self._messages.get(chat_id, {}).get(message_id)
            if message is None or message.deleted:
                raise LookupError(f"no message {message_id} in chat {chat_id} to press a button on")
            query_id = str(next(self._ids) * 7919 + 4_000_000)  # real ids are long digit strings
            self._queries[query_id] = False
            user = self._users.get(user_id, {"id": user_id, "is_bot": False, "first_name": "User"})
            query = {"id": query_id, "from": user, "chat_instance": str(-chat_id * 31 + 17), "data": data}
            return self._push({"callback_query": query | {"message": message.to_dict()}})

    def _push(self, body: dict) -> dict:
        """Queue an update and wake a pending long poll."""
        update = {"update_id": next(self._ids)} | body
        self._updates.append(update)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        return update

    # ----- observing --------------------------------------------------------

    def messages(self, chat_id: int) -> list[Message]:
        """Snapshots of the bot's messages in a chat that are not deleted, oldest first."""
        with self._lock:
            chat = self._messages.get(chat_id, {}).values()
            return [dataclasses.replace(m) for m in chat if m.from_bot and not m.deleted]

    def message(self, chat_id: int, message_id: int) -> Message:
        """A snapshot of one message (also a deleted one, with ``deleted`` set)."""
        with self._lock:
            return dataclasses.replace(self._messages[chat_id][message_id])

    def wait_for(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,
        after: int = 0,
    ) -> Call:
        """Block until a successful ``method`` call at index >= ``after`` matches; AssertionError if none."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := self._find(method, chat_id, predicate, after)) is None:
                if time.monotonic() >= deadline:
                    raise AssertionError(self._report(method, chat_id, timeout, after))
                self._changed.wait(deadline - time.monotonic())
        return found

    async def await_for(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,
        after: int = 0,
    ) -> Call:
        """``wait_for`` for a test's event loop: polls without blocking the loop."""
        deadline = time.monotonic() + timeout
        while (found := self._find(method, chat_id, predicate, after)) is None:
            if time.monotonic() >= deadline:
                raise AssertionError(self._report(method, chat_id, timeout, after))
            await asyncio.sleep(0.01)
        return found

    def _find(self, method: str, chat_id: int | None, predicate: Callable | None, after: int) -> Call | None:
        with self._lock:
            calls = self.calls[after:]
        wanted = [c for c in calls if c.method == method and c.status == 200]
        chat = [c for c in wanted if chat_id is None or str(c.params.get("chat_id")) == str(chat_id)]
        return next((c for c in chat if predicate is None or predicate(c)), None)

    def calls_report(self, after: int = 0) -> str:
        """The calls since ``after`` that were not empty polls, one line each (the last 40)."""
        lines = []
        with self._lock:
            for index, call in enumerate(self.calls[after:], after):
                if call.method != "getUpdates" or call.result or call.status != 200:
                    what = call.error or str(call.params.get("text", ""))[:80]
                    chat = call.params.get("chat_id")
                    lines.append(f"  #{index} {call.method} {call.status} chat={chat} {what}")
        return "\n".join(lines[-40:])

    def _report(self, method: str, chat_id: int | None, timeout: float, after: int) -> str:
        """What the bot did instead, leaving out empty polls."""
        where = "" if chat_id is None else f" in chat {chat_id}"
        header = f"no successful {method}{where} within {timeout}s; calls since #{after}:"
        return f"{header}\n{self.calls_report(after)}"

    # ----- serving (in the server thread) -----------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _answer(self, request: web.Request) -> web.Response:
        """Answer one Bot API request and record it."""
        arrived, params = time.time(), {}
        given = request.match_info["method"]
        name = self._names.get(given.lower(), given)  # Telegram method names are case-insensitive
        if name in self.proxy_errors:
            return self._proxy_error(request, name, arrived)
        try:
            await read_params(request, params, MAX_LOCAL_FILE if self.local_mode else self.max_file_size)
            result = await self._call(request.match_info["token"], name, params)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.status, exc.body()
        call = Call(name, params, status, arrived, body.get("result"), body.get("description"))
        sent = status == 200 and name in RATE_LIMITED and name.startswith("send")
        with self._changed:
            if sent and self.hang_up.get(name, 0) > 0:
                self.hang_up[name] -= 1
                call.answered = False
            self.calls.append(call)
            self._changed.notify_all()
        if sent and self.on_sent is not None:
            self.on_sent(call)
        if not call.answered:
            request.transport.abort()  # done, but the client never hears of it
        return web.json_response(body, status=status)

    def _proxy_error(self, request: web.Request, name: str, arrived: float) -> web.Response:
        status = self.proxy_errors[name]
        page = f"<html><body><h1>{status}</h1><p>{request.method} {request.path} failed</p></body></html>"
        with self._changed:
            self.calls.append(Call(name, {}, status, arrived, None, page))
            self._changed.notify_all()
        return web.Response(status=status, text=page, content_type="text/html")

    async def _call(self, token: str, name: str, params: dict) -> Any:
        """The result of one method, or ApiError."""
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        if name == "getUpdates" and self.conflict:
            raise ApiError(409, CONFLICT)
        if name == "getUpdates":
            return await self._on_get_updates(params)
        if name not in self._handlers:
            raise ApiError(404, "Not Found: method not found")
        with self._lock:
            if name in self.bad_gateway:
                if self.bad_gateway[name] <= 0:
                    raise ApiError(502, "Bad Gateway")
                self.bad_gateway[name] -= 1
            if name in RATE_LIMITED and params.get("chat_id") in self.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            limited = name in RATE_LIMITED and self.rate_limits
            spend = self._allowance(self._chat_id(params), _weight(name, params)) if limited else None
            result = self._handlers[name](params)
            if spend:  # only what reached the chat counts; a 400 costs nothing
                spend()
            return result

    async def _on_get_updates(self, params: dict) -> list[dict]:
        """Pending updates from ``offset``; long-polls up to ``timeout`` seconds while there are none."""
        offset, limit = int(params.get("offset") or 0), min(max(int(params.get("limit") or 100), 1), 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        if "allowed_updates" in params:  # Telegram keeps the last list given
            self._allowed_updates = params["allowed_updates"] or []
        while True:
            self._wake.clear()
            with self._lock:
                if offset > 0:  # confirms (forgets) every update below the offset
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                elif offset < 0:
                    self._updates = self._updates[offset:]
                # Updates of a type the bot did not ask for never reach it, as on Telegram.
                allowed = set(self._allowed_updates) | {"update_id"}
                self._updates = [u for u in self._updates if not self._allowed_updates or set(u) <= allowed]
                pending = self._updates[:limit]
            if pending or self._closing or time.monotonic() >= deadline:
                return pending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), deadline - time.monotonic())

    def _allowance(self, chat_id: int, weight: int = 1) -> Callable[[], None]:
        """429 when the chat, its group or the bot is over its limit, else how to spend one send.

        An album of ``weight`` items is one message for the chat's pace but ``weight`` messages
        for a group's minute and for the bot's second, as Telegram counts them."""
        now = time.monotonic()
        tokens, when = self._buckets.get(chat_id, (float(self.chat_burst), now))
        tokens = min(float(self.chat_burst), tokens + (now - when) * self.chat_rate)
        waits = [(1 - tokens) / self.chat_rate] if tokens < 1 else []
        group = self._group_sends.setdefault(chat_id, deque()) if chat_id < 0 else deque()
        _expire(group, now - 60)
        if chat_id < 0 and len(group) + weight > self.group_per_minute:
            waits.append(group[min(weight, len(group)) - 1] + 60 - now if group else 60)
        _expire(self._global_sends, now - 1)
        if len(self._global_sends) + weight > self.global_per_second:
            waits.append(self._global_sends[0] + 1 - now if self._global_sends else 1)
        if waits:
            self.rate_limited += 1
            retry = max(1, math.ceil(max(waits)))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

        def spend() -> None:
            self._buckets[chat_id] = (tokens - 1, now)
            group.extend([now] * weight)
            self._global_sends.extend([now] * weight)

        return spend

    # ----- methods (called with the lock held) ------------------------------

    def _chat_id(self, params: dict) -> int:
        """The target chat; ``@channel`` names are unknown here."""
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise bad("chat_id is empty")
        if not isinstance(chat_id, int):
            raise bad("chat not found")
        return chat_id

    def _new_message(self, chat_id: int, sender: dict | None = None, **fields: Any) -> Message:
        """Store a message (the bot's unless ``sender`` says otherwise); ids count up per chat."""
        new_chat = {"id": chat_id, "type": "private", "first_name": "User"}
        if chat_id < 0:
            new_chat = {"id": chat_id, "type": "group", "title": "Test group"}
        chat = self._chats.setdefault(chat_id, new_chat)
        stored = self._messages.setdefault(chat_id, {})
        sender = sender or self.bot_user
        message = Message(chat_id, len(stored) + 1, int(time.time()), sender is self.bot_user, chat, sender)
        vars(message).update(fields)
        stored[message.message_id] = message
        return message

    def _on_set_my_commands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad("command description must be 1-256 characters long")
        self._menus[_menu_key(params)] = commands
        self.commands, self.commands_scope = commands, params.get("scope")
        self.commands_language = params.get("language_code")
        return True

    def _on_delete_my_commands(self, params: dict) -> bool:
        self._menus.pop(_menu_key(params), None)
        if (params.get("scope"), params.get("language_code")) == (
            self.commands_scope,
            self.commands_language,
        ):
            self.commands = []
        return True

    def _on_send_message(self, params: dict) -> dict:
        content = parse_content(params)
        chat_id = self._chat_id(params)
        return self._new_message(chat_id, reply_markup=check_markup(params), **content).to_dict()

    def _editable(self, params: dict, missing: str = "message to edit not found") -> Message:
        """The bot's message an edit or delete is about, or 400."""
        message = self._messages.get(self._chat_id(params), {}).get(params.get("message_id"))
        if message is None or message.deleted:
            raise bad(missing)
        if not message.from_bot and missing.endswith("edit not found"):
            raise bad("message can't be edited")
        return message

    def _on_edit_message_text(self, params: dict) -> dict:
        message = self._editable(params)
        if message.media_type:
            raise bad("there is no text in the message to edit")
        content, markup = parse_content(params), check_markup(params)
        # Leaving reply_markup out removes the keyboard, as on Telegram; so it is part of the comparison.
        if (content["plain"], content["entities"], markup) == (
            message.plain,
            message.entities,
            message.reply_markup,
        ):
            raise bad(NOT_MODIFIED)
        return self._edited(message, markup, **content)

    def _on_edit_message_reply_markup(self, params: dict) -> dict:
        message = self._editable(params)
        markup = check_markup(params)
        if markup == message.reply_markup:
            raise bad(NOT_MODIFIED)
        return self._edited(message, markup)

    def _edited(self, message: Message, markup: dict | None, **content: Any) -> dict:
        """Apply an edit; returns the edited Message object."""
        vars(message).update(
            content, reply_markup=markup, edits=message.edits + 1, edit_date=int(time.time())
        )
        return message.to_dict()

    def _on_delete_message(self, params: dict) -> bool:
        message = self._editable(params, "message to delete not found")
        if not message.from_bot and message.chat.get("type") != "private":
            raise bad("message can't be deleted")  # in groups only an admin bot may delete others' messages
        message.deleted = True
        return True

    def _on_get_file(self, params: dict) -> dict:
        """A file a user sent, with a path valid for /file/bot<token>/<path> (20 MB at most)."""
        file_id = str(params.get("file_id") or "")
        data = self._user_files.get(file_id)
        if data is None:
            raise bad("invalid file_id")
        if len(data) > MAX_GET_FILE:
            raise bad("file is too big")
        path = f"documents/file_{next(self._ids)}.txt"
        self._file_paths[path] = file_id
        return {
            "file_id": file_id,
            "file_unique_id": "UF" + file_id,
            "file_size": len(data),
            "file_path": path,
        }

    async def _download(self, request: web.Request) -> web.Response:
        """GET /file/bot<token>/<file_path>: the bytes of a file getFile described."""
        path = request.match_info["path"]
        with self._lock:
            file_id = self._file_paths.get(path) if request.match_info["token"] == self.token else None
            if file_id is not None:
                self.downloads.append(path)
        if file_id is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=self._user_files[file_id], content_type="application/octet-stream")

    def _on_answer_callback_query(self, params: dict) -> bool:
        query_id = str(params.get("callback_query_id"))
        if self._queries.get(query_id) is not False:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        self._queries[query_id] = True
        return True

    def _on_send_chat_action(self, params: dict) -> bool:
        self._chat_id(params)
        return True

    def _on_get_me(self, params: dict) -> dict:
        return self.bot_user | {"can_join_groups": True, "supports_inline_queries": False}

    def _on_get_my_commands(self, params: dict) -> list:
        return self._menus.get(_menu_key(params), [])

    def _on_delete_webhook(self, params: dict) -> bool:
        """Also stands in for close and logOut: there is nothing to undo here."""
        return True

    _on_close = _on_log_out = _on_delete_webhook

    def _file(self, params: dict, ref: Any, kind: str, method: str) -> Any:
        """The Telegram object for an uploaded file, an attach:// part, a file_id sent earlier, or
        (local mode only) a file:// path; every new file is recorded in ``received``."""
        if isinstance(ref, str) and ref.startswith("attach://"):
            ref = params.get(ref.removeprefix("attach://"))
        if isinstance(ref, str) and ref.startswith("file://") and self.local_mode:
            ref = _local_file(ref)
        if isinstance(ref, str):
            if ref not in self._files:  # no internet here, so URLs are unknown too
                raise bad("wrong file identifier/HTTP URL specified")
            stored_kind, obj = self._files[ref]
            if stored_kind != kind and not (kind == "document" and stored_kind in ("video", "audio")):
                raise bad(f"can't use file of type {stored_kind.capitalize()} as {kind.capitalize()}")
            return obj
        if not isinstance(ref, Upload):
            raise bad(f"there is no {kind} in the request")
        if not ref.data:
            raise bad("file must be non-empty")
        if kind == "photo" and len(ref.data) > self.max_photo_size:
            raise bad("PHOTO_INVALID_DIMENSIONS: photo is too big, send it as a document")
        number = next(self._ids)
        info = {"file_id": f"FILE{number}-{kind}", "file_unique_id": f"U{number}", "file_size": len(ref.data)}
        named = info | {
            "file_name": ref.filename,
            "mime_type": ref.content_type or "application/octet-stream",
        }
        if kind == "photo":
            obj: Any = [info | {"width": 800, "height": 600}]
        elif kind == "audio":
            obj = named | {"duration": 12}
        else:
            obj = named | ({"width": 720, "height": 1280, "duration": 1} if kind == "video" else {})
        self._files[info["file_id"]] = (kind, obj)
        digest, chat_id = hashlib.sha256(ref.data).hexdigest(), self._chat_id(params)
        by_path = ref.content_type == LOCAL
        name, size, file_id = ref.filename, len(ref.data), info["file_id"]
        self.received.append(Received(method, chat_id, kind, name, size, digest, file_id, by_path))
        return obj

    @contextlib.contextmanager
    def _whole_or_nothing(self):
        """A refused request stores no file: forget what its earlier parts recorded."""
        mark = len(self.received)
        try:
            yield
        except ApiError:
            for record in self.received[mark:]:
                self._files.pop(record.file_id, None)
            del self.received[mark:]
            raise

    def _send_media(self, params: dict, kind: str) -> dict:
        chat_id = self._chat_id(params)
        with self._whole_or_nothing():
            media = self._file(params, params.get(kind), kind, f"send{kind.capitalize()}")
            content = parse_content(params, "caption")
            markup = check_markup(params)
        return self._new_message(
            chat_id, media_type=kind, media=media, reply_markup=markup, **content
        ).to_dict()

    _on_send_document = functools.partialmethod(_send_media, kind="document")
    _on_send_photo = functools.partialmethod(_send_media, kind="photo")
    _on_send_video = functools.partialmethod(_send_media, kind="video")
    _on_send_audio = functools.partialmethod(_send_media, kind="audio")

    def _on_send_media_group(self, params: dict) -> list[dict]:
        chat_id, items = self._chat_id(params), params.get("media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise bad("an album must have 2-10 media")
        kinds = {item.get("type") for item in items}
        if not kinds <= {"photo", "video", "document", "audio"}:
            raise bad(f"unsupported album media type in {sorted(map(str, kinds))}")
        for alone in ("document", "audio"):  # Telegram: these only form albums of their own kind
            if alone in kinds and len(kinds) > 1:
                raise bad(f"{alone} can't be mixed with other media types")
        checked = []
        # All are checked before any is stored: Telegram sends an album whole or not at all.
        with self._whole_or_nothing():
            for item in items:
                media = self._file(params, item.get("media"), item["type"], "sendMediaGroup")
                checked.append(parse_content(item, "caption") | {"media_type": item["type"], "media": media})
        group = str(13_000_000_000 + next(self._ids))
        return [self._new_message(chat_id, media_group_id=group, **fields).to_dict() for fields in checked]


LOCAL = "local/path"  # the content type recorded for a file a local server read from disk


def _local_file(uri: str) -> Upload:
    """What a local Bot API server reads for a file:// URI; 400 when it cannot."""
    path = Path(url2pathname(urlsplit(uri).path))
    try:
        data = path.read_bytes()
    except OSError:
        raise bad("wrong file identifier/HTTP URL specified") from None
    if len(data) > MAX_LOCAL_FILE:
        raise bad("file is too big")
    return Upload(path.name, LOCAL, data)


def _weight(method: str, params: dict) -> int:
    """Messages a request puts into a chat: an album counts each item."""
    media = params.get("media")
    valid = method == "sendMediaGroup" and isinstance(media, list) and 2 <= len(media) <= 10
    return len(media) if valid else 1  # a malformed album is refused (400) before it counts


def _expire(window: deque, before: float) -> None:
    """Drop send times older than ``before``."""
    while window and window[0] <= before:
        window.popleft()


def _menu_key(params: dict) -> str:
    """Commands are kept per scope and language, as Telegram keeps them."""
    scope = params.get("scope") or {"type": "default"}
    return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)


def _camel(snake: str) -> str:
    """``send_message`` -> ``sendMessage``."""
    return re.sub(r"_([a-z])", lambda m: m[1].upper(), snake)
