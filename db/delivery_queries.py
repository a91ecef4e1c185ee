"""Queries of delivery to chat: notify settings, what is pending, what was sent, file ids."""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.expressions import Subquery

from db.models import Account, Delivery, Job, MediaItem, NotifySetting, TelegramFile
from db.patience import insert_once
from db.queries import BATCH, now

MODES = ("media", "summary", "off")
# States after which a file is never sent to that chat again ("unconfirmed": sent, but
# Telegram's answer was lost, so it may have arrived; not repeated blindly).
SETTLED = ("sent", "skipped", "too_large", "given_up", "unconfirmed")


async def notify_mode(chat_id: int, account: Account) -> str:
    """The chat's mode for an account; "off" when never set."""
    row = await NotifySetting.get_or_none(chat_id=chat_id, account=account)
    return row.mode if row else "off"


async def set_notify_mode(chat_id: int, account: Account, mode: str) -> bool:
    """Set the chat's mode for an account; False when it already was that mode.

    Switching to media or summary restarts ``since``: only what is archived from now on
    is delivered, so turning it on never dumps the archive."""
    row = await NotifySetting.get_or_none(chat_id=chat_id, account=account)
    if row is not None and row.mode == mode:
        return False
    if row is None:
        await NotifySetting.create(chat_id=chat_id, account=account, mode=mode, since=now())
    else:
        row.mode, row.since = mode, now()
        await row.save(update_fields=["mode", "since", "updated_at"])
    return True


async def chat_modes(chat_id: int) -> dict[int, str]:
    """Account id -> mode of every setting in a chat."""
    rows = await NotifySetting.filter(chat_id=chat_id).values_list("account_id", "mode")
    return dict(rows)


async def listeners(account_id: int) -> list[NotifySetting]:
    """Chats that hear about an account (media or summary)."""
    return await NotifySetting.filter(account_id=account_id, mode__in=("media", "summary"))


async def media_settings() -> list[NotifySetting]:
    """Every (chat, account) in media mode, for the pick-up at start."""
    return await NotifySetting.filter(mode="media").order_by("id")


async def accounts_downloading() -> set[int]:
    """Accounts with a download queued or running (in any process)."""
    jobs = Job.filter(kind="download", state__in=("queued", "running"))
    rows = await jobs.values_list("account_id", flat=True)
    return {account_id for account_id in rows if account_id is not None}


async def pending(setting: NotifySetting, platform: str) -> list[MediaItem]:
    """Files of the account archived since the setting was turned on and not settled in its chat
    (failed ones included: they are tried again until given up), oldest first."""
    settled = Delivery.filter(chat_id=setting.chat_id, platform=platform, state__in=SETTLED)
    return (
        await MediaItem.filter(account_id=setting.account_id, created_at__gte=setting.since)
        .exclude(media_id__in=Subquery(settled.values("media_id")))
        .order_by("taken_at", "id")
    )


async def run_sizes(account_id: int, since, job_ids: Iterable[int | None]) -> dict[int | None, int]:
    """Files archived since ``since`` per download run (job; None: no job) of an account."""
    job_ids = list(dict.fromkeys(job_ids))
    ids = [job_id for job_id in job_ids if job_id is not None]
    scope = MediaItem.filter(account_id=account_id, created_at__gte=since)
    sizes: dict[int | None, int] = {}
    for start in range(0, len(ids), BATCH):
        rows = await scope.filter(job_id__in=ids[start : start + BATCH]).values_list("job_id", flat=True)
        for job_id in rows:
            sizes[job_id] = sizes.get(job_id, 0) + 1
    if None in job_ids:
        sizes[None] = await scope.filter(job_id__isnull=True).count()
    return sizes


async def run_files(account_id: int, since, job_id: int | None) -> list[MediaItem]:
    """Every file one run archived for an account since ``since`` (delivered or not), oldest first."""
    scope = MediaItem.filter(account_id=account_id, created_at__gte=since)
    scope = scope.filter(job_id=job_id) if job_id is not None else scope.filter(job_id__isnull=True)
    return await scope.order_by("taken_at", "id")


async def settle(chat_id: int, platform: str, media_ids: Iterable[str], state: str, error: str | None = None):
    """Record the final state of files in a chat (sent, skipped, too large, given up)."""
    for media_id in media_ids:
        await _put(chat_id, platform, media_id, state=state, error=error)


async def failed_attempt(chat_id: int, platform: str, media_id: str, error: str, limit: int) -> bool:
    """Count a failed send; True when this was the last allowed attempt (now given up)."""
    row = await Delivery.get_or_none(chat_id=chat_id, platform=platform, media_id=media_id)
    attempts = (row.attempts if row else 0) + 1
    state = "given_up" if attempts >= limit else "failed"
    await _put(chat_id, platform, media_id, state=state, error=error[:500], attempts=attempts)
    return state == "given_up"


async def _put(chat_id: int, platform: str, media_id: str, **values) -> None:
    """Insert or update one delivery row (unique per chat and file)."""
    updated = await Delivery.filter(chat_id=chat_id, platform=platform, media_id=media_id).update(**values)
    if updated:
        return
    create = lambda: Delivery.create(chat_id=chat_id, platform=platform, media_id=media_id, **values)  # noqa: E731
    # A duplicate key: written meanwhile by another task, or by a first try cut mid-statement.
    update = lambda: Delivery.filter(chat_id=chat_id, platform=platform, media_id=media_id).update(**values)  # noqa: E731
    await insert_once(create, update)


async def file_ids(platform: str, media_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    """(media id, sent as) -> file_id for files Telegram already has."""
    ids = list(dict.fromkeys(media_ids))
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        rows = await TelegramFile.filter(platform=platform, media_id__in=chunk).values_list(
            "media_id", "sent_as", "file_id"
        )
        found.update({(media_id, sent_as): file_id for media_id, sent_as, file_id in rows})
    return found


async def remember_file_id(platform: str, media_id: str, sent_as: str, file_id: str) -> None:
    """Keep the file_id of a first upload (later ones keep the first)."""
    row = {"platform": platform, "media_id": media_id, "sent_as": sent_as, "file_id": file_id}
    create = lambda: TelegramFile.create(**row)  # noqa: E731
    await insert_once(create, _kept_first)  # a duplicate: another chat's send stored it first


async def _kept_first() -> None:
    """The first file_id stays."""


async def job_media(job_id: int) -> list[tuple[str, str | None, str]]:
    """(kind, group id, media id) of every file a job archived, for its summary line."""
    return await MediaItem.filter(job_id=job_id).values_list("kind", "group_id", "media_id")


async def latest_items(account: Account, units: int) -> list[MediaItem]:
    """Files of the ``units`` newest posts, stories or videos of an account, oldest first."""
    chosen: dict[str, list[MediaItem]] = {}
    offset, page = 0, 50
    while True:
        rows = await MediaItem.filter(account=account).order_by("-taken_at", "-id").offset(offset).limit(page)
        for row in rows:
            key = row.group_id or row.media_id
            if key not in chosen and len(chosen) == units:
                break
            chosen.setdefault(key, []).append(row)
        else:
            if len(rows) == page:
                offset += page
                continue
        break
    return [row for group in reversed(chosen.values()) for row in reversed(group)]
