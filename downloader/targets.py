"""Turn what the user typed (`alice`, `@alice`, a profile URL) into (platform, username).

Validation happens here, before any request is made or any path is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from downloader.errors import InvalidInput

PLATFORMS = ("instagram", "tiktok")
# The phases of each platform, in the order a download runs them.
PHASES = {"instagram": ("posts", "stories", "highlights"), "tiktok": ("videos",)}

# Instagram: letters, digits, "." and "_", at most 30; no leading/trailing or double dot.
_INSTAGRAM_NAME = re.compile(r"^(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9._]{1,30}$")
# TikTok: letters, digits, "_" and ".", 2 to 24; not ending with a dot.
_TIKTOK_NAME = re.compile(r"^(?!.*\.$)[A-Za-z0-9._]{2,24}$")
_INSTAGRAM_HOSTS = {"instagram.com", "www.instagram.com", "m.instagram.com"}
_TIKTOK_HOSTS = {"tiktok.com", "www.tiktok.com", "m.tiktok.com"}
# Instagram paths that are not profiles, so `instagram.com/p/...` is never read as user "p".
_INSTAGRAM_RESERVED = {"p", "reel", "reels", "stories", "explore", "accounts", "tv", "direct"}


@dataclass(frozen=True)
class Target:
    """A validated account reference."""

    platform: str
    username: str

    @property
    def label(self) -> str:
        """How the account is shown to people: "@alice" or "@alice (TikTok)"."""
        return f"@{self.username}" + (" (TikTok)" if self.platform == "tiktok" else "")


def parse_target(text: str, platform: str | None = None) -> Target:
    """Parse `alice`, `@alice` or a profile URL; raise InvalidInput with the reason."""
    text = (text or "").strip()
    if platform is not None:
        platform = platform.strip().lower()
        if platform not in PLATFORMS:
            raise InvalidInput(f"Unknown platform {platform[:20]!r}: use instagram or tiktok.")
    if not text:
        raise InvalidInput("Give an account name, @name or profile URL.")
    if len(text) > 200:
        raise InvalidInput("That is far too long for an account name or profile URL.")
    if "://" in text or text.lower().startswith(("www.", "instagram.com", "tiktok.com")):
        return _parse_url(text, platform)
    return _checked(platform or "instagram", text.removeprefix("@"))


def _parse_url(text: str, platform: str | None) -> Target:
    """Accept only Instagram and TikTok profile URLs."""
    url = urlsplit(text if "://" in text else "https://" + text)
    host = (url.hostname or "").lower()
    segments = [s for s in url.path.split("/") if s]
    if url.scheme not in ("http", "https"):
        raise InvalidInput("Only https:// profile links of Instagram or TikTok are accepted.")
    if host in _INSTAGRAM_HOSTS:
        found = "instagram"
        if not segments or segments[0].lower() in _INSTAGRAM_RESERVED:
            raise InvalidInput("That Instagram link is not a profile: send instagram.com/<name>/.")
        name = segments[0]
    elif host in _TIKTOK_HOSTS:
        found = "tiktok"
        if not segments or not segments[0].startswith("@"):
            raise InvalidInput("That TikTok link is not a profile: send tiktok.com/@<name>.")
        name = segments[0][1:]
    else:
        raise InvalidInput("Only Instagram and TikTok profile links are accepted.")
    if platform is not None and platform != found:
        raise InvalidInput(f"That link is a {found} profile, not {platform}.")
    return _checked(found, name)


def _checked(platform: str, name: str) -> Target:
    """Validate a bare name by the platform's rules."""
    pattern = _INSTAGRAM_NAME if platform == "instagram" else _TIKTOK_NAME
    if not pattern.fullmatch(name):
        rule = (
            "letters, digits, '.' and '_', at most 30"
            if platform == "instagram"
            else "letters, digits, '_' and '.', 2 to 24"
        )
        shown = name[:32] + ("…" if len(name) > 32 else "")
        raise InvalidInput(f"{shown!r} is not a valid {platform} name ({rule}).")
    # Both platforms treat names case-insensitively; one folder per account.
    return Target(platform, name.lower())
