"""Typed access to the services handlers use (PTB's ContextTypes with our bot_data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram.ext import CallbackContext, ContextTypes, ExtBot

if TYPE_CHECKING:
    from downloader.desk import JobDesk
    from downloader.jobs import JobManager
    from downloader.login import LoginSwitch
    from downloader.service import DownloadService
    from handlers.delivery.deliverer import Deliverer
    from handlers.status import StatusBoard


@dataclass
class BotData:
    """Everything handlers need; filled in `post_init`, never through module globals."""

    allowed_user_ids: frozenset[int] = frozenset()
    service: DownloadService | None = None
    jobs: JobManager | None = None
    desk: JobDesk | None = None  # start/pause/resume/cancel, shared with the web gallery
    board: StatusBoard | None = None
    logins: LoginSwitch | None = None
    delivery: Deliverer | None = None
    extras: dict = field(default_factory=dict)


class Context(CallbackContext[ExtBot, dict, dict, BotData]):
    """CallbackContext whose ``bot_data`` is a BotData."""


CONTEXT_TYPES = ContextTypes(context=Context, bot_data=BotData)
