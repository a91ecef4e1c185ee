"""Typed settings, read once from the environment and an optional `.env` file.

Only `bot.py` calls `load_settings()`; everything else receives the values it needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_HELP = (
    "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather in Telegram, "
    "then put its token in the environment or in a .env file (see README, 'Quick start')."
)


QUEUE_SCHEMES = ("amqp://", "amqps://", "redis://", "rediss://")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one sentence for a person."""


class Settings(BaseSettings):
    """Every setting of the bot; the names are the ones the README lists."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    allowed_user_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    telegram_api_url: str = "https://api.telegram.org"
    # A local Bot API server (--local): files go by path and may be up to 2000 MB.
    telegram_local_mode: bool = False
    data_dir: Path = Path("./data")
    database_url: str | None = None
    instagram_session_file: Path | None = None
    instagram_cookies_file: Path | None = None
    instagram_username: str | None = None
    instagram_request_delay: str = "2-6"
    # Instagram API requests allowed in any 24 hours (0: no limit); past it, work is deferred.
    instagram_daily_request_budget: int = Field(default=2000, ge=0)
    https_proxy: str | None = None
    no_proxy: str | None = None
    ca_bundle: Path | None = None
    # Media files fetched at once (CDN requests, not API requests); 16 measured fastest (bench/).
    download_concurrency: int = Field(default=16, ge=1, le=32)
    download_retries: int = Field(default=3, ge=0, le=10)
    instagram_stop_after_archived: int = Field(default=4, ge=1)
    write_metadata: bool = True
    status_edit_interval: float = Field(default=3.0, ge=0.5)
    syncall_tiktok_concurrency: int = Field(default=2, ge=1, le=8)
    ytdlp_options: dict = Field(default_factory=dict)
    sync_schedule: str = "daily 03:00"
    schedule_min_interval: int = Field(default=600, ge=1)  # seconds; protects the accounts
    notify_chat_id: int | None = None
    auto_resume: bool = False
    job_history_days: int = Field(default=90, ge=0)  # finished jobs older than this are pruned
    notify_backlog_limit: int = Field(default=20, ge=1, le=1000)  # files per account per run
    notify_retry_interval: float = Field(default=180, ge=1, le=3600)  # seconds between delivery pick-ups
    log_level: str = "INFO"
    # A log file instead of stderr, reopened when logrotate moves it away (see deploy/logrotate).
    log_file: Path | None = None
    # Several machines: a RabbitMQ (amqp://) or Redis (redis://) URL; downloads go to workers.
    queue_url: SecretStr | None = None
    worker_name: str | None = None  # how /status names this worker (default: host-pid)
    # Prefix of the broker's queues: two installs can share one RabbitMQ or Redis.
    queue_name: str = Field(default="archive", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Redis: seconds before the job of a worker that went silent (killed) goes to another worker.
    queue_redeliver_after: float = Field(default=60.0, ge=3.0, le=86_400.0)

    # The web gallery (web/): where it listens (WEB_PORT=0 turns it off), and the address
    # its sign-in links use (a reverse proxy or tailnet name); default http://WEB_HOST:WEB_PORT.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    web_base_url: str | None = None

    @field_validator("allowed_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept "1, 2,3" as well as a list."""
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            try:
                return [int(p) for p in parts if p]
            except ValueError:
                raise ValueError("ALLOWED_USER_IDS must be numbers separated by commas") from None
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("web_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        """http(s)://host[:port] only: the gallery's links start at the root of its host."""
        if value and not re.fullmatch(r"https?://[^\s/?#@]+/?", value.strip()):
            raise ValueError("WEB_BASE_URL must look like https://host or http://host:port, without a path")
        return value.strip() if value else None

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        """DEBUG, INFO, WARNING or ERROR."""
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("instagram_request_delay")
    @classmethod
    def _check_delay(cls, value: str) -> str:
        """Validate now so a typo fails at start-up, not on the first download."""
        parse_delay(value)
        return value

    @property
    def request_delay(self) -> tuple[float, float]:
        """INSTAGRAM_REQUEST_DELAY as (min, max) seconds."""
        return parse_delay(self.instagram_request_delay)

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or an SQLite file inside DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite://{(self.data_dir / 'archive.sqlite3').resolve()}"

    @property
    def web_url(self) -> str:
        """WEB_BASE_URL without its trailing slash, or http://WEB_HOST:WEB_PORT."""
        if self.web_base_url:
            return self.web_base_url.rstrip("/")
        host = f"[{self.web_host}]" if ":" in self.web_host else self.web_host
        return f"http://{host}:{self.web_port}"

    @property
    def notify_chat(self) -> int | None:
        """Where scheduled runs report: NOTIFY_CHAT_ID or the first allowed user."""
        if self.notify_chat_id is not None:
            return self.notify_chat_id
        return self.allowed_user_ids[0] if self.allowed_user_ids else None

    @property
    def queue(self) -> str | None:
        """QUEUE_URL, or None for one process that does everything (the default)."""
        return self.queue_url.get_secret_value().strip() or None if self.queue_url else None

    def check_queue(self) -> None:
        """With QUEUE_URL, refuse what workers on other machines cannot share (one sentence)."""
        if self.queue is None:
            return
        if not self.queue.startswith(QUEUE_SCHEMES):
            raise SettingsError("QUEUE_URL must start with amqp:// (RabbitMQ) or redis:// (Redis).")
        if not self.effective_database_url.startswith(("postgres://", "postgresql://")):
            raise SettingsError(
                "QUEUE_URL needs DATABASE_URL to be a PostgreSQL database (postgres://...): "
                "the bot and its workers share one database, which an SQLite file cannot be."
            )

    def token(self) -> str:
        """The bot token, or a SettingsError explaining how to get one."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value():
            raise SettingsError(TOKEN_HELP)
        return self.telegram_bot_token.get_secret_value().strip()


def parse_delay(text: str) -> tuple[float, float]:
    """Parse "2-6", "3" or "0" into (min, max) seconds."""
    try:
        parts = [float(p) for p in text.strip().split("-")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or parts[0] < 0 or parts[1] < parts[0]:
        raise ValueError("INSTAGRAM_REQUEST_DELAY must look like 2-6 (seconds), 3, or 0")
    return parts[0], parts[1]


def load_settings(env_file: str | None = ".env") -> Settings:
    """Read settings once; a bad value becomes a SettingsError with one clear sentence."""
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"Setting {name} is invalid: {reason}.") from None
