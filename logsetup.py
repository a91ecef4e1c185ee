"""Logging: one line per event, with secrets (bot token, cookies) redacted everywhere."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import threading
from pathlib import Path

from config import Settings, SettingsError

# Bot API URLs carry the token (/bot<token>/method); redact any token-shaped text too.
_TOKEN_SHAPE = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
# The web gallery's sign-in links (/web): PTB logs message texts at DEBUG.
_LINK_SHAPE = re.compile(r"/login/[A-Za-z0-9_-]{20,}")
_TRACEBACKS = logging.Formatter()
log = logging.getLogger(__name__)


class RedactSecrets(logging.Filter):
    """Replace known secrets in every record before any handler formats it: in the message,
    the traceback (an exception's text can hold a Bot API URL) and the stack."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def redact(self, text: str) -> str:
        """``text`` without the secrets and anything shaped like a bot token."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        text = _LINK_SHAPE.sub("/login/[redacted]", text)
        return _TOKEN_SHAPE.sub("[redacted-token]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _rejected_token(record.exc_info[1]):
            return False  # wiring.run_bot explains a rejected token in one sentence instead
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            # Formatted here, redacted once; every formatter then prints this text.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _rejected_token(exc: BaseException | None) -> bool:
    """Telegram's InvalidToken, looked up without importing telegram (the terminal commands never do)."""
    error = sys.modules.get("telegram.error")  # not loaded: nothing can have raised it
    return error is not None and isinstance(exc, error.InvalidToken)


def configure_logging(settings: Settings) -> None:
    """Log to stderr (or LOG_FILE) at LOG_LEVEL; keep chatty libraries quiet."""
    handler = _handler(settings.log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    handler.addFilter(RedactSecrets([token]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    for name in ("httpx", "httpcore", "apscheduler", "tortoise", "aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Uncaught exceptions go through the same handler (and filter) instead of straight to stderr.
    sys.excepthook = _uncaught
    threading.excepthook = lambda hook: (
        None if hook.exc_type is SystemExit else _uncaught(hook.exc_type, hook.exc_value, hook.exc_traceback)
    )


def _uncaught(kind, value, tb) -> None:
    log.critical("unexpected error", exc_info=(kind, value, tb))


def _handler(log_file: Path | None) -> logging.Handler:
    """stderr (journald keeps it), or LOG_FILE, reopened when it was moved away (logrotate)."""
    if log_file is None:
        return logging.StreamHandler()
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        return logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"LOG_FILE {log_file} cannot be written ({exc.strerror}).") from None
