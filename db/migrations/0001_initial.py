from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Account",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("platform", fields.CharField(max_length=16)),
                ("username", fields.CharField(max_length=64)),
                ("platform_user_id", fields.CharField(null=True, max_length=128)),
                ("display_name", fields.CharField(default="", max_length=255)),
                ("tracked", fields.BooleanField(default=True)),
                ("added_by", fields.BigIntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("last_sync_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_error", fields.TextField(null=True, unique=False)),
                (
                    "complete_phases",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
            ],
            options={
                "table": "accounts",
                "app": "archive",
                "unique_together": (("platform", "username"),),
                "pk_attr": "id",
                "table_description": "An account the owner tracks (or downloaded once without tracking).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Job",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("kind", fields.CharField(default="download", max_length=16)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="jobs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "parent",
                    fields.ForeignKeyField(
                        "archive.Job",
                        source_field="parent_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="children",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("state", fields.CharField(default="queued", db_index=True, max_length=16)),
                ("phase", fields.CharField(null=True, max_length=16)),
                (
                    "phases",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "counts",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("cursor", fields.TextField(null=True, unique=False)),
                ("chat_id", fields.BigIntField(null=True)),
                ("message_id", fields.BigIntField(null=True)),
                ("error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("finished_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "jobs",
                "app": "archive",
                "pk_attr": "id",
                "table_description": 'A download of one account (kind "download") or of every account ("syncall").',
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MediaItem",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("platform", fields.CharField(max_length=16)),
                ("media_id", fields.CharField(max_length=64)),
                ("kind", fields.CharField(max_length=16)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="media",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("taken_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("path", fields.CharField(max_length=1024)),
                ("size", fields.BigIntField(default=0)),
                ("job_id", fields.IntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "media_items",
                "app": "archive",
                "unique_together": (("platform", "media_id"),),
                "pk_attr": "id",
                "table_description": "One archived file, unique per (platform, media id).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Setting",
            fields=[
                ("key", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                (
                    "value",
                    fields.JSONField(encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "settings",
                "app": "archive",
                "pk_attr": "key",
                "table_description": "A key/value setting changed from chat (the schedule, quiet mode...).",
            },
            bases=["Model"],
        ),
    ]
