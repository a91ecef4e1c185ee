"""An account renamed on Instagram (same id, new name): the archive follows its id.

Real service, real instaloader, the fake Instagram; a killed `bot.py download` mid-move."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from db.models import Account, AccountRename, MediaItem, NotifySetting, ProfileChange
from downloader.events import Warned
from tests.chat import World
from tests.conftest import pg_skip_reason
from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.harness import (
    BOT,
    make_settings,
    media_on_disk,
    process_env,
    run_download,
    services_for,
)
from tests.instagram_kit import chat_with_alice
from tests.postgres import own_database

SENTENCE = "@alice is now @alice.new — the archive moved with it."


@pytest.fixture
def instagram(net):
    fake = FakeInstagram(net)
    fake.add_profile(make_profile("alice", 1001, posts=14))
    return fake


def renamed(files: dict[str, int]) -> dict[str, int]:
    """The archive's files as they should stand after the move: same names and sizes, new folder."""
    return {name.replace("instagram/alice/", "instagram/alice.new/", 1): size for name, size in files.items()}


async def assert_consistent(data_dir, name: str) -> None:
    """One folder, every row's file on disk under it, the account under that name."""
    base = data_dir / "downloads" / "instagram"
    assert sorted(p.name for p in base.iterdir()) == [name]
    paths = await MediaItem.all().values_list("path", flat=True)
    assert paths and all(p.startswith(f"downloads/instagram/{name}/") for p in paths)
    assert all((data_dir / p).is_file() for p in paths)
    assert await Account.all().values_list("username", flat=True) == [name]


async def run_watched(services, username: str):
    """A download, with the warnings it showed."""
    said: list[str] = []
    unsubscribe = services.service.subscribe(
        lambda e: said.append(e.message) if isinstance(e, Warned) else None
    )
    try:
        return await run_download(services, "instagram", username), said
    finally:
        unsubscribe()


async def test_logged_in_rename_moves_the_archive_and_the_old_name_still_finds_it(
    instagram, logged_in, data_dir, net
):
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    before = media_on_disk(data_dir)
    rows = await MediaItem.all().count()
    instagram.rename("alice", "alice.new")
    net.clear()

    result, said = await run_watched(logged_in, "alice")
    assert result.state == "completed" and result.username == "alice.new"
    assert said == [SENTENCE]
    assert media_on_disk(data_dir) == renamed(before)  # every file kept, none doubled
    assert await MediaItem.all().count() == rows
    await assert_consistent(data_dir, "alice.new")
    assert instagram.cdn_count() == 0  # nothing downloaded again (the profile picture neither)
    picture = await ProfileChange.get(field="picture")
    assert picture.path.startswith("downloads/instagram/alice.new/profile/")
    assert (data_dir / picture.path).is_file()
    # What an unchanged sync costs: the lookup by stored id (which brought the new name), one
    # timeline page, the highlights tray (no story: the lookup said so).
    assert instagram.calls() == [
        "GET i:/api/v1/users/1001/info/",
        "POST /api/graphql 29104886249145907",
        "GET i:/api/v1/highlights/1001/highlights_tray/",
    ]

    # The old name still means this account.
    net.clear()
    again, said = await run_watched(logged_in, "alice")
    assert again.state == "completed" and again.username == "alice.new" and said == []
    assert await Account.all().count() == 1 and instagram.cdn_count() == 0
    assert (await AccountRename.get()).state == "done"


async def test_anonymous_not_found_is_checked_against_the_stored_id(instagram, anonymous, data_dir, net):
    assert (await run_download(anonymous, "instagram", "alice")).state == "completed"
    before = media_on_disk(data_dir)
    instagram.rename("alice", "alice.new")
    net.clear()

    result, said = await run_watched(anonymous, "alice")
    assert result.state == "completed", result
    assert said == [SENTENCE]
    assert media_on_disk(data_dir) == renamed(before)
    await assert_consistent(data_dir, "alice.new")
    assert instagram.cdn_count() == 0
    # The old name's page (not found), the profile by stored id, the new name's page for the
    # listing; archived posts are not described again.
    assert instagram.calls() == ["GET /alice/", "POST /api/graphql 27937681195819736", "GET /alice.new/"]


async def test_a_gone_account_stays_gone_and_keeps_its_files(instagram, anonymous, data_dir, net):
    assert (await run_download(anonymous, "instagram", "alice")).state == "completed"
    before = media_on_disk(data_dir)
    del instagram.profiles["alice"]
    result = await run_download(anonymous, "instagram", "alice")
    assert result.state == "completed" and result.error.startswith("@alice is deleted on Instagram since ")
    assert media_on_disk(data_dir) == before
    assert await AccountRename.all().count() == 0


@pytest.mark.parametrize("stage", ["before", "after"])
async def test_kill_during_the_folder_move_then_a_restart_finishes_it(
    instagram, net, data_dir, tmp_path, stage
):
    settings = make_settings(data_dir, net=net, download_retries=0)
    services = await services_for(settings)
    try:
        assert (await run_download(services, "instagram", "alice")).state == "completed"
    finally:
        await services.close()
    before = media_on_disk(data_dir)
    instagram.rename("alice", "alice.new")

    # `bot.py download alice` in a child whose os.rename of the account folder stops for good
    # right before (or right after) the rename: the move is recorded, the rows not yet updated.
    marker = tmp_path / "stopped"
    child = _child_script(tmp_path, stage, marker)
    env = process_env(data_dir, net, KILL_STAGE=stage, MARKER=str(marker))
    with open(tmp_path / "child.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(child)], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            await _wait_for(marker, process, tmp_path / "child.log")
        finally:
            process.kill()  # kill -9
            process.wait()

    services = await services_for(settings)  # the restart finishes the recorded move
    try:
        await assert_consistent(data_dir, "alice.new")
        assert media_on_disk(data_dir) == renamed(before)
        assert (await AccountRename.get()).state == "done"
        net.clear()
        result = await run_download(services, "instagram", "alice")
        assert result.state == "completed" and result.username == "alice.new"
        assert instagram.cdn_count() == 0 and media_on_disk(data_dir) == renamed(before)
    finally:
        await services.close()


def _child_script(tmp_path, stage: str, marker) -> object:
    script = tmp_path / "child.py"
    script.write_text(
        "import os, runpy, sys, time\n"
        "real = os.rename\n"
        "def rename(src, dst, *args, **kwargs):\n"
        "    if str(src).endswith(os.sep + 'instagram' + os.sep + 'alice'):\n"
        "        if os.environ['KILL_STAGE'] == 'after':\n"
        "            real(src, dst, *args, **kwargs)\n"
        "        open(os.environ['MARKER'], 'w').write('stopped')\n"
        "        time.sleep(600)\n"
        "    return real(src, dst, *args, **kwargs)\n"
        "os.rename = rename\n"
        f"sys.argv = [{str(BOT)!r}, 'download', 'alice']\n"
        f"sys.path.insert(0, {str(BOT.parent)!r})\n"
        f"runpy.run_path({str(BOT)!r}, run_name='__main__')\n"
    )
    return script


async def _wait_for(marker, process, log_path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the child never reached the move: {log_path.read_text()[-2000:]}")
        await asyncio.sleep(0.05)
    assert os.path.exists(marker)


@pytest.fixture
async def world(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram with alice (14 posts)."""
    async with chat_with_alice(net, data_dir, tmp_path, posts=14) as world:
        yield world


async def test_in_chat_the_rename_is_said_and_the_old_name_keeps_working(world, data_dir):
    assert "Now tracking" in await world.reply("/add alice summary")
    world.say("/download alice")
    await world.message_with("Completed:")
    before = media_on_disk(data_dir)
    world.instagram.rename("alice", "alice.new")

    world.say("/download alice")
    await completed(world, 2)
    moved = await world.message_with(SENTENCE)
    assert "Completed:" in moved.plain and "@alice.new" in moved.plain  # the job's status message
    assert media_on_disk(data_dir) == renamed(before)

    assert await world.reply("/download alice") == "@alice is now @alice.new: downloading @alice.new."
    await completed(world, 3)
    assert media_on_disk(data_dir) == renamed(before)
    listing = await world.reply("/list")
    assert "@alice.new" in listing and "@alice " not in listing
    assert "@alice in this chat: summary." in await world.reply("/notify alice")
    account = await Account.get()
    assert await NotifySetting.filter(account=account, mode="summary").count() == 1


async def completed(world: World, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` status messages say "Completed:"."""
    deadline = time.monotonic() + timeout
    while sum("Completed:" in (m.plain or "") for m in world.bot_messages()) < count:
        assert time.monotonic() < deadline, [m.plain for m in world.bot_messages()]
        await asyncio.sleep(0.05)


async def test_a_name_taken_by_another_archive_moves_nothing_and_an_empty_row_gives_way(
    instagram, logged_in, data_dir, net
):
    assert (await run_download(logged_in, "instagram", "alice")).state == "completed"
    before = media_on_disk(data_dir)
    other = await Account.create(platform="instagram", username="alice.new", platform_user_id="5555")
    instagram.rename("alice", "alice.new")
    net.clear()
    result, said = await run_watched(logged_in, "alice")
    taken = "@alice is now @alice.new, but the archive already has another @alice.new: "
    assert result.state == "completed" and said == [taken + "its files stay under @alice."]
    assert media_on_disk(data_dir) == before and instagram.cdn_count() == 0
    assert (await AccountRename.get()).state == "abandoned"

    # A row under the new name that holds nothing (a /add of it before the rename was seen) gives way.
    other.platform_user_id, other.tracked = None, True
    await other.save()
    result, said = await run_watched(logged_in, "alice")
    assert said == [SENTENCE] and result.state == "completed"
    await assert_consistent(data_dir, "alice.new")
    assert media_on_disk(data_dir) == renamed(before)
    assert (await Account.get()).tracked


async def test_the_move_on_postgresql(instagram, net, data_dir, tmp_path):
    """The same move (folder, rows in one transaction, the old name) with PostgreSQL."""
    reason = await pg_skip_reason()
    if reason:
        pytest.skip(reason)
    async with own_database(migrated=True) as url:
        session = write_session_file(tmp_path / "session-archivebot", instagram.login())
        settings = make_settings(data_dir, net=net, instagram_session_file=session, database_url=url)
        services = await services_for(settings)
        try:
            assert (await run_download(services, "instagram", "alice")).state == "completed"
            before = media_on_disk(data_dir)
            instagram.rename("alice", "alice.new")
            result, said = await run_watched(services, "alice")
            assert result.state == "completed" and said == [SENTENCE]
            await assert_consistent(data_dir, "alice.new")
            assert media_on_disk(data_dir) == renamed(before)
            assert (await run_download(services, "instagram", "alice")).username == "alice.new"
        finally:
            await services.close()
