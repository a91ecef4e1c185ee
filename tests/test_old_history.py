"""Years of history never stop a start: 40,000 old jobs are pruned by the real bot (issue 20, item 5).

A 10-minute stories schedule makes about 52,000 jobs a year; PostgreSQL refuses a query
with more than 32,767 arguments, so pruning them by a list of ids failed the start-up.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from db import close_database, queries
from db.archive_state import add_highlight, members_with_paths
from db.models import Account, Job, MediaItem
from tests.fakes.telegram import FakeTelegram
from tests.harness import OWNER, TOKEN, make_settings, running_bot
from tests.history import analyze, insert_children, insert_highlight_items, insert_jobs

OLD = 40_000  # top-level jobs older than JOB_HISTORY_DAYS: more than PostgreSQL's 32,767 arguments
SYNCALLS = 2_000  # of them sync-alls, each with three per-account jobs


async def test_a_start_with_40000_old_jobs_prunes_them_and_keeps_the_rest(any_db, data_dir, caplog):
    account = await Account.create(platform="instagram", username="alice")
    long_ago = queries.now() - timedelta(days=400)
    await insert_jobs(any_db, OLD - SYNCALLS, finished_at=long_ago, account_id=account.id)
    await insert_jobs(any_db, SYNCALLS, finished_at=long_ago, kind="syncall")
    await insert_children(any_db, per_parent=3)
    # What must stay: recent history, and old jobs that never finished (resumable).
    await insert_jobs(any_db, 500, finished_at=queries.now() - timedelta(days=3), account_id=account.id)
    paused = await Job.create(kind="download", account=account, state="paused", phases=["posts"])
    recent_sync = await Job.create(kind="syncall", state="completed", finished_at=queries.now())
    recent_child = await Job.create(
        kind="download", account=account, parent=recent_sync, state="completed", finished_at=long_ago
    )
    await queries.record_media(
        platform="instagram", media_id="1", kind="post", account=account, taken_at=None, path="x", size=1
    )
    assert await Job.all().count() == OLD + 3 * SYNCALLS + 503
    await close_database()

    caplog.set_level(logging.INFO, logger="bot")
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(data_dir, telegram=telegram, database_url=any_db, job_history_days=90)
        async with running_bot(settings):
            mark = len(telegram.calls)
            telegram.send_message(OWNER, "/help")
            await telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=30)
            left = await Job.all().count()
            wanted = [paused.id, recent_sync.id, recent_child.id]
            kept = set(await Job.filter(id__in=wanted).values_list("id", flat=True))
            archived = await MediaItem.all().count()

    assert left == 503 and kept == {paused.id, recent_sync.id, recent_child.id}
    assert archived == 1  # archive rows are kept forever
    assert f"pruned {OLD} finished job(s) older than 90 days" in caplog.text
    assert "Traceback" not in caplog.text


async def test_highlights_of_many_years_are_read_in_batches(any_db):
    """members_with_paths once put every highlight item of an account in one IN (...)."""
    account = await Account.create(platform="instagram", username="alice")
    highlight = await add_highlight(account, "17", "Trips", "Trips")
    count = 33_000
    await insert_highlight_items(any_db, highlight.id, account.id, count)
    await analyze(any_db)
    rows = await members_with_paths(account)
    assert len(rows) == count // 2
    assert rows[0][:3] == ("Trips", "0", "p/0")
