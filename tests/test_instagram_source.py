"""The Instagram source: real instaloader 4.16 against the fake Instagram, through the TLS proxy.

Every test counts the requests the fake served, so the cost of each operation is
part of what is tested (see the module docstring of downloader/sources/instagram/api.py).
"""

from __future__ import annotations

import json
import pickle
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import requests
from instaloader import (
    AbortDownloadException,
    ConnectionException,
    LoginRequiredException,
    QueryReturnedForbiddenException,
    TooManyRequestsException,
)

from downloader.errors import (
    Checkpoint,
    InvalidInput,
    LoginRequired,
    NotFound,
    Private,
    RateLimited,
    SessionExpired,
    Transient,
)
from downloader.sources.base import Account
from downloader.sources.instagram import SKIPPED_POST, translate
from tests.fakes.instagram import (
    DOC_ANON_POSTS,
    DOC_POST,
    DOC_TIMELINE,
    HASH_STORIES,
    HASH_TEST_LOGIN,
    ODD_TITLES,
    FakeProfile,
    write_cookies_txt,
    write_session_file,
)

LOGIN_SENTENCE = "Instagram login required (see 'Instagram login' in the README)."


def expected_post_items(profile: FakeProfile) -> list[tuple[str, str, str, str]]:
    """(media_id, kind, ext, url) of every file of every post, newest first."""
    rows = []
    for post in profile.posts:
        kind = "reel" if post.kind == "reel" else "post"
        if post.children:
            for index, child in enumerate(post.children, start=1):
                ext = "mp4" if child.is_video else "jpg"
                rows.append((f"{post.pk}_{index}", kind, ext, child.video_url or child.image_url))
        elif post.is_video:
            rows.append((str(post.pk), kind, "mp4", post.video_url))
        else:
            rows.append((str(post.pk), kind, "jpg", post.image_url))
    return rows


def rows(pages) -> list[tuple[str, str, str, str]]:
    return [(i.media_id, i.kind, i.ext, i.url) for page in pages for i in page.items]


def take(iterator, count: int) -> list:
    return [next(iterator) for _ in range(count)]


# ----- logged out ----------------------------------------------------------------------


def test_anonymous_resolve_and_every_post(ig, make_source):
    source = make_source()
    alice = ig.profiles["alice"]

    account = source.resolve("alice")
    profile = {"biography": "A fake profile.", "picture_url": alice.pic_url}  # kept as the profile's history
    assert account == Account("instagram", "alice", "1001", "Alice Example", False, 30, **profile)
    assert ig.calls() == ["GET /alice/"]

    pages = list(source.pages(account, "posts", None))

    assert rows(pages) == expected_post_items(alice)
    assert len(pages) == 30  # one Page per post: each costs a request, so the service can stop early
    assert pages[-1].cursor is None and all(p.cursor for p in pages[:-1])
    # The resolve's profile page (its 12 codes are reused) + start page (tokens) + 1 per post
    # + 2 further pages of codes.
    assert ig.api_count() == 1 + 1 + 30 + 2
    assert ig.query_count(DOC_POST) == 30 and ig.query_count(DOC_ANON_POSTS) == 2
    assert ig.cdn_count() == 0  # the source lists; the service downloads

    first = pages[0].items[0]
    assert first.taken_at == datetime.fromtimestamp(alice.posts[0].taken_at, UTC)
    assert first.group_id == alice.posts[0].code
    assert first.metadata["url"] == f"https://www.instagram.com/p/{alice.posts[0].code}/"
    assert first.metadata["location"]["name"] == "Berlin, Germany"
    assert first.metadata["caption"] == "Post 0 of @alice #fake"
    carousel = pages[2].items
    assert [i.media_id.rsplit("_", 1)[1] for i in carousel] == ["1", "2", "3"]
    assert {i.group_id for i in carousel} == {alice.posts[2].code}
    assert pages[3].items[0].kind == "reel" and pages[3].items[0].metadata["product_type"] == "clips"


@pytest.mark.parametrize("stop_after", [5, 12, 13])
def test_anonymous_resume_from_cursor_continues_without_repeats(ig, make_source, stop_after):
    account = make_source().resolve("alice")
    first_run = make_source().pages(account, "posts", None)
    before = take(first_run, stop_after)
    first_run.close()
    cursor = before[-1].cursor
    ig.internet.clear()

    # A new source, as after a restart: only the cursor survives (in the database).
    after = list(make_source().pages(account, "posts", cursor))

    assert rows(before) + rows(after) == expected_post_items(ig.profiles["alice"])
    remaining = 30 - stop_after
    further_pages = sum(1 for start in (12, 24) if start >= stop_after)
    # Profile page (a new source) + start page + 1 per remaining post + pages of codes not yet loaded.
    assert ig.api_count() == 2 + remaining + further_pages


def test_anonymous_private_profile_needs_a_login(ig, make_source):
    source = make_source()
    account = source.resolve("privy")
    assert account.is_private

    with pytest.raises(LoginRequired) as caught:
        next(source.pages(account, "posts", None))

    assert "@privy is private" in caught.value.sentence
    assert ig.api_count() == 1  # the profile page already said so


def test_post_deleted_while_listing_is_reported_not_fatal(ig, make_source):
    source = make_source()
    listing = source.pages(source.resolve("alice"), "posts", None)
    next(listing)
    deleted = ig.profiles["alice"].posts.pop(1)  # gone between the listing and its details

    gap = next(listing)
    after = next(listing)

    assert gap.items == [] and gap.skipped == [(deleted.code, SKIPPED_POST)]
    assert gap.cursor  # the listing goes on
    assert {i.group_id for i in after.items} == {ig.profiles["alice"].posts[1].code}


def test_not_a_username_makes_no_request(ig, make_source):
    with pytest.raises(InvalidInput):
        make_source().resolve("../../etc/passwd")
    assert ig.internet.requests == []


def test_missing_account_is_not_found(ig, make_source):
    with pytest.raises(NotFound) as caught:
        make_source().resolve("nobody")

    assert caught.value.sentence == "Instagram account @nobody does not exist."
    assert ig.calls() == ["GET /nobody/"]


@pytest.mark.parametrize("phase", ["stories", "highlights"])
def test_stories_and_highlights_without_login_make_no_request(ig, make_source, phase):
    source = make_source()
    account = Account("instagram", "alice", "1001")

    with pytest.raises(LoginRequired) as caught:
        next(source.pages(account, phase, None))

    assert caught.value.sentence == LOGIN_SENTENCE
    assert ig.internet.requests == [] and ig.internet.connects == []


# ----- logged in -------------------------------------------------------------------------


def test_logged_in_posts_come_in_pages_of_twelve(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    # Logged in: the web API by name; no test-login request, never the anonymous profile page.
    assert ig.calls() == ["GET /api/v1/users/web_profile_info/"]

    pages = list(source.pages(account, "posts", None))

    assert [len({i.group_id for i in p.items}) for p in pages] == [12, 12, 6]
    assert rows(pages) == expected_post_items(ig.profiles["alice"])
    assert [bool(p.cursor) for p in pages] == [True, True, False]
    # Start page (tokens, once per process) + one request per page of 12; no profile query.
    assert ig.calls()[1:] == [
        "GET /",
        f"POST /api/graphql {DOC_TIMELINE}",
        f"POST /api/graphql {DOC_TIMELINE}",
        f"POST /api/graphql {DOC_TIMELINE}",
    ]
    # instaloader's own video_url would HEAD every version to find the largest; we do not.
    assert ig.cdn_count() == 0


def test_logged_in_resume_skips_finished_pages(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    listing = source.pages(account, "posts", None)
    first = next(listing)
    listing.close()
    ig.internet.clear()

    rest = list(source.pages(account, "posts", first.cursor))

    assert rows([first, *rest]) == expected_post_items(ig.profiles["alice"])
    # The saved page stands in for page 1: only the two remaining pages are asked for.
    assert ig.calls() == [f"POST /api/graphql {DOC_TIMELINE}"] * 2


def test_stories_with_session_file(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    ig.internet.clear()

    pages = list(source.pages(account, "stories", None))

    assert len(pages) == 1 and pages[0].cursor is None
    stories = ig.profiles["alice"].stories
    got = {i.media_id: (i.kind, i.ext, i.url) for i in pages[0].items}
    assert got == {
        str(s.pk): ("story", "mp4" if s.is_video else "jpg", s.video_url or s.image_url) for s in stories
    }
    assert pages[0].total == 2
    assert ig.calls() == [f"GET /graphql/query {HASH_STORIES}"]  # the answer has every version
    assert ig.cdn_count() == 0


def test_highlights_keep_raw_titles_and_resume_by_highlight(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    ig.internet.clear()

    pages = list(source.pages(account, "highlights", None))

    highlights = ig.profiles["alice"].highlights
    assert [p.items[0].subdir for p in pages] == list(ODD_TITLES)
    assert [[i.media_id for i in p.items] for p in pages] == [
        [str(i.pk) for i in h.items] for h in highlights
    ]
    assert {i.kind for p in pages for i in p.items} == {"highlight"}
    assert [(i.highlight_id, i.highlight_title) for i in pages[1].items] == [
        (str(highlights[1].id), ODD_TITLES[1])
    ] * 2
    assert pages[-1].cursor is None
    # The tray, then the items of all three highlights in one batched request.
    ids = ",".join(f"highlight:{h.id}" for h in highlights)
    assert ig.calls() == [
        "GET i:/api/v1/highlights/1001/highlights_tray/",
        f"GET i:/api/v1/feed/reels_media/ {ids}",
    ]
    assert pages[0].stamps == {f"highlight:{h.id}": h.latest for h in highlights}

    ig.internet.clear()
    resumed = list(source.pages(account, "highlights", pages[0].cursor))
    assert [p.items[0].subdir for p in resumed] == list(ODD_TITLES[1:])
    assert ig.api_count() == 2


def test_cookies_txt_login_works_like_a_session_file(ig, make_source, tmp_path):
    cookies = write_cookies_txt(tmp_path / "cookies.txt", ig.login("archivebot"))
    source = make_source(cookies_file=cookies)  # no username: test_login tells it

    account = source.resolve("alice")
    stories = next(source.pages(account, "stories", None))
    posts = next(source.pages(account, "posts", None))

    assert len(stories.items) == 2
    assert len({i.group_id for i in posts.items}) == 12  # a logged-in page
    assert ig.query_count(HASH_TEST_LOGIN) == 0  # no test login: the first real request tells


def test_private_profile_not_followed_is_private(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("privy")
    ig.internet.clear()

    with pytest.raises(Private) as caught:
        next(source.pages(account, "posts", None))

    assert "@privy is private" in caught.value.sentence
    assert ig.calls() == []  # the lookup said so


def test_private_profile_followed_is_listed(ig, make_source, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("friend")

    pages = list(source.pages(account, "posts", None))

    assert rows(pages) == expected_post_items(ig.profiles["friend"])


# ----- failures ----------------------------------------------------------------------------


def test_rate_limit_raises_rate_limited_at_once_without_sleeping(ig, make_source, recorder, session_file):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    ig.internet.clear()
    ig.rate_limit()  # every request from now on
    started = time.monotonic()

    with pytest.raises(RateLimited) as caught:
        next(source.pages(account, "stories", None))

    assert time.monotonic() - started < 5
    assert ig.api_count() == 1  # the 429; no retry until the service has waited
    soon = datetime.now(UTC)
    # instaloader's estimate of its 11-minute window, handed to the service to wait out.
    assert soon + timedelta(minutes=5) < caught.value.retry_at < soon + timedelta(minutes=30)
    assert "@alice" in caught.value.sentence and f"{caught.value.retry_at:%H:%M} UTC" in caught.value.sentence
    assert max(recorder.sleeps, default=0) < 1  # nothing long was slept in the worker thread

    # Asked again at once (before the window is over): refused without a request.
    ig.stop_rate_limit()
    with pytest.raises(RateLimited):
        next(source.pages(account, "highlights", None))
    assert ig.api_count() == 1


def test_rate_limited_profile_page(ig, make_source):
    ig.rate_limit(1)
    with pytest.raises(RateLimited):
        make_source().resolve("alice")
    assert ig.api_count() == 1


@pytest.mark.parametrize("kind", ["checkpoint_required", "challenge_required"])
def test_checkpoint_stops_every_later_request(ig, make_source, session_file, kind):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    ig.checkpoint(kind)
    ig.internet.clear()

    with pytest.raises(Checkpoint):
        next(source.pages(account, "stories", None))
    assert ig.api_count() == 1  # no retries either

    ig.checkpoint(None)  # even if Instagram would answer again, the owner must confirm first
    for attempt in (
        lambda: source.resolve("alice"),
        lambda: next(source.pages(account, "posts", None)),
        lambda: next(source.pages(account, "highlights", None)),
    ):
        with pytest.raises(Checkpoint):
            attempt()
    assert ig.api_count() == 1


def test_checkpoint_while_logged_out(ig, make_source):
    source = make_source()
    ig.checkpoint()
    with pytest.raises(Checkpoint):
        source.resolve("alice")
    with pytest.raises(Checkpoint):
        source.resolve("alice")
    assert ig.api_count() == 1


def test_expired_session_is_reported_once_until_the_file_changes(ig, make_source, session_file):
    ig.expire_session()
    source = make_source(session_file=session_file)

    with pytest.raises(SessionExpired) as caught:
        source.resolve("alice")
    assert "send me a new cookies.txt or session file" in caught.value.sentence
    assert ig.calls() == ["GET /api/v1/users/web_profile_info/"]  # the first real request tells

    with pytest.raises(SessionExpired):
        next(source.pages(Account("instagram", "alice", "1001"), "stories", None))
    assert ig.api_count() == 1  # latched: no request until the login changes

    write_session_file(session_file, ig.login("archivebot"))  # `instaloader --login` again
    assert source.resolve("alice").user_id == "1001"


@pytest.mark.parametrize("answer", ["401", "redirect"])
def test_session_expiring_mid_run(ig, make_source, session_file, answer):
    source = make_source(session_file=session_file)
    account = source.resolve("alice")
    ig.expire_session(answer=answer)
    ig.internet.clear()

    with pytest.raises(SessionExpired):
        next(source.pages(account, "posts", None))
    assert ig.api_count() == 1  # a 401 is not retried


def test_politeness_delay_between_api_requests(ig, make_source, recorder):
    source = make_source(request_delay=(3.0, 3.0))
    account = source.resolve("alice")
    take(source.pages(account, "posts", None), 3)

    requests_made = ig.api_count()  # resolve (profile page), start page, 3 posts
    assert requests_made == 5
    assert len(recorder.sleeps) == requests_made - 1
    assert all(2.5 < s <= 3.0 for s in recorder.sleeps)
    assert [reason for _, reason in recorder.waits] == ["politeness delay between Instagram requests"] * 4


# ----- translate() ----------------------------------------------------------------------


URL = "https://www.instagram.com/graphql/query?query_hash=x"


def test_translate_maps_instaloader_errors():
    too_many = ConnectionException("JSON Query to graphql/query: 429 Too Many Requests")
    too_many.__cause__ = TooManyRequestsException(f"429 Too Many Requests when accessing {URL}")
    assert isinstance(translate(too_many, "bob"), RateLimited)
    checkpoint = f'400 Bad Request - "fail" status, message "checkpoint_required" when accessing {URL}'
    assert isinstance(translate(AbortDownloadException(checkpoint)), Checkpoint)
    assert isinstance(
        translate(AbortDownloadException("Redirected to login page. You've been logged out"), logged_in=True),
        SessionExpired,
    )
    assert isinstance(translate(LoginRequiredException("Login required."), logged_in=True), SessionExpired)
    forbidden = translate(QueryReturnedForbiddenException("403 Forbidden when accessing cdn"), "bob")
    # A refusal is not network trouble: the service does not wait and retry it for minutes.
    assert (
        not isinstance(forbidden, Transient) and "403" in forbidden.sentence and "@bob" in forbidden.sentence
    )
    assert isinstance(translate(requests.ConnectionError("reset")), Transient)
    assert isinstance(
        translate(ConnectionException(f"500 Internal Server Error when accessing {URL}")), Transient
    )


@pytest.mark.parametrize(
    ("text", "logged_in", "expected"),
    [
        # Markers come from the answer's fields, never from a URL or a username.
        (f'400 Bad Request - "fail" status when accessing {URL}&u=checkpoint_required', True, Transient),
        (
            'Query to https://www.instagram.com/checkpoint_required/ responded with "404 Not Found"',
            True,
            Transient,
        ),
        (
            f'400 Bad Request - "fail" status, message "challenge_required" when accessing {URL}',
            False,
            Checkpoint,
        ),
        (
            f'400 Bad Request - "fail" status, message "feedback_required" when accessing {URL}',
            True,
            RateLimited,
        ),
        (
            f'401 Unauthorized - "fail" status, message "Please wait a few minutes before you try again." '
            f"when accessing {URL}",
            True,
            RateLimited,
        ),
        (
            'Query to https://i.instagram.com/api/v1/x/ responded with "401 Unauthorized": '
            '{"message": "login_required", "status": "fail"}',
            True,
            SessionExpired,
        ),
        (
            'Query to https://i.instagram.com/api/v1/x/ responded with "401 Unauthorized": '
            '{"message": "login_required", "status": "fail"}',
            False,
            LoginRequired,
        ),
        (
            'Query to https://i.instagram.com/api/v1/x/ responded with "400 Bad Request": '
            '{"message": "", "error_type": "checkpoint_required", "status": "fail"}',
            True,
            Checkpoint,
        ),
    ],
)
def test_translate_reads_structured_fields(text, logged_in, expected):
    error = translate(AbortDownloadException(text), "checkpoint_required", logged_in=logged_in)
    assert type(error) is expected, error.sentence
    if expected is RateLimited:
        assert error.retry_at > datetime.now(UTC) + timedelta(minutes=5)  # a back-off, not a latch
        assert "temporarily blocked" in error.sentence


# ----- the fake CDN (other tests rely on its switches) -----------------------------------


def test_fake_cdn_serves_deterministic_media_and_its_switches(ig, net):
    post = ig.profiles["alice"].posts[1]
    with httpx.Client(proxy=net.proxy_url, verify=net.client_ssl_context()) as client:
        video = client.get(post.video_url)
        assert video.content == ig.expected_bytes(post.video_url)
        assert int(video.headers["content-length"]) == post.video_size

        ig.forbid_media(post.image_url)
        assert client.get(post.image_url).status_code == 403

        ig.break_media(post.video_url, after=1000)
        with pytest.raises(httpx.HTTPError):
            client.get(post.video_url)
    assert ig.cdn_count() == 3 and ig.api_count() == 0


def test_session_file_format_is_instaloaders(ig, tmp_path):
    session = ig.login("archivebot")
    path = write_session_file(tmp_path / "session-archivebot", session)
    data = pickle.loads(path.read_bytes())
    assert {"sessionid", "csrftoken", "ds_user_id"} <= data.keys()
    cookies = write_cookies_txt(tmp_path / "cookies.txt", session).read_text()
    assert cookies.startswith("# Netscape HTTP Cookie File") and "#HttpOnly_.instagram.com" in cookies
    assert json.dumps(data)  # plain strings only
