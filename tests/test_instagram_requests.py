"""What each Instagram sync costs, counted at the fake: re-syncs, story sweeps, highlights, budget.

These are exact request counts (issue 13): a logged-in re-sync of an unchanged account
in at most 4 API requests, stories of many accounts in one request per 50, highlight
items in batches and only when the tray shows a change, anonymous re-syncs without
one request per post, and every request counted and capped.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from instaloader import QueryReturnedBadRequestException

from db.models import RequestCount
from downloader.budget import RequestBudget
from downloader.errors import BudgetExhausted, LoginRequired, RateLimited, SessionExpired, StopRequested
from downloader.sources.base import Account, Known
from tests.fakes.instagram import (
    DOC_POST,
    DOC_TIMELINE,
    HASH_STORIES,
    HASH_TEST_LOGIN,
    MAX_REELS_MEDIA,
    MAX_STORY_REELS,
    FakeStoryItem,
    make_profile,
)

INFO = "GET i:/api/v1/users/1001/info/"
TRAY = "GET i:/api/v1/highlights/1001/highlights_tray/"
TIMELINE = f"POST /api/graphql {DOC_TIMELINE}"
STORIES = f"GET /graphql/query {HASH_STORIES}"


def everything(source, account, known=None) -> dict[str, list]:
    """A full run of every phase (all pages), as a first download does."""
    return {phase: list(source.pages(account, phase, None, known)) for phase in source.phases}


def known_after(pages: dict[str, list]) -> Known:
    """What the service keeps after a clean run: the stamps and the newest story's time."""
    stamps = {k: v for page in pages["highlights"] for k, v in page.stamps.items()}
    stories = [i.taken_at for page in pages["stories"] for i in page.items]
    if stories:
        stamps["stories"] = int(max(stories).timestamp())
    codes = {i.group_id for page in pages["posts"] for i in page.items}
    return Known(stamps=stamps, archived_groups=codes)


def resync(source, account: Account, known: Known) -> dict[str, list]:
    """A re-sync: the first posts page (the service stops there), stories, highlights."""
    listing = source.pages(account, "posts", None, known)
    first = next(listing)
    listing.close()
    return {
        "posts": [first],
        "stories": list(source.pages(account, "stories", None, known)),
        "highlights": list(source.pages(account, "highlights", None, known)),
    }


def items(pages: list) -> list[str]:
    return [i.media_id for page in pages for i in page.items]


# ----- item 1: re-sync of an unchanged logged-in account ------------------------------------


def test_resync_of_an_unchanged_account_costs_four_requests_then_three(ig, make_source, session_file):
    first = make_source(session_file=session_file)
    account = first.resolve("alice")
    known = known_after(everything(first, account))
    ig.internet.clear()

    # A fresh process (python bot.py download alice): the id is stored, the stamps are known.
    fresh = make_source(session_file=session_file)
    account = fresh.resolve("alice", user_id=account.user_id)
    pages = resync(fresh, account, known)

    assert ig.calls() == [INFO, "GET /", TIMELINE, TRAY]  # the start page: tokens, once per process
    assert items(pages["stories"]) == [] and items(pages["highlights"]) == []
    assert pages["highlights"][0].stamps == {k: v for k, v in known.stamps.items() if k != "stories"}
    assert ig.query_count(HASH_TEST_LOGIN) == 0 and ig.cdn_count() == 0

    # The same process again (a running bot): three requests.
    ig.internet.clear()
    resync(fresh, fresh.resolve("alice", user_id="1001"), known)
    assert ig.calls() == [INFO, TIMELINE, TRAY]


def test_a_first_download_keeps_one_connection_per_instagram_host(ig, make_source, session_file):
    """instaloader sends each GraphQL page and each i.instagram.com request through a new
    session; they share the login session's connections, so 30 posts, stories and highlights
    cost one TLS handshake per host, not one per request."""
    source = make_source(session_file=session_file)
    pages = everything(source, source.resolve("alice"))
    assert len(items(pages["posts"])) >= 30
    hosts = [call.split(" ")[1].split(":")[0] if ":" in call.split(" ")[1] else "www" for call in ig.calls()]
    assert (hosts.count("www"), hosts.count("i")) == (6, 2), ig.calls()  # requests to each host...
    assert sorted(ig.internet.connects) == ["i.instagram.com:443", "www.instagram.com:443"]  # ...one TLS each


def test_resync_asks_only_for_what_changed(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    known = known_after(everything(source, account))
    alice = ig.profiles["alice"]
    story = FakeStoryItem(alice.stories[-1].pk + 50, taken_at=alice.stories[-1].taken_at + 600)
    alice.stories.append(story)
    changed = alice.highlights[1]
    changed.items.append(FakeStoryItem(story.pk + 1, taken_at=story.taken_at - 86_400))
    changed.updated_at = story.taken_at  # Instagram moves the tray's time when an item is added
    ig.internet.clear()

    pages = resync(source, source.resolve("alice", user_id="1001"), known)

    assert ig.calls() == [
        INFO,
        TIMELINE,
        STORIES,  # the profile shows a story newer than the newest archived one
        TRAY,
        f"GET i:/api/v1/feed/reels_media/ highlight:{changed.id}",  # only the changed highlight
    ]
    assert str(story.pk) in items(pages["stories"])
    assert items(pages["highlights"]) == [str(i.pk) for i in changed.items]
    assert pages["highlights"][0].stamps[f"highlight:{changed.id}"] == story.taken_at


def test_no_story_at_all_costs_no_stories_request(ig, make_source, session_file):
    ig.profiles["alice"].stories.clear()
    source = make_source(session_file=session_file)
    account = source.resolve("alice", user_id="1001")
    assert account.latest_story_at == 0
    ig.internet.clear()

    assert items(list(source.pages(account, "stories", None))) == []
    assert ig.api_count() == 0


# ----- item 2: stories of many accounts -----------------------------------------------------


@pytest.mark.parametrize(("accounts", "expected"), [(30, 1), (100, 2), (101, 3)])
def test_prefetch_stories_of_many_accounts_in_batches(ig, make_source, session_file, accounts, expected):
    tracked = []
    for index in range(accounts):
        name = f"user{index}"
        with_story = index % 10 == 3  # 3 of 30 have stories
        ig.add_profile(make_profile(name, 50_000 + index, posts=0, stories=2 if with_story else 0))
        tracked.append(Account("instagram", name, str(50_000 + index)))
    source = make_source(session_file=session_file)

    source.prefetch("stories", tracked, {})
    got = {a.username: items(list(source.pages(a, "stories", None))) for a in tracked}

    assert ig.calls() == [STORIES] * expected
    assert sum(1 for found in got.values() if found) == len([a for a in range(accounts) if a % 10 == 3])
    assert ig.cdn_count() == 0
    # Taken once: a later per-account sync asks again.
    list(source.pages(tracked[3], "stories", None))
    assert ig.api_count() == expected + 1


def test_prefetch_skips_accounts_whose_profile_shows_nothing_new(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    alice = source.resolve("alice", user_id="1001")
    newest = max(s.taken_at for s in ig.profiles["alice"].stories)
    ig.internet.clear()

    source.prefetch("stories", [alice], {"alice": Known(stamps={"stories": newest})})
    assert items(list(source.pages(alice, "stories", None))) == []
    assert ig.api_count() == 0


# ----- item 3: highlights batched ---------------------------------------------------------------


def test_prefetch_highlights_batches_changed_ones_across_accounts(ig, make_source, session_file):
    names = ["h0", "h1", "h2", "h3"]
    for index, name in enumerate(names):
        ig.add_profile(make_profile(name, 60_000 + index, posts=0, stories=0))
    accounts = [Account("instagram", n, str(60_000 + i)) for i, n in enumerate(names)]
    profiles = [ig.profiles[n] for n in names]
    known = {
        p.username: Known(stamps={f"highlight:{h.id}": h.latest for h in p.highlights}) for p in profiles
    }
    changed = [profiles[0].highlights[0], profiles[0].highlights[2], profiles[2].highlights[1]]
    for highlight in changed:
        highlight.updated_at = highlight.latest + 60
    source = make_source(session_file=session_file)

    source.prefetch("highlights", accounts, known)
    got = {a.username: items(list(source.pages(a, "highlights", None, known[a.username]))) for a in accounts}

    trays = [f"GET i:/api/v1/highlights/{a.user_id}/highlights_tray/" for a in accounts]
    batch = ",".join(f"highlight:{h.id}" for h in changed)
    assert ig.calls() == [*trays, f"GET i:/api/v1/feed/reels_media/ {batch}"]
    assert got["h0"] == [str(i.pk) for h in changed[:2] for i in h.items]
    assert got["h2"] == [str(i.pk) for i in changed[2].items]
    assert got["h1"] == got["h3"] == []


def test_many_new_highlights_come_in_batches_the_fake_accepts(ig, make_source, session_file):
    titles = tuple(f"Trip {n}" for n in range(12))
    ig.add_profile(make_profile("traveller", 7007, posts=0, stories=0, highlights=titles))
    source = make_source(session_file=session_file)
    account = Account("instagram", "traveller", "7007")

    pages = list(source.pages(account, "highlights", None))

    assert [p.items[0].highlight_title for p in pages] == list(titles)
    reels = [c for c in ig.calls() if "reels_media" in c]
    assert len(reels) == 3  # 12 highlights, 5 per request
    assert all(len(c.split(" ")[-1].split(",")) <= MAX_REELS_MEDIA for c in reels)


def test_the_fake_refuses_larger_batches_than_instagram(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    context = source._api.context  # instaloader's own request code, as the API class uses it
    with pytest.raises(QueryReturnedBadRequestException):
        ids = [f"highlight:{n}" for n in range(MAX_REELS_MEDIA + 1)]
        context.get_iphone_json("api/v1/feed/reels_media/", {"reel_ids": ids})
    with pytest.raises(QueryReturnedBadRequestException):
        context.graphql_query(HASH_STORIES, {"reel_ids": list(range(MAX_STORY_REELS + 1))})


# ----- item 4: anonymous mode without waste ----------------------------------------------------


def test_anonymous_resync_of_an_unchanged_account_makes_no_post_requests(ig, make_source):
    codes = {p.code for p in ig.profiles["alice"].posts}
    source = make_source()
    account = source.resolve("alice")

    pages = list(source.pages(account, "posts", None, Known(archived_groups=codes)))

    assert [page.items for page in pages] == [[]] * len(pages)
    assert sorted(c for page in pages for c in page.known_groups) == sorted(codes)
    # The profile page (its first 12 codes), the start page (the web app's tokens) and two
    # further pages of codes; not one post is described.
    assert ig.api_count() == 4 and ig.query_count(DOC_POST) == 0

    alice = ig.profiles["alice"]
    ig.internet.clear()
    new = make_profile("alice", 1001, posts=31).posts[0]
    new.pk += 1
    alice.posts.insert(0, new)
    source = make_source()
    pages = list(source.pages(source.resolve("alice"), "posts", None, Known(archived_groups=codes)))
    assert items(pages) == [str(new.pk)]
    assert ig.query_count(DOC_POST) == 1 and ig.api_count() == 4 + 1


# ----- login wall, check_login, waits -----------------------------------------------------------


def test_login_wall_does_not_touch_a_logged_in_source(ig, make_source, session_file):
    ig.login_wall = True
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    assert next(source.pages(account, "posts", None)).items
    assert "GET /alice/" not in ig.calls()

    anonymous = make_source()
    with pytest.raises(LoginRequired) as caught:
        anonymous.resolve("alice")
    assert "login page" in caught.value.sentence and "README" in caught.value.sentence
    assert source.resolve("alice").user_id == "1001"  # nothing was latched


def test_check_login_is_one_request(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    assert source.check_login() == "archivebot"
    assert ig.calls() == [f"GET /graphql/query {HASH_TEST_LOGIN}"]

    ig.expire_session()
    with pytest.raises(SessionExpired):
        source.check_login()
    assert ig.api_count() == 2


def test_a_stop_during_a_wait_passes_through_untouched(ig, make_source):
    stops = [StopRequested()]

    def sleep(seconds: float) -> None:
        if stops:  # the job is paused during the first politeness delay
            raise stops.pop()

    source = make_source(request_delay=(5.0, 5.0), sleep=sleep)
    account = source.resolve("alice")
    with pytest.raises(StopRequested):
        next(source.pages(account, "posts", None))
    assert ig.api_count() == 1
    # Nothing was latched or translated: the resumed job lists as if nothing happened.
    assert next(source.pages(account, "posts", None)).items


# ----- item 5: every request counted, the budget enforced ----------------------------------------


async def test_every_request_is_counted_by_kind_and_stored(ig, make_source, session_file, db):
    budget = RequestBudget(daily_limit=0)
    await budget.load()
    source = make_source(session_file=session_file, budget=budget)

    def run():
        account = source.resolve("alice")
        return everything(source, account)

    await asyncio.to_thread(run)
    await budget.flush()

    rows = {(row.session, row.kind): row.count for row in await RequestCount.all()}
    assert sum(rows.values()) == ig.api_count() == source.budget.usage()[1] == source.budget.usage()[0]
    kinds = {"profile": 1, "page": 1, "timeline": 3, "stories": 1, "highlights_tray": 1, "reels": 1}
    assert rows == {("archivebot", kind): count for kind, count in kinds.items()}

    again = RequestBudget(daily_limit=0)
    session = again.session("archivebot")
    await again.load()  # a restart keeps the last 24 hours
    assert session.usage() == (ig.api_count(), ig.api_count())
    assert session.usage_line() == (
        f"Instagram requests (session archivebot): {ig.api_count()} last hour, {ig.api_count()} last 24 h"
    )


async def test_spent_budget_defers_before_the_request(ig, make_source, session_file, db):
    budget = RequestBudget(daily_limit=3)
    await budget.load()
    source = make_source(session_file=session_file, budget=budget)

    def run():
        account = source.resolve("alice")
        list(source.pages(account, "posts", None))

    with pytest.raises(BudgetExhausted) as caught:
        await asyncio.to_thread(run)

    assert ig.api_count() == 3  # profile, start page, first timeline page; the 4th is not made
    retry_at = caught.value.retry_at
    assert datetime.now(UTC) + timedelta(hours=22) < retry_at <= datetime.now(UTC) + timedelta(hours=24)
    assert f"deferred to {retry_at:%H:%M} UTC" in caught.value.sentence
    assert source.budget.usage_line().endswith("3 last 24 h of 3")


# ----- sequences ----------------------------------------------------------------------------------


def test_a_429_mid_listing_resumes_from_the_cursor_without_repeats(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    listing = source.pages(account, "posts", None)
    first = next(listing)
    ig.rate_limit(1)  # the second timeline page is answered 429

    with pytest.raises(RateLimited) as caught:
        next(listing)
    assert caught.value.retry_at > datetime.now(UTC) + timedelta(minutes=5)

    # After the wait (here: a restarted process), the saved cursor lists only what is left.
    rest = list(make_source(session_file=session_file).pages(account, "posts", first.cursor))
    listed = [i.media_id for page in [first, *rest] for i in page.items]
    assert len(listed) == len(set(listed)) == sum(len(p.children) or 1 for p in ig.profiles["alice"].posts)
    # Page 1, the refused page 2, then pages 2 and 3 (and the new process's start page).
    assert ig.query_count(DOC_TIMELINE) == 4
