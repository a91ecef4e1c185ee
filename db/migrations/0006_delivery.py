from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("archive", "0005_account_phases")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Delivery",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("chat_id", fields.BigIntField()),
                ("platform", fields.CharField(max_length=16)),
                ("media_id", fields.CharField(max_length=64)),
                ("state", fields.CharField(max_length=16)),
                ("attempts", fields.IntField(default=0)),
                ("error", fields.TextField(null=True, unique=False)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "deliveries",
                "app": "archive",
                "unique_together": (("chat_id", "platform", "media_id"),),
                "pk_attr": "id",
                "table_description": "One archived file in one chat, written once Telegram confirmed it (or it was settled).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="NotifySetting",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("chat_id", fields.BigIntField()),
                (
                    "account",
                    fields.ForeignKeyField(
                        "archive.Account",
                        source_field="account_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notify",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("mode", fields.CharField(default="off", max_length=16)),
                ("since", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "notify_settings",
                "app": "archive",
                "unique_together": (("chat_id", "account"),),
                "pk_attr": "id",
                "table_description": "How one chat hears about one account's new content: media, summary or off.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TelegramFile",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("platform", fields.CharField(max_length=16)),
                ("media_id", fields.CharField(max_length=64)),
                ("sent_as", fields.CharField(max_length=16)),
                ("file_id", fields.CharField(max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "telegram_files",
                "app": "archive",
                "unique_together": (("platform", "media_id", "sent_as"),),
                "pk_attr": "id",
                "table_description": "A file_id Telegram gave for an uploaded archive file, reused for every later send.",
            },
            bases=["Model"],
        ),
    ]
