"""Accounts gone from Instagram (deleted, private and not followed): noted with their first date,
one clear sentence instead of a failure, once a day in syncs of all accounts, cleared when back.

Real service and job manager, the fake Instagram."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import queries
from db.models import Account, Job
from downloader.events import summary_line
from tests.fakes.instagram import FakeInstagram, make_profile
from tests.fakes.tiktok import FakeTikTok
from tests.harness import make_settings, media_on_disk, run_download, services_for
from tests.instagram_kit import chat_with_alice


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=4))
    fake.add_profile(make_profile("bob", 1002, posts=2))
    return fake


async def syncall(services) -> tuple[Job, list]:
    """One sync of all tracked accounts, to its end."""
    parent, created = await services.jobs.prepare_syncall(chat_id=None)
    assert created
    results = await services.jobs.start(parent)
    await parent.refresh_from_db()
    return parent, results


async def test_private_then_public_again(instagram, logged_in, data_dir, net):
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    before = media_on_disk(data_dir)
    instagram.profiles["alice"].is_private = True
    net.clear()
    result = await run_download(logged_in, "instagram", "alice")
    assert result.state == "completed"
    assert summary_line(result) == (
        f"@alice is private on Instagram (not followed) since {queries.now():%Y-%m-%d}: nothing to sync, "
        "the archive keeps its files; syncs of all accounts try it once a day."
    )
    assert instagram.calls() == ["GET i:/api/v1/users/1001/info/"]  # the lookup only
    account = await Account.get(username="alice")
    assert account.gone == "private" and account.gone_since is not None
    first = account.gone_since
    assert media_on_disk(data_dir) == before  # nothing removed

    again = await run_download(logged_in, "instagram", "alice")
    assert again.state == "completed" and (await Account.get(username="alice")).gone_since == first

    instagram.profiles["alice"].is_private = False
    back = await run_download(logged_in, "instagram", "alice")
    assert back.state == "completed" and back.error is None
    account = await Account.get(username="alice")
    assert account.gone is None and account.gone_since is None
    assert media_on_disk(data_dir) == before


async def test_a_deleted_account_backs_off_to_once_a_day(instagram, logged_in, data_dir, net):
    for name in ("alice", "bob"):
        await queries.get_or_create_account("instagram", name)
    await Account.all().update(tracked=True)
    _, results = await syncall(logged_in)
    assert {r.username: r.state for r in results} == {"alice": "completed", "bob": "completed"}
    before = media_on_disk(data_dir)

    del instagram.profiles["alice"]
    net.clear()
    _, results = await syncall(logged_in)
    alice = next(r for r in results if r.username == "alice")
    assert alice.state == "completed" and "@alice is deleted on Instagram since " in alice.error
    # What finding out costs (instaloader asks three times before it believes a 404): the
    # batched trays, then alice's lookup by id and by name; from now on, nothing for a day.
    tray, info = "GET i:/api/v1/highlights/{}/highlights_tray/", "GET i:/api/v1/users/{}/info/"
    assert sorted(instagram.calls()) == sorted(
        [  # the accounts' order may vary
            "GET /graphql/query 303a4ae99711322310f25250d988f3b7",
            tray.format(1002),
            *[tray.format(1001)] * 3,
            info.format(1002),
            "POST /api/graphql 29104886249145907",
            *[info.format(1001)] * 3,
            *["GET /api/v1/users/web_profile_info/"] * 3,
        ]
    )
    account = await Account.get(username="alice")
    assert account.gone == "deleted"

    # Within 24 h: a sync of all accounts leaves alice alone, with no request for her.
    net.clear()
    parent, results = await syncall(logged_in)
    assert [r.username for r in results] == ["bob"]
    assert not [c for c in instagram.calls() if "1001" in c or "alice" in c]
    skipped = parent.counts["skipped"]
    assert len(skipped) == 1 and skipped[0].startswith("@alice: deleted on Instagram since ")
    assert "tried once a day" in skipped[0]
    assert media_on_disk(data_dir) == before

    # A day later it is tried again; back on Instagram, the state is cleared.
    await Account.filter(id=account.id).update(last_sync_at=queries.now() - timedelta(hours=25))
    instagram.add_profile(make_profile("alice", 1001, posts=4))
    _, results = await syncall(logged_in)
    assert {r.username for r in results} == {"alice", "bob"}
    assert (await Account.get(username="alice")).gone is None
    assert media_on_disk(data_dir) == before


async def test_a_name_never_seen_still_fails(instagram, logged_in):
    result = await run_download(logged_in, "instagram", "nobody_at_all")
    assert result.state == "failed" and "does not exist" in result.error
    assert (await Account.get(username="nobody_at_all")).gone is None


@pytest.fixture
async def world(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram with alice."""
    async with chat_with_alice(net, data_dir, tmp_path, posts=4) as world:
        yield world


async def test_in_chat_the_state_is_one_sentence_and_list_and_info_show_it(world, data_dir):
    assert "Now tracking" in await world.reply("/add alice")
    world.say("/download alice")
    await world.message_with("Completed:")
    world.instagram.profiles["alice"].is_private = True
    world.say("/download alice")
    today = f"{queries.now():%Y-%m-%d}"
    said = await world.message_with(f"@alice is private on Instagram (not followed) since {today}")
    assert "Failed" not in said.plain
    listing = await world.reply("/list")
    assert f"private on Instagram (not followed) since {today}; the archive keeps its files" in listing
    assert "⚠️" not in listing
    assert f"private on Instagram (not followed) since {today}" in await world.reply("/info alice")


async def test_tiktok_renamed_is_followed_by_its_id_and_gone_when_not_listed(net, data_dir):
    tiktok = FakeTikTok(net, page_size=4)
    tiktok.add_account("dancer.one", videos=3)
    services = await services_for(make_settings(data_dir, net=net))
    try:
        assert (await run_download(services, "tiktok", "dancer.one")).state == "completed"
        before = media_on_disk(data_dir)
        tiktok.rename("dancer.one", "dancer.two")
        listings = tiktok.count_listing()
        result = await run_download(services, "tiktok", "dancer.one")
        assert result.state == "completed" and result.username == "dancer.two"
        moved = {k.replace("tiktok/dancer.one/", "tiktok/dancer.two/"): v for k, v in before.items()}
        assert media_on_disk(data_dir) == moved  # the folder followed; nothing downloaded again
        # The old name (not found), one listing by secUid (its author), the new name's page, the listing.
        assert tiktok.count_user_pages("dancer.two") == 1 and tiktok.count_listing() == listings + 2
        assert (await Account.get(platform="tiktok")).gone is None

        del tiktok.accounts["dancer.two"]
        gone = await run_download(services, "tiktok", "dancer.two")
        assert gone.state == "completed" and gone.error.startswith("@dancer.two is deleted on TikTok since ")
        assert media_on_disk(data_dir) == moved
    finally:
        await services.close()
