from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("archive", "0011_gallery_indexes")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AccountRename",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="renames",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("platform", fields.CharField(max_length=16)),
                ("old_username", fields.CharField(max_length=64)),
                ("new_username", fields.CharField(max_length=64)),
                ("state", fields.CharField(default="pending", max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("finished_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "account_renames",
                "app": "archive",
                "indexes": [Index(fields=["platform", "old_username"]), Index(fields=["state"])],
                "pk_attr": "id",
                "table_description": "A rename the platform reported for an account (same id, new name).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ProfileChange",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="profile_changes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("field", fields.CharField(max_length=32)),
                ("value", fields.TextField(null=True, unique=False)),
                ("path", fields.CharField(null=True, max_length=1024)),
                ("initial", fields.BooleanField(default=False)),
                ("seen_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "profile_changes",
                "app": "archive",
                "indexes": [Index(fields=["account_id", "field"])],
                "pk_attr": "id",
                "table_description": "One observed value of a profile field, kept forever.",
            },
            bases=["Model"],
        ),
    ]
