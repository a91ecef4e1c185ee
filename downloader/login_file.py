"""Instagram login files sent by the owner: read safely, validate, store with mode 0600.

Two formats are accepted: a Netscape ``cookies.txt`` exported from a browser, and
the session file ``instaloader --login`` writes (a pickled dict of cookies). A
pickle is never loaded with ``pickle.load``: the unpickler below refuses every
class, so only plain dicts and strings can come out of it. Either way only the
instagram.com cookies are kept, and they are stored as a cookies.txt.
"""

from __future__ import annotations

import io
import os
import pickle
from datetime import UTC, datetime
from pathlib import Path

from downloader.errors import InvalidInput
from downloader.paths import inside

MAX_SIZE = 64 * 1024  # real files are 1-10 KB; anything bigger is not one
REQUIRED = ("sessionid", "csrftoken")
NETSCAPE_HEADER = "# Netscape HTTP Cookie File"
NOT_A_LOGIN_FILE = (
    "That file is neither a cookies.txt (Netscape format, exported from a browser) nor an "
    "instaloader session file; nothing changed (/login explains how to get one)."
)


class BadLoginFile(InvalidInput):
    """The file cannot be a login; ``held_cookies`` says whether it held cookies (secrets) anyway."""

    def __init__(self, sentence: str, held_cookies: bool = False):
        super().__init__(sentence)
        self.held_cookies = held_cookies


def read_login_file(data: bytes) -> dict[str, str]:
    """The instagram.com cookies of an uploaded file; BadLoginFile with one sentence otherwise."""
    if len(data) > MAX_SIZE:
        raise BadLoginFile(too_large_sentence(len(data)))
    # A pickle (protocol 2 and later) starts with 0x80: an instaloader session file.
    cookies = _session_cookies(data) if data[:1] == b"\x80" else _netscape_cookies(data)
    missing = [name for name in REQUIRED if not cookies.get(name)]
    if missing:
        raise BadLoginFile(
            f"That file has no Instagram {' or '.join(missing)} cookie, so it is not a login: log in to "
            "instagram.com in the browser first, then export cookies.txt again. Nothing changed.",
            held_cookies=True,
        )
    return cookies


def too_large_sentence(size: int) -> str:
    """What the owner is told about a file too big to be a login file."""
    return (
        f"That file is {size // 1024} KB; a cookies.txt or session file is at most "
        f"{MAX_SIZE // 1024} KB, so it is not one. Nothing changed."
    )


class _NoClasses(pickle.Unpickler):
    """Builds only what pickle's opcodes make without classes: dicts, lists, strings, numbers."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a session file")


def _session_cookies(data: bytes) -> dict[str, str]:
    """The cookie dict of an instaloader session file, loaded without running any code."""
    try:
        value = _NoClasses(io.BytesIO(data)).load()
    except Exception:  # any malformed or hostile pickle: not a session file
        raise BadLoginFile(NOT_A_LOGIN_FILE) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise BadLoginFile(NOT_A_LOGIN_FILE)
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _netscape_cookies(data: bytes) -> dict[str, str]:
    """The instagram.com cookies of a Netscape cookies.txt (as curl and browser add-ons write it)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadLoginFile(NOT_A_LOGIN_FILE) from None
    rows = [_cookie_row(line) for line in text.splitlines()]
    rows = [row for row in rows if row is not None]
    if not rows:
        raise BadLoginFile(NOT_A_LOGIN_FILE)
    cookies = {name: value for domain, name, value in rows if _is_instagram(domain)}
    if not cookies:
        raise BadLoginFile(
            "That cookies.txt holds no instagram.com cookies: export it from a browser tab on "
            "instagram.com. Nothing changed.",
            held_cookies=True,
        )
    return cookies


def _cookie_row(line: str) -> tuple[str, str, str] | None:
    """(domain, name, value) of one cookie line; None for comments, blanks and junk."""
    line = line.strip("\r\n")
    if line.startswith("#HttpOnly_"):  # how curl and browsers mark HttpOnly cookies
        line = line.removeprefix("#HttpOnly_")
    elif not line.strip() or line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) != 7 or fields[1] not in ("TRUE", "FALSE") or not fields[4].lstrip("-").isdigit():
        return None
    return fields[0], fields[5], fields[6]


def _is_instagram(domain: str) -> bool:
    domain = domain.lower().lstrip(".")
    return domain == "instagram.com" or domain.endswith(".instagram.com")


def cookies_txt(cookies: dict[str, str]) -> str:
    """A Netscape cookies.txt holding ``cookies`` for .instagram.com (what InstagramSource reads)."""
    lines = [NETSCAPE_HEADER, "# Sent to the bot in chat; only the instagram.com cookies are kept.", ""]
    for name, value in sorted(cookies.items()):
        if "\t" in name + value or "\n" in name + value:
            continue  # cannot be written as one line, and no real cookie looks like this
        lines.append(f".instagram.com\tTRUE\t/\tTRUE\t0\t{name}\t{value}")
    return "\n".join(lines) + "\n"


def store_cookies(data_dir: Path, cookies: dict[str, str]) -> Path:
    """Write the cookies to DATA_DIR/sessions/ with mode 0600 (never readable by others, even briefly)."""
    folder = inside(data_dir, "sessions")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    final = inside(folder, f"instagram-cookies-{stamp}.txt")
    temp = final.with_name(f".{final.name}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(cookies_txt(cookies))
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)
    return final
