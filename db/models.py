"""Database tables: tracked accounts, archived media, jobs and key/value settings."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Account(Model):
    """An account the owner tracks (or downloaded once without tracking)."""

    # Without this tortoise reads this file's source at import to find "#:" field comments
    # (there are none): 0.17 s of CPU at every start of the bot, the command line and workers.
    _no_comments = True

    id = fields.IntField(primary_key=True)
    platform = fields.CharField(max_length=16)
    username = fields.CharField(max_length=64)
    platform_user_id = fields.CharField(max_length=128, null=True)
    display_name = fields.CharField(max_length=255, default="")
    tracked = fields.BooleanField(default=True)
    added_by = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    last_sync_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    # Per incremental phase: the newest item time (epoch seconds) up to which a listing
    # once ran to a clean end. A sync may stop early only below this boundary.
    boundaries = fields.JSONField(default=dict)
    # "Has anything changed" stamps a source reported in clean runs (see sources.base.Known).
    stamps = fields.JSONField(default=dict)
    # One writer per account: the process (Process.token) holding it, until when.
    lease_owner = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)
    # Phases /syncall and the schedules run for this account, chosen by the owner
    # (/add alice stories,highlights or the /list buttons); empty means all of them.
    phases = fields.JSONField(default=list)
    # The platform says the account is gone: "deleted", "banned" or "private" (not followed),
    # since when; its syncs back off to once a day. None while it answers normally.
    gone = fields.CharField(max_length=16, null=True)
    gone_since = fields.DatetimeField(null=True)
    checked_at = fields.DatetimeField(null=True)  # the last full timeline check (/check)

    class Meta:
        table = "accounts"
        unique_together = (("platform", "username"),)


class MediaItem(Model):
    """One archived file, unique per (platform, media id)."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    platform = fields.CharField(max_length=16)
    media_id = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=16)  # post | reel | story | highlight | video
    account = fields.ForeignKeyField(
        "archive.Account", related_name="media", null=True, on_delete=fields.SET_NULL
    )
    taken_at = fields.DatetimeField(null=True)
    path = fields.CharField(max_length=1024)  # relative to DATA_DIR
    size = fields.BigIntField(default=0)
    # The job that downloaded it: a job resumed after a crash counts these as its own.
    job_id = fields.IntField(null=True)
    # The post a file belongs to (shortcode / video id): files of one post form one album.
    group_id = fields.CharField(max_length=64, null=True)
    group_size = fields.IntField(null=True)  # files the post has: all of them archived = post archived
    caption = fields.TextField(null=True)
    link = fields.CharField(max_length=512, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # First seen missing from the platform (/check): the files stay; None while it is listed.
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "media_items"
        unique_together = (("platform", "media_id"),)
        # /list counts per account and kind; newest-first reads (delivery, /latest) by account.
        # (Indexes, not db_index=True: altering a column makes SQLite rebuild the table.)
        indexes = (("account_id", "kind"), ("account_id", "taken_at"), ("job_id",), ("platform", "group_id"))


class Job(Model):
    """A download of one account (kind "download") or of every account ("syncall")."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=16, default="download")
    account = fields.ForeignKeyField("archive.Account", related_name="jobs", null=True)
    parent = fields.ForeignKeyField("archive.Job", related_name="children", null=True)
    # queued | running | paused | interrupted | completed | failed | cancelled
    state = fields.CharField(max_length=16, default="queued", db_index=True)
    phase = fields.CharField(max_length=16, null=True)
    phases = fields.JSONField(default=list)  # the phases this job runs, in order
    counts = fields.JSONField(default=dict)  # per phase: status, downloaded, archived, failed, ...
    cursor = fields.TextField(null=True)  # the source's resume cursor for `phase`
    chat_id = fields.BigIntField(null=True)
    message_id = fields.BigIntField(null=True)
    error = fields.TextField(null=True)
    # The process (Process.token) running it; a restart interrupts only jobs of dead processes.
    owner = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"
        indexes = (("account_id", "state"), ("parent_id",), ("state", "finished_at"))


class Setting(Model):
    """A key/value setting changed from chat (the schedule, quiet mode...)."""

    _no_comments = True

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "settings"


class FailedItem(Model):
    """A media file or metadata file that could not be written (later runs try again)."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    platform = fields.CharField(max_length=16)
    media_id = fields.CharField(max_length=80)
    account = fields.ForeignKeyField("archive.Account", related_name="failures", on_delete=fields.CASCADE)
    phase = fields.CharField(max_length=16)
    kind = fields.CharField(max_length=16)  # a media kind, or "metadata"
    reason = fields.TextField()
    attempts = fields.IntField(default=1)
    recipe = fields.JSONField()  # what is needed to try again without listing (see downloader.recipes)
    first_failed_at = fields.DatetimeField(auto_now_add=True)
    last_failed_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "failed_items"
        unique_together = (("platform", "media_id"),)
        indexes = (("account_id", "phase"),)


class Highlight(Model):
    """An Instagram highlight: one folder per highlight id, renamed when its title changes."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    platform = fields.CharField(max_length=16)
    highlight_id = fields.CharField(max_length=64)
    account = fields.ForeignKeyField("archive.Account", related_name="highlights", on_delete=fields.CASCADE)
    title = fields.CharField(max_length=255)
    folder = fields.CharField(max_length=255)  # below highlights/, unique per account
    updated_at = fields.DatetimeField(auto_now=True)
    removed_at = fields.DatetimeField(null=True)  # gone from the tray (files kept)

    class Meta:
        table = "highlights"
        unique_together = (("platform", "highlight_id"),)


class HighlightItem(Model):
    """Membership: an archived media id belongs to a highlight."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    highlight = fields.ForeignKeyField("archive.Highlight", related_name="members", on_delete=fields.CASCADE)
    media_id = fields.CharField(max_length=64)
    added_at = fields.DatetimeField(auto_now_add=True)
    removed_at = fields.DatetimeField(null=True)  # taken out of the highlight (file kept)

    class Meta:
        table = "highlight_items"
        unique_together = (("highlight_id", "media_id"),)


class Process(Model):
    """A live bot or command-line process (its heartbeat keeps its account leases)."""

    _no_comments = True

    token = fields.CharField(max_length=64, primary_key=True)
    kind = fields.CharField(max_length=16)  # bot | cli
    host = fields.CharField(max_length=255)
    pid = fields.IntField()
    started_at = fields.DatetimeField(auto_now_add=True)
    seen_at = fields.DatetimeField()
    # Workers only: their name, platforms, Instagram session and current job (for /status).
    detail = fields.JSONField(null=True)

    class Meta:
        table = "processes"


class InstagramSession(Model):
    """One Instagram login shared by workers: who runs a job with it now, and its checkpoint latch."""

    _no_comments = True

    name = fields.CharField(max_length=64, primary_key=True)  # the account name, not a file path
    owner = fields.CharField(max_length=64, null=True)  # Process.token running a job with it
    until = fields.DatetimeField(null=True)
    checkpoint = fields.TextField(null=True)  # the sentence, while Instagram wants a security check
    updated_at = fields.DatetimeField(auto_now=True)
    # Instagram told a process using this session to wait (429): no process asks before this.
    rest_until = fields.DatetimeField(null=True)

    class Meta:
        table = "instagram_sessions"


class RequestCount(Model):
    """Instagram API requests made with one session, counted per hour (UTC) and kind of request."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    hour = fields.DatetimeField()  # the start of the hour the requests were made in
    # The login account name (InstagramSession.name), empty without a login, or "*" for the
    # requests counted before sessions were told apart: those count against every session.
    session = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=32)  # profile, timeline, stories, reels, ...
    count = fields.IntField(default=0)

    class Meta:
        table = "request_counts"
        # Session first: every read is one session's (or all live sessions') last 24 hours.
        unique_together = (("session", "hour", "kind"),)


class NotifySetting(Model):
    """How one chat hears about one account's new content: media, summary or off."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    chat_id = fields.BigIntField()
    account = fields.ForeignKeyField("archive.Account", related_name="notify", on_delete=fields.CASCADE)
    mode = fields.CharField(max_length=16, default="off")  # media | summary | off
    # Only files archived after this moment are delivered: turning media on never dumps the archive.
    since = fields.DatetimeField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "notify_settings"
        unique_together = (("chat_id", "account"),)


class Delivery(Model):
    """One archived file in one chat, written once Telegram confirmed it (or it was settled).

    Keyed by (platform, media id), not by row: a file deleted and downloaded again is not new.
    ``state``: sent | skipped (over the backlog limit) | too_large (a text line instead) |
    failed (retried later) | given_up (failed too often; reported once) | unconfirmed (sent,
    but Telegram's answer was lost: it may have arrived, so it is not sent again).
    """

    _no_comments = True

    id = fields.IntField(primary_key=True)
    chat_id = fields.BigIntField()
    platform = fields.CharField(max_length=16)
    media_id = fields.CharField(max_length=64)
    state = fields.CharField(max_length=16)
    attempts = fields.IntField(default=0)
    error = fields.TextField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "deliveries"
        unique_together = (("chat_id", "platform", "media_id"),)


class TelegramFile(Model):
    """A file_id Telegram gave for an uploaded archive file, reused for every later send."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    platform = fields.CharField(max_length=16)
    media_id = fields.CharField(max_length=64)
    sent_as = fields.CharField(max_length=16)  # photo | video | document
    file_id = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "telegram_files"
        unique_together = (("platform", "media_id", "sent_as"),)


class AccountRename(Model):
    """A rename the platform reported for an account (same id, new name): its folder moves with it.

    ``state`` "pending" is written before the folder is renamed, so a crash in between is
    finished at the next start (downloader/renames.py); "done" rows are the former names."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    account = fields.ForeignKeyField("archive.Account", related_name="renames", on_delete=fields.CASCADE)
    platform = fields.CharField(max_length=16)
    old_username = fields.CharField(max_length=64)
    new_username = fields.CharField(max_length=64)
    state = fields.CharField(max_length=16, default="pending")  # pending | done | abandoned
    created_at = fields.DatetimeField(auto_now_add=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "account_renames"
        indexes = (("platform", "old_username"), ("state",))


class ProfileChange(Model):
    """One observed value of a profile field (the first sighting too), kept forever.

    ``field``: full_name | biography | external_url | is_private | followers | posts | picture.
    A picture's ``value`` is its identity (the CDN file name) and ``path`` the file kept."""

    _no_comments = True

    id = fields.IntField(primary_key=True)
    account = fields.ForeignKeyField(
        "archive.Account", related_name="profile_changes", on_delete=fields.CASCADE
    )
    field = fields.CharField(max_length=32)
    value = fields.TextField(null=True)
    path = fields.CharField(max_length=1024, null=True)  # relative to DATA_DIR (pictures)
    initial = fields.BooleanField(default=False)  # the first value seen: not a change
    seen_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "profile_changes"
        indexes = (("account_id", "field"),)
