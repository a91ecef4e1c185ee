"""The bot's command list: one source for /help and Telegram's command menu."""

from __future__ import annotations

from telegram import BotCommand

# (command, arguments, one-line description)
COMMANDS: list[tuple[str, str, str]] = [
    (
        "download",
        "<user or URL> [instagram|tiktok] [posts|stories|highlights]",
        "download an account's new posts, stories, highlights or videos (or one of them)",
    ),
    ("syncall", "", "download new content of every tracked account"),
    (
        "add",
        "<user or URL> [instagram|tiktok] [posts,stories,highlights] [media|summary|off]",
        "track an account (optionally only some of its phases; optionally deliver to this chat)",
    ),
    ("remove", "<user or URL>", "stop tracking an account (files kept unless you choose)"),
    ("list", "", "tracked accounts with last sync, archived counts and what they sync"),
    (
        "notify",
        "[<user or URL> media|summary|off]",
        "send new files (media) or one line per run (summary) to this chat",
    ),
    ("latest", "<user or URL> [1-10]", "send an account's newest archived posts or stories"),
    ("info", "<user or URL>", "an account's profile, former names and what changed (private, picture, …)"),
    ("check", "<user or URL>", "list an Instagram account's whole timeline and mark posts deleted there"),
    ("status", "", "what is running, queued and paused; the next scheduled sync"),
    ("pause", "[user]", "pause a running download"),
    ("resume", "[user]", "continue a paused or interrupted download"),
    ("cancel", "[user]", "stop a download (finished files stay)"),
    (
        "schedule",
        "[every 6h | daily 03:00 [TZ] | off | quiet on|off | stories ... | check monthly|off]",
        "show or change the automatic sync",
    ),
    ("login", "", "how to log the bot in to Instagram from this chat"),
    ("web", "[logout]", "a sign-in link to the web gallery (logout: sign every browser out)"),
    ("help", "", "this list"),
]


def bot_commands() -> list[BotCommand]:
    """The menu Telegram shows next to the text field (setMyCommands)."""
    return [BotCommand(name, text[:256]) for name, _, text in COMMANDS]


def help_text() -> str:
    """The /help message (HTML): every command with one line."""
    lines = ["<b>Commands</b>"]
    for name, args, text in COMMANDS:
        shown = f"/{name} {args}".strip()
        lines.append(f"<code>{_escape(shown)}</code> — {_escape(text)}")
    lines.append("")
    lines.append("A bare name means Instagram; send a tiktok.com/@name link or add 'tiktok' for TikTok.")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
