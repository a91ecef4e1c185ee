from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Job",
            index=Index(fields=["account_id", "state"]),
        ),
        ops.AddIndex(
            model_name="Job",
            index=Index(fields=["parent_id"]),
        ),
        ops.AddIndex(
            model_name="Job",
            index=Index(fields=["state", "finished_at"]),
        ),
        ops.AddField(
            model_name="MediaItem",
            name="caption",
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name="MediaItem",
            name="group_id",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="MediaItem",
            name="link",
            field=fields.CharField(null=True, max_length=512),
        ),
        ops.AddIndex(
            model_name="MediaItem",
            index=Index(fields=["account_id", "kind"]),
        ),
        ops.AddIndex(
            model_name="MediaItem",
            index=Index(fields=["account_id", "taken_at"]),
        ),
        ops.AddIndex(
            model_name="MediaItem",
            index=Index(fields=["job_id"]),
        ),
    ]
