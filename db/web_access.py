"""Sign-in links and sessions of the web gallery, kept in the settings table.

A link token is stored only as a hash, so the database never holds a usable link;
ending every session bumps an epoch that each session cookie carries.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from db.models import Setting

LINK_PREFIX = "weblink:"
LINK_LIFETIME = 600.0  # seconds a /web link may be opened
EPOCH_KEY = "web_session_epoch"
SECRET_KEY = "web_secret"


def _key(token: str) -> str:
    return LINK_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:48]


async def new_link_token(lifetime: float = LINK_LIFETIME) -> str:
    """A fresh one-time sign-in token (only its hash is stored); old expired ones go."""
    now = time.time()
    for row in await Setting.filter(key__startswith=LINK_PREFIX):
        if (row.value or {}).get("expires", 0) < now:
            await Setting.filter(key=row.key).delete()
    token = secrets.token_urlsafe(32)
    await Setting.create(key=_key(token), value={"expires": now + lifetime})
    return token


async def spend_link_token(token: str) -> str:
    """Spend a sign-in token: "ok", "expired" or "unknown" (never issued, or already used)."""
    if not token or len(token) > 100:
        return "unknown"
    row = await Setting.get_or_none(key=_key(token))
    if row is None:
        return "unknown"
    # Only the request that deletes the row signs in: two tabs opening one link get one session.
    if not await Setting.filter(key=row.key).delete():
        return "unknown"
    return "ok" if (row.value or {}).get("expires", 0) >= time.time() else "expired"


async def session_epoch() -> int:
    """The current session generation; a cookie of an older one is refused."""
    row = await Setting.get_or_none(key=EPOCH_KEY)
    return int(row.value["epoch"]) if row is not None else 0


async def end_all_sessions() -> int:
    """Sign every browser out (and spend every open link); returns the new epoch."""
    epoch = await session_epoch() + 1
    await Setting.update_or_create(key=EPOCH_KEY, defaults={"value": {"epoch": epoch}})
    await Setting.filter(key__startswith=LINK_PREFIX).delete()
    return epoch


async def cookie_secret() -> bytes:
    """The key that signs session cookies, made once and kept (sessions survive restarts)."""
    row = await Setting.get_or_none(key=SECRET_KEY)
    if row is None:
        value = {"hex": secrets.token_hex(32)}  # a JSON field: a bare string would be read as JSON
        row, _ = await Setting.get_or_create(key=SECRET_KEY, defaults={"value": value})
    return bytes.fromhex(row.value["hex"])
