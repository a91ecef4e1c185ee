"""Indexes for the web gallery: an account's grid of posts, and the caption search.

- Both backends: (account_id, kind, group_id, taken_at, media_id) covers the grid's
  GROUP BY group_id with its newest time and first file, so a page of tiles reads
  the index, not the table.
- PostgreSQL: a trigram index (pg_trgm) on the captions, so the search's ILIKE
  '%words%' reads the index instead of every caption. Where the extension cannot be
  created (no pg_trgm package, no right to create it), the search scans, as before.
- SQLite: (caption, taken_at, id), so the search's LIKE scan reads this narrow index
  instead of the wide table (half the time; SQLite has no trigram index of its own
  without a full-text table).
"""

import logging

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.migrations.schema_editor.base_postgres import BasePostgresSchemaEditor

log = logging.getLogger(__name__)
GRID = "CREATE INDEX IF NOT EXISTS media_items_gallery_grid ON media_items (account_id, kind, group_id, taken_at, media_id)"
CAPTION_SCAN = "CREATE INDEX IF NOT EXISTS media_items_caption_scan ON media_items (caption, taken_at, id)"
TRIGRAMS = (
    "CREATE INDEX IF NOT EXISTS media_items_caption_trgm ON media_items USING gin (caption gin_trgm_ops)"
)


async def caption_index(apps, editor) -> None:
    """SQLite: the narrow scan; PostgreSQL: the trigram index, when pg_trgm is there or may be created."""
    if not isinstance(editor, BasePostgresSchemaEditor):
        await editor.client.execute_script(CAPTION_SCAN)
        return
    client = editor.client
    installed = await client.execute_query_dict("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    if not installed:
        allowed = await client.execute_query_dict(
            "SELECT 1 FROM pg_available_extensions a, pg_roles r WHERE a.name = 'pg_trgm' "
            "AND r.rolname = current_user AND (r.rolsuper OR has_database_privilege(current_database(), 'CREATE'))"
        )
        if not allowed:
            log.warning("caption search scans every caption: PostgreSQL's pg_trgm extension is not available")
            return
        await client.execute_script("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    await client.execute_script(TRIGRAMS)


async def drop_caption_index(apps, editor) -> None:
    """Undo: the index only (the extension may serve others)."""
    postgres = isinstance(editor, BasePostgresSchemaEditor)
    name = "media_items_caption_trgm" if postgres else "media_items_caption_scan"
    await editor.client.execute_script(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("archive", "0010_drop_unused")]

    initial = False

    operations = [
        ops.RunSQL(GRID, reverse_sql="DROP INDEX IF EXISTS media_items_gallery_grid"),
        ops.RunPython(caption_index, drop_caption_index),
    ]
