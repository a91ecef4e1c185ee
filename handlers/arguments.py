"""Parsing of command words: `<user or URL> [instagram|tiktok] [posts|stories|highlights]`.

Validation happens here, before any request is made or any row is written; every
mistake becomes an InvalidInput whose sentence ends with the command's usage line.
"""

from __future__ import annotations

from dataclasses import dataclass

from downloader.errors import InvalidInput
from downloader.targets import PHASES, PLATFORMS, Target, parse_target

USAGE = {
    "download": "Usage: /download <user or profile URL> [instagram|tiktok] [posts|stories|highlights]",
    "add": "Usage: /add <user or URL> [instagram|tiktok] [posts,stories,highlights] [media|summary|off]",
    "remove": "Usage: /remove <user or profile URL> [instagram|tiktok]",
    "pause": "Usage: /pause [user]",
    "resume": "Usage: /resume [user]",
    "cancel": "Usage: /cancel [user]",
    "info": "Usage: /info <user or profile URL> [instagram|tiktok]",
    "check": "Usage: /check <Instagram user or profile URL>",
}
# What people type for a phase (singular forms too).
PHASE_WORDS = {
    "posts": "posts",
    "post": "posts",
    "stories": "stories",
    "story": "stories",
    "highlights": "highlights",
    "highlight": "highlights",
    "videos": "videos",
    "video": "videos",
}


@dataclass(frozen=True)
class Request:
    """A validated account and, when the user named some, the phases they asked for."""

    target: Target
    phases: tuple[str, ...] | None = None


def parse_args(args: list[str], command: str) -> Target:
    """`<user or URL> [platform]` -> Target; InvalidInput carries the usage line."""
    if not args or len(args) > 2:
        raise InvalidInput(USAGE[command])
    try:
        return parse_target(args[0], args[1] if len(args) == 2 else None)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.sentence}\n{USAGE[command]}") from None


def parse_request(args: list[str], command: str, *, many: bool) -> Request:
    """`<user or URL>` then, in any order, at most one platform word and phase words.

    ``many``: a comma-separated list of phases is allowed (/add), else one phase (/download)."""
    if not args or len(args) > 3:
        raise InvalidInput(USAGE[command])
    platform, phases = None, []
    for word in (w.strip().lower() for w in args[1:]):
        if word in PLATFORMS and platform is None:
            platform = word
            continue
        names = [part for part in word.split(",") if part]
        if not names or phases or not all(name in PHASE_WORDS for name in names):
            raise InvalidInput(_unknown(word, command))
        phases = [PHASE_WORDS[name] for name in names]
    try:
        target = parse_target(args[0], platform)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.sentence}\n{USAGE[command]}") from None
    if not phases:
        return Request(target)
    return Request(target, _checked_phases(target, phases, many, command))


def _checked_phases(target: Target, phases: list[str], many: bool, command: str) -> tuple[str, ...]:
    """The phases in run order, each one the platform has; one only unless ``many``."""
    own = PHASES[target.platform]
    foreign = [p for p in phases if p not in own]
    if foreign:
        raise InvalidInput(f"{target.label} has {_listing(own)}, not {foreign[0]}.\n{USAGE[command]}")
    chosen = tuple(p for p in own if p in phases)
    if len(chosen) > 1 and not many:
        raise InvalidInput(f"Name one of {_listing(own, 'or')}.\n{USAGE[command]}")
    return chosen


def _unknown(word: str, command: str) -> str:
    shown = word[:20] + ("…" if len(word) > 20 else "")
    return (
        f"Unknown word {shown!r}: after the account give instagram or tiktok, and "
        f"posts, stories or highlights.\n{USAGE[command]}"
    )


def _listing(words: tuple[str, ...], last: str = "and") -> str:
    """("posts", "stories", "highlights") -> "posts, stories and highlights"."""
    if len(words) == 1:
        return f"only {words[0]}"
    return f"{', '.join(words[:-1])} {last} {words[-1]}"
