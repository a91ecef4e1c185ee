from tortoise import migrations
from tortoise.migrations import operations as ops


class DropColumn(ops.RemoveField):
    """RemoveField by ALTER TABLE ... DROP COLUMN on every backend.

    tortoise's SQLite editor rebuilds the whole table instead, and with foreign keys on,
    dropping the old accounts table would delete (or orphan) every row that points at it.
    SQLite drops a plain column in place since 3.35."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
        table = model._meta.db_table
        await state_editor._run_sql(f'ALTER TABLE "{table}" DROP COLUMN "{self.name}"')


class Migration(migrations.Migration):
    dependencies = [("archive", "0009_request_counts")]

    initial = False

    operations = [
        # Superseded by request_counts in 0009, which copied its rows.
        ops.DeleteModel(name="RequestLog"),
        # Unused since the per-phase boundaries replaced it.
        DropColumn(model_name="Account", name="complete_phases"),
    ]
