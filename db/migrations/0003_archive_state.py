from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("archive", "0002_archive_details")]

    initial = False

    operations = [
        ops.CreateModel(
            name="FailedItem",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("platform", fields.CharField(max_length=16)),
                ("media_id", fields.CharField(max_length=80)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="failures",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("phase", fields.CharField(max_length=16)),
                ("kind", fields.CharField(max_length=16)),
                ("reason", fields.TextField(unique=False)),
                ("attempts", fields.IntField(default=1)),
                (
                    "recipe",
                    fields.JSONField(encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                ("first_failed_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("last_failed_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "failed_items",
                "app": "archive",
                "unique_together": (("platform", "media_id"),),
                "indexes": [Index(fields=["account_id", "phase"])],
                "pk_attr": "id",
                "table_description": "A media file or metadata file that could not be written (later runs try again).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Highlight",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("platform", fields.CharField(max_length=16)),
                ("highlight_id", fields.CharField(max_length=64)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="highlights",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(max_length=255)),
                ("folder", fields.CharField(max_length=255)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "highlights",
                "app": "archive",
                "unique_together": (("platform", "highlight_id"),),
                "pk_attr": "id",
                "table_description": "An Instagram highlight: one folder per highlight id, renamed when its title changes.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="HighlightItem",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "highlight",
                    fields.ForeignKeyField(
                        "archive.Highlight",
                        source_field="highlight_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="members",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("media_id", fields.CharField(max_length=64)),
                ("added_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "highlight_items",
                "app": "archive",
                "unique_together": (("highlight_id", "media_id"),),
                "pk_attr": "id",
                "table_description": "Membership: an archived media id belongs to a highlight.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Process",
            fields=[
                ("token", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ("kind", fields.CharField(max_length=16)),
                ("host", fields.CharField(max_length=255)),
                ("pid", fields.IntField()),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("seen_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "processes",
                "app": "archive",
                "pk_attr": "token",
                "table_description": "A live bot or command-line process (its heartbeat keeps its account leases).",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Account",
            name="boundaries",
            field=fields.JSONField(
                default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
            ),
        ),
        ops.AddField(
            model_name="Account",
            name="lease_owner",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="Account",
            name="lease_until",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Account",
            name="stamps",
            field=fields.JSONField(
                default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
            ),
        ),
        ops.AddField(
            model_name="Job",
            name="owner",
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
