"""One phase on demand (/download alice stories, --only) and per-account phases (/add, /list, /syncall)."""

from __future__ import annotations

import os

import pytest

from db.models import Account, Job, MediaItem
from tests.chat import World
from tests.fakes.instagram import (
    DOC_PROFILE,
    DOC_TIMELINE,
    HASH_HIGHLIGHT_ITEMS,
    HASH_HIGHLIGHTS,
    HASH_STORIES,
    NEWEST,
    FakeInstagram,
    FakePost,
    FakeStoryItem,
    make_profile,
    write_session_file,
)
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, TOKEN, files_under, is_profile_picture, make_settings, running_bot
from tests.test_cli import download

# Instagram requests of each phase alone for alice (logged in, 30 posts, 2 stories, 3 highlights),
# on top of the profile page and the session check every download makes.
PHASE_QUERIES = {
    "posts": {DOC_PROFILE, DOC_TIMELINE},
    "stories": {HASH_STORIES},
    "highlights": {HASH_HIGHLIGHTS, HASH_HIGHLIGHT_ITEMS},
}
FOLDERS = {"posts": "posts", "stories": "stories", "highlights": "highlights"}


@pytest.fixture
async def world(net, data_dir, tmp_path):
    """The bot logged in to a fake Instagram with alice (30 posts) and carol (3 posts)."""
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=30))
    instagram.add_profile(make_profile("carol", 3003, posts=3, highlights=("Trips",)))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    tiktok = FakeTikTok(net, page_size=5)
    tiktok.add_account("bob.dance", videos=3)
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(
            data_dir, net=net, telegram=telegram, instagram_session_file=session, status_edit_interval=0.6
        )
        async with running_bot(settings) as app:
            yield World(telegram, instagram, tiktok, app)


def media(folder) -> dict[str, int]:
    """Media files (no JSON sidecars) below a folder."""
    if not folder.exists():
        return {}
    return {
        n: s for n, s in files_under(folder).items() if not n.endswith(".json") and not is_profile_picture(n)
    }


def stamps(folder) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file: unchanged means not rewritten."""
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def queries_used(instagram: FakeInstagram, since: int) -> list[str]:
    """The labels of the Instagram API requests after index ``since``."""
    return instagram.calls()[since:]


@pytest.mark.parametrize(
    ("phase", "summary", "files"),
    [
        ("stories", "Completed: 2 stories", 2),
        ("highlights", "Completed: 6 highlight items", 6),
        ("posts", "Completed: 30 posts (44 files)", 44),
    ],
)
async def test_one_phase_alone(world, data_dir, phase, summary, files):
    intro = await world.reply(f"/download alice {phase}")
    assert intro.startswith(f"Download started - {phase} only!")
    final = await world.message_with("Completed:")
    assert summary in final.plain and "+" not in final.plain.split("Completed:")[1]
    other = [p for p in FOLDERS if p != phase]
    assert all(p not in final.plain for p in other)  # the message shows only this phase
    root = data_dir / "downloads" / "instagram" / "alice"
    assert len(media(root / phase)) == files == await MediaItem.all().count()
    assert not any((root / p).exists() for p in other)
    calls = world.instagram.calls()
    for name in other:  # not a single request for the other phases
        assert not [c for c in calls if any(q in c for q in PHASE_QUERIES[name])], calls
    # The lookup (logged-in web API, by name the first time), then this phase's own: stories 1
    # (one query carries the items); highlights: the tray and one batched request for the three;
    # posts: the start page (the web app's tokens) and 3 timeline pages of 12.
    expected = {"stories": 2, "highlights": 3, "posts": 5}[phase]
    assert world.instagram.api_count() == expected, calls
    assert world.telegram.rate_limited == 0


async def test_stories_only_after_a_full_download_touches_nothing_else(world, data_dir):
    await world.reply("/download alice")
    await world.message_with("Completed: 30 posts (44 files) + 8 stories/highlights")
    root = data_dir / "downloads" / "instagram" / "alice"
    before_posts, before_highlights = stamps(root / "posts"), stamps(root / "highlights")
    profile = world.instagram.profiles["alice"]
    profile.posts.insert(0, FakePost(3_100_000_000_000_000_001, taken_at=NEWEST + 10))  # not fetched now
    profile.stories.append(FakeStoryItem(3_600_000_000_000_000_001, taken_at=NEWEST + 9000))
    mark, cdn_mark = len(world.instagram.calls()), world.instagram.cdn_count()
    await world.reply("/download alice stories")
    final = await world.message_with("Completed: 1 story")
    assert "Completed: 1 story" in final.plain
    # The stored account id makes a lookup unnecessary: one stories query, items included.
    assert queries_used(world.instagram, mark) == [f"GET /graphql/query {HASH_STORIES}"]
    assert world.instagram.cdn_count() - cdn_mark == 1  # only the new story's file
    assert stamps(root / "posts") == before_posts and stamps(root / "highlights") == before_highlights
    assert len(media(root / "stories")) == 3
    # The new post waits for the next full download, fetched exactly once then.
    await world.reply("/download alice")
    await world.message_with("Completed: 1 post + 0 stories/highlights")
    assert await MediaItem.filter(media_id="3100000000000000001").count() == 1


async def test_platform_and_phase_words_together_and_mistakes(world, data_dir):
    assert (await world.reply("/download bob.dance tiktok videos")).startswith("Download started - TikTok")
    await world.message_with("Completed: 3 videos")
    answers = {
        "/download alice stories tiktok": "has only videos, not stories",
        "/download alice videos": "has posts, stories and highlights, not videos",
        "/download alice stories highlights": "Unknown word 'highlights'",
        "/download alice stories,highlights": "Name one of posts, stories or highlights",
        "/download alice reels": "Unknown word 'reels'",
        "/download alice instagram tiktok": "Unknown word 'tiktok'",
        "/add alice everything": "Unknown word 'everything'",
        "/add alice posts,videos": "not videos",
    }
    for command, expected in answers.items():
        answer = await world.reply(command)
        assert expected in answer and "Usage: /" in answer, (command, answer)
    assert await Job.filter(account__platform="instagram").count() == 0
    assert await Account.filter(tracked=True).count() == 0
    assert not (data_dir / "downloads" / "instagram").exists()
    assert world.instagram.api_count() == 0


async def test_per_account_phases_in_add_list_and_syncall(world, data_dir):
    added = await world.reply("/add alice stories,highlights")
    assert "its stories and highlights will be downloaded" in added
    await world.reply("/add carol")
    await world.reply("/add bob.dance tiktok")
    mark = world.say("/list")
    sent = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark)
    listing = world.telegram.message(OWNER, sent.result["message_id"])
    assert "@alice" in listing.plain and "syncs stories and highlights" in listing.plain
    assert "syncs posts, stories and highlights" in listing.plain  # carol: the default
    assert set(world.buttons(listing)) == {"⚙️ @alice", "⚙️ @carol"}  # TikTok has one phase only

    await world.reply("/syncall")
    final = await world.message_with("Completed: ")
    assert "3/3 accounts" in final.plain and "@alice: 8 new" in final.plain
    root = data_dir / "downloads" / "instagram"
    assert not (root / "alice" / "posts").exists()  # alice's posts were not synced...
    assert len(media(root / "alice" / "stories")) == 2 and len(media(root / "alice" / "highlights")) == 6
    assert len(media(root / "carol" / "posts")) == 5  # ...carol's were (3 posts, 5 files)
    alice_timeline = [c for c in world.instagram.calls() if DOC_TIMELINE in c]
    assert len(alice_timeline) == 1  # carol's one page; none for alice

    # The chooser: switch alice's posts on, her highlights off, and try to switch everything off.
    await world.press(listing, "@alice")
    chooser = world.telegram.message(OWNER, listing.message_id)
    assert "download its stories and highlights" in chooser.plain
    assert "now syncs posts, stories and highlights" in await world.press(chooser, "posts")
    assert "now syncs posts and stories" in await world.press(chooser, "highlights")
    await world.press(chooser, "stories")
    assert "At least one phase" in await world.press(chooser, "posts")
    alice = await Account.get(username="alice")
    assert alice.phases == ["posts"]
    assert "download its posts." in world.telegram.message(OWNER, listing.message_id).plain
    await world.press(chooser, "Back to the list")
    assert "Tracked accounts" in world.telegram.message(OWNER, listing.message_id).plain
    assert "now syncs posts and highlights" in await world.reply("/add alice posts,highlights")


async def test_stories_schedule_skips_accounts_without_stories(world):
    await world.reply("/add alice posts")
    await world.reply("/add carol stories")
    data = world.app.bot_data
    parent, created = await data.jobs.prepare_syncall(chat_id=OWNER, phases=["stories"])
    children = await Job.filter(parent=parent).prefetch_related("account")
    assert created and [(c.account.username, c.phases) for c in children] == [("carol", ["stories"])]
    full, _ = await data.jobs.prepare_syncall(chat_id=OWNER)  # the running one is returned, none created
    assert full.id == parent.id


def test_command_line_only_option(tmp_path, net):
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=14))
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    done = download(tmp_path, net, "alice", "--only", "stories", INSTAGRAM_SESSION_FILE=str(session))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "Completed: 2 stories"
    root = tmp_path / "data" / "downloads" / "instagram" / "alice"
    assert sorted(os.listdir(root)) == ["stories"]
    assert instagram.api_count() == 2  # the lookup (web API, by name) and one stories query
    wrong = download(tmp_path, net, "bob", "--platform", "tiktok", "--only", "posts")
    assert wrong.returncode == 2 and "has videos" in wrong.stderr
    bad = download(tmp_path, net, "alice", "--only", "reels")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
