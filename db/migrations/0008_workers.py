from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("archive", "0007_group_sizes")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Process",
            name="detail",
            field=fields.JSONField(
                null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
            ),
        ),
        ops.CreateModel(
            name="InstagramSession",
            fields=[
                ("name", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ("owner", fields.CharField(null=True, max_length=64)),
                ("until", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("checkpoint", fields.TextField(null=True, unique=False)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "instagram_sessions",
                "app": "archive",
                "pk_attr": "name",
                "table_description": "One Instagram login shared by workers: who runs a job with it now, and its checkpoint latch.",
            },
            bases=["Model"],
        ),
    ]
