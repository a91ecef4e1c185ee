"""Database tables: tracked accounts, archived media, jobs and key/value settings."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Account(Model):
    """An account the owner tracks (or downloaded once without tracking)."""

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
    # Phases whose listing once reached the end: only then may a sync stop early
    # at a run of archived items (an interrupted first download must not).
    complete_phases = fields.JSONField(default=list)
    # Phases /syncall and the schedules run for this account, chosen by the owner
    # (/add alice stories,highlights or the /list buttons); empty means all of them.
    phases = fields.JSONField(default=list)

    class Meta:
        table = "accounts"
        unique_together = (("platform", "username"),)


class MediaItem(Model):
    """One archived file, unique per (platform, media id)."""

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
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "media_items"
        unique_together = (("platform", "media_id"),)


class Job(Model):
    """A download of one account (kind "download") or of every account ("syncall")."""

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
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"


class Setting(Model):
    """A key/value setting changed from chat (the schedule, quiet mode...)."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.JSONField()
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "settings"
