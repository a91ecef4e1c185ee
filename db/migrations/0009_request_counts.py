from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("archive", "0008_workers")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RequestCount",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("hour", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("session", fields.CharField(max_length=64)),
                ("kind", fields.CharField(max_length=32)),
                ("count", fields.IntField(default=0)),
            ],
            options={
                "table": "request_counts",
                "app": "archive",
                "unique_together": (("session", "hour", "kind"),),
                "pk_attr": "id",
                "table_description": "Instagram API requests made with one session, counted per hour (UTC) and kind of request.",
            },
            bases=["Model"],
        ),
        # The old counts did not name a session: "*" makes them count against every session
        # (each of them may have made those requests) until they leave the 24-hour window.
        ops.RunSQL(
            "INSERT INTO request_counts (hour, session, kind, count) "
            "SELECT hour, '*', kind, count FROM request_log",
            reverse_sql="DELETE FROM request_counts",
        ),
        ops.AddField(
            model_name="InstagramSession",
            name="rest_until",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
