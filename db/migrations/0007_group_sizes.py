from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("archive", "0006_delivery")]

    initial = False

    operations = [
        ops.AddField(
            model_name="MediaItem",
            name="group_size",
            field=fields.IntField(null=True),
        ),
        ops.AddIndex(
            model_name="MediaItem",
            index=Index(fields=["platform", "group_id"]),
        ),
    ]
