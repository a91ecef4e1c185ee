from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("archive", "0003_archive_state")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RequestLog",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("hour", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("kind", fields.CharField(max_length=32)),
                ("count", fields.IntField(default=0)),
            ],
            options={
                "table": "request_log",
                "app": "archive",
                "unique_together": (("hour", "kind"),),
                "pk_attr": "id",
                "table_description": "Instagram API requests made, counted per hour (UTC) and kind of request.",
            },
            bases=["Model"],
        ),
    ]
