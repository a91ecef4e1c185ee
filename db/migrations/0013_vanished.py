from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    """What vanished on the platform: deleted posts, removed highlights and items, gone accounts."""

    dependencies = [("archive", "0012_account_history")]

    initial = False

    operations = [
        ops.AddField(
            model_name="MediaItem",
            name="deleted_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Highlight",
            name="removed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="HighlightItem",
            name="removed_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Account",
            name="gone",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="Account",
            name="gone_since",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Account",
            name="checked_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
