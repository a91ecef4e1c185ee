"""A long sync-all asks for stories in batches chunk by chunk, just before use: answers are
never thrown away after 15 minutes and asked for again account by account (issue 20, item 8)."""

from __future__ import annotations

import json

import pytest

from db.models import Account, Job
from downloader.events import PhaseFinished
from downloader.sources.instagram import InstagramSource
from tests.fakes.instagram import HASH_STORIES, FakeInstagram, make_profile, write_session_file
from tests.harness import make_settings, media_on_disk, services_for

ACCOUNTS = 6
FIRST_PK = 71_000


class Clock:
    """time.monotonic for the source's prefetch cache, moved on by the test."""

    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sweep(net, data_dir, tmp_path):
    """Six tracked accounts with two new stories each (ids known from an earlier sync), logged in."""
    instagram = FakeInstagram(net)
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    services = await services_for(make_settings(data_dir, net=net, instagram_session_file=session))
    for index in range(ACCOUNTS):
        name = f"teller{index}"
        instagram.add_profile(make_profile(name, FIRST_PK + index, posts=0, stories=2, highlights=()))
        await Account.create(
            platform="instagram", username=name, platform_user_id=str(FIRST_PK + index), tracked=True
        )
    clock = Clock()
    services.service.sources["instagram"] = InstagramSource(
        session_file=session,
        request_delay=(0, 0),
        sleep=lambda seconds: None,
        budget=services.budget,
        clock=clock,
    )
    services.service.prefetch_chunk = 3
    try:
        yield instagram, services, clock
    finally:
        await services.close()


def story_batches(instagram: FakeInstagram) -> list[list[str]]:
    """The reel ids of each stories request, in order."""
    return [
        [str(i) for i in json.loads(r.query["variables"])["reel_ids"]]
        for r in instagram.api_requests()
        if r.query.get("query_hash") == HASH_STORIES
    ]


async def test_a_syncall_asks_for_stories_chunk_by_chunk(sweep, data_dir):
    instagram, services, _ = sweep
    job, created = await services.jobs.prepare_syncall(chat_id=None, phases=["stories"])
    assert created
    await services.jobs.start(job)

    batches = story_batches(instagram)
    assert [len(batch) for batch in batches] == [3, 3], batches  # a batch per chunk, none per account
    assert sorted(batches[0] + batches[1]) == [str(FIRST_PK + i) for i in range(ACCOUNTS)]
    assert await Job.filter(parent=job, state="completed").count() == ACCOUNTS
    stories = [name for name in media_on_disk(data_dir) if "/stories/" in name]
    assert len(stories) == 2 * ACCOUNTS == len(set(stories))


async def test_answers_that_went_stale_are_asked_for_again_in_one_batch(sweep, data_dir):
    """The second account takes 16 minutes: the four after it ask again together, not one by one."""
    instagram, services, clock = sweep
    services.service.prefetch_chunk = 50  # every account in the first chunk (the default)
    finished: list[PhaseFinished] = []

    def slow_second_account(event) -> None:
        if isinstance(event, PhaseFinished):
            finished.append(event)
            if len(finished) == 2:  # still its turn: the next account starts after this
                clock.now += 16 * 60

    services.service.subscribe(slow_second_account)
    job, _ = await services.jobs.prepare_syncall(chat_id=None, phases=["stories"])
    await services.jobs.start(job)

    batches = story_batches(instagram)
    assert [len(batch) for batch in batches] == [ACCOUNTS, ACCOUNTS - 2], batches
    assert set(batches[1]) < set(batches[0])
    stories = [name for name in media_on_disk(data_dir) if "/stories/" in name]
    assert len(stories) == 2 * ACCOUNTS == len(set(stories))
