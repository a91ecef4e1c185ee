"""The TikTok source: real yt-dlp against the fake TikTok, through the proxy, over verified TLS."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from yt_dlp.utils import DownloadError as YtDlpDownloadError
from yt_dlp.utils import ExtractorError

from downloader.errors import (
    README_LOGIN,
    DownloadError,
    LoginRequired,
    NotFound,
    Private,
    RateLimited,
    Transient,
)
from downloader.sources.tiktok import CERTIFICATE, TikTokSource, translate
from downloader.sources.ytdlp import impersonation
from tests.fakes.tiktok import WWW, FakeTikTok

# The navigation headers, in order, that curl_cffi's Chrome sends (plain yt-dlp sends none of them).
CHROME_HEADER_ORDER = ["Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform", "Upgrade-Insecure-Requests"]


@pytest.fixture
def fake(internet, monkeypatch):
    """A fresh fake TikTok; the environment does NOT point at the fake (params must)."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    internet.clear()
    internet.latency, internet.bandwidth = 0.0, None
    tiktok = FakeTikTok(internet, page_size=4)
    yield tiktok
    for host in list(internet._handlers):
        internet.remove_host(host)


def make_source(internet, **kwargs) -> TikTokSource:
    """A source reaching the fake through its proxy and trusting its CA via ``ca_file``."""
    return TikTokSource(proxy=internet.proxy_url, ca_file=internet.ca_path, test_mode=True, **kwargs)


@pytest.fixture
def source(internet):
    tiktok = make_source(internet)
    yield tiktok
    tiktok.close()


def list_all(source: TikTokSource, username: str, cursor: str | None = None):
    """Resolve and list every page."""
    account = source.resolve(username)
    return account, list(source.pages(account, "videos", cursor))


def no_progress(done: int, total: int | None) -> None:
    """A progress callback that ignores progress."""


def temp_name(tmp_path: Path, video_id: str) -> Path:
    """A temporary name shaped like the service's (it ends in ".part")."""
    return tmp_path / f".20250615_{video_id}.mp4.1a2b3c4d.part"


def test_resolve_reads_the_account_from_its_user_page(fake, internet, source):
    alice = fake.add_account("alice.dance", videos=3, photos=(1,))

    account = source.resolve("alice.dance")

    assert account.platform == "tiktok"
    assert account.username == "alice.dance"
    assert account.user_id == alice.sec_uid
    assert account.display_name == alice.nickname
    assert account.is_private is False
    assert account.media_count == 4
    assert [(r.host, r.path) for r in internet.requests] == [(WWW, "/@alice.dance")]


def test_listing_over_pages_yields_every_video_once_with_ids_and_dates(fake, internet, source):
    alice = fake.add_account("alice.dance", videos=10)  # 4 + 4 + 2

    _, pages = list_all(source, "alice.dance")

    items = [item for page in pages for item in page.items]
    assert [item.media_id for item in items] == [post.id for post in alice.posts]
    assert [item.taken_at for item in items] == [
        datetime.fromtimestamp(post.create_time, UTC) for post in alice.posts
    ]
    assert all(item.kind == "video" and item.ext == "mp4" for item in items)
    assert all(page.total == 10 for page in pages)
    assert [page.cursor is None for page in pages] == [False, False, True]
    assert items[0].metadata["description"] == alice.posts[0].desc
    # One item_list request per page, and no video page until something is downloaded.
    assert fake.count_listing() == 3
    assert fake.count_video_pages() == 0
    assert fake.count_media() == 0


def test_download_writes_exactly_the_temp_path_with_progress(fake, source, tmp_path):
    alice = fake.add_account("alice.dance", videos=2)
    _, pages = list_all(source, "alice.dance")
    item = pages[0].items[1]
    temp = temp_name(tmp_path, item.media_id)
    calls: list[tuple[int, int | None]] = []

    item.download(temp, lambda done, total: calls.append((done, total)))

    assert [p.name for p in tmp_path.iterdir()] == [temp.name]
    assert temp.read_bytes() == alice.posts[1].content()
    size = alice.posts[1].size
    assert calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert fake.count_video_pages() == 1


@pytest.mark.parametrize("name", ["100% $HOME ~ %(id)s.part", "plain.mp4"])
def test_download_takes_the_path_literally(fake, source, tmp_path, name):
    alice = fake.add_account("alice.dance", videos=1)
    _, pages = list_all(source, "alice.dance")
    temp = tmp_path / name

    pages[0].items[0].download(temp, no_progress)

    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert temp.stat().st_size == alice.posts[0].size


def test_concurrent_downloads_each_get_their_own_file(fake, source, tmp_path):
    alice = fake.add_account("alice.dance", videos=4)
    fake.media_delay = 0.005  # slow media so the downloads overlap
    _, pages = list_all(source, "alice.dance")
    items = pages[0].items

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: i.download(temp_name(tmp_path, i.media_id), no_progress), items))

    for post in alice.posts:
        assert temp_name(tmp_path, post.id).read_bytes() == post.content()


def test_relisting_an_archived_account_costs_only_the_listing(fake, internet, tmp_path):
    alice = fake.add_account("alice.dance", videos=8)  # two pages of 4
    archive = {f"tiktok {post.id}" for post in alice.posts}
    source = make_source(internet, archive=archive)
    try:
        _, pages = list_all(source, "alice.dance")
        items = [item for page in pages for item in page.items]
        # Were the service to download one anyway, yt-dlp's archive skips it unfetched.
        with pytest.raises(DownloadError, match="already in the archive"):
            items[0].download(temp_name(tmp_path, items[0].media_id), no_progress)
    finally:
        source.close()

    assert len(items) == 8
    assert fake.count_user_pages("alice.dance") == 1
    assert fake.count_listing() == 2
    assert fake.count_video_pages() == 0
    assert fake.count_media() == 0
    assert list(tmp_path.iterdir()) == []


def test_photo_posts_are_listed_as_slides_in_order_and_their_sound(fake, source):
    alice = fake.add_account("alice.dance", videos=5, photos=(1, 5), slides=3)
    alice.posts[5].sound = False  # a photo post whose sound TikTok does not offer

    _, pages = list_all(source, "alice.dance")

    items = [item for page in pages for item in page.items]
    first, second = alice.posts[1], alice.posts[5]
    assert [item.media_id for item in items if item.group_id == first.id] == [
        f"{first.id}_1",
        f"{first.id}_2",
        f"{first.id}_3",
        first.id,
    ]
    slides = [item for item in items if item.group_id == first.id and item.kind == "photo"]
    # The jpeg of each slide (TikTok lists a webp first), with the Referer TikTok's CDN wants.
    assert [item.url for item in slides] == [fake.slide_urls(first, n)[1] for n in (1, 2, 3)]
    assert {(item.ext, item.headers["Referer"]) for item in slides} == {("jpg", "https://www.tiktok.com/")}
    sound = next(item for item in items if item.media_id == first.id)
    assert (sound.kind, sound.ext, sound.url) == ("audio", "mp3", fake.sound_url(first))
    assert sound.link == f"https://www.tiktok.com/@alice.dance/photo/{first.id}"
    assert [item.media_id for item in items if item.group_id == second.id] == [
        f"{second.id}_{n}" for n in (1, 2, 3)
    ]
    assert [item.media_id for item in items if item.kind == "video"] == [post.id for post in alice.videos]
    assert all(page.skipped == [] for page in pages)
    # Listing costs the item_list pages only: no video page for a photo post.
    assert fake.count_video_pages() == 0 and fake.count_images() == 0


def test_live_replays_are_named_with_their_reason(fake, source):
    alice = fake.add_account("alice.dance", videos=2, lives=(1,))

    _, pages = list_all(source, "alice.dance")

    assert [entry for page in pages for entry in page.skipped] == [
        (alice.posts[1].id, "live replay, not supported")
    ]
    assert [item.media_id for page in pages for item in page.items] == [post.id for post in alice.videos]


def test_a_video_tiktok_does_not_offer_here_fails_with_a_reason_that_may_pass(fake, source, tmp_path):
    alice = fake.add_account("alice.dance", videos=1)
    alice.posts[0].page_status = 10231  # TikTok's answer for a video it does not show in this region
    _, pages = list_all(source, "alice.dance")

    with pytest.raises(Transient, match=r"does not offer it here \(status 10231"):
        pages[0].items[0].download(temp_name(tmp_path, alice.posts[0].id), no_progress)


def test_resuming_from_a_cursor_continues_on_the_next_page(fake, internet, source):
    alice = fake.add_account("alice.dance", videos=10)
    account = source.resolve("alice.dance")
    first = next(iter(source.pages(account, "videos", None)))
    internet.clear()

    rest = list(source.pages(account, "videos", first.cursor))

    ids = [item.media_id for page in [first, *rest] for item in page.items]
    assert ids == [post.id for post in alice.posts]
    listing = [r for r in internet.requests if r.path == "/api/creator/item_list/"]
    assert listing[0].query["cursor"] == first.cursor
    assert len(listing) == 2


def test_an_account_without_videos_lists_nothing_and_does_not_fail(fake, source):
    fake.add_account("quiet", videos=0)

    account, pages = list_all(source, "quiet")

    assert account.media_count == 0
    assert [(page.items, page.cursor) for page in pages] == [([], None)]
    assert fake.count_listing() == 0


def test_a_listing_that_hides_every_video_asks_for_cookies(fake, source):
    alice = fake.add_account("alice.dance", videos=3)
    alice.listing_hidden = True

    with pytest.raises(LoginRequired) as caught:
        list_all(source, "alice.dance")

    assert "cookiefile" in caught.value.sentence
    assert fake.count_listing() == 1


def test_private_account(fake, source):
    fake.add_account("secret", videos=3, private=True)

    with pytest.raises(Private) as caught:
        source.resolve("secret")

    assert "@secret is private" in caught.value.sentence
    assert "cookiefile" in caught.value.sentence


def test_missing_account(fake, source):
    with pytest.raises(NotFound) as caught:
        source.resolve("ghost")

    assert caught.value.sentence == "TikTok account @ghost does not exist."


@pytest.mark.parametrize("switch", ["rate_limited", "ip_blocked"])  # HTTP 429; statusCode 10204
def test_rate_limited_or_ip_blocked_everywhere(fake, source, tmp_path, switch):
    fake.add_account("alice.dance", videos=6)
    account, pages = list_all(source, "alice.dance")
    setattr(fake, switch, True)

    with pytest.raises(RateLimited) as resolving:
        source.resolve("alice.dance")
    with pytest.raises(RateLimited):
        list(source.pages(account, "videos", None))
    item = pages[0].items[0]
    with pytest.raises(RateLimited) as downloading:
        item.download(temp_name(tmp_path, item.media_id), no_progress)

    assert resolving.value.sentence.startswith("TikTok is rate limiting or has blocked this IP")
    assert downloading.value.sentence.startswith(f"TikTok video {item.media_id}: TikTok is rate")


def test_one_failing_video_fails_alone(fake, source, tmp_path):
    alice = fake.add_account("alice.dance", videos=4)
    alice.posts[0].page_http = 500
    alice.posts[1].media_http = 403
    alice.posts[2].page_status = 10216  # a private post
    _, pages = list_all(source, "alice.dance")
    items = {item.media_id: item for page in pages for item in page.items}
    errors = {}

    for post in alice.posts:
        try:
            items[post.id].download(temp_name(tmp_path, post.id), no_progress)
        except DownloadError as exc:
            errors[post.id] = exc

    assert isinstance(errors[alice.posts[0].id], Transient)
    assert type(errors[alice.posts[1].id]) is DownloadError
    assert isinstance(errors[alice.posts[2].id], LoginRequired)
    for post_id, error in errors.items():
        assert error.sentence.startswith(f"TikTok video {post_id}: ")
    assert "cookiefile" in errors[alice.posts[2].id].sentence
    assert README_LOGIN not in errors[alice.posts[2].id].sentence  # not Instagram's advice
    assert sorted(p.name for p in tmp_path.iterdir()) == [temp_name(tmp_path, alice.posts[3].id).name]


def test_cookiefile_from_extra_options_reaches_tiktok(fake, internet, tmp_path):
    fake.add_account("alice.dance", videos=1)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n.tiktok.com\tTRUE\t/\tTRUE\t2147483647\tsessionid\tabc123\n"
    )
    source = make_source(internet, extra_options={"cookiefile": str(cookies)})
    try:
        source.resolve("alice.dance")
    finally:
        source.close()

    assert "sessionid=abc123" in internet.requests[0].headers.get("Cookie", "")


def test_without_ca_file_the_test_certificate_is_refused(fake, internet):
    fake.add_account("alice.dance", videos=1)
    source = TikTokSource(proxy=internet.proxy_url, test_mode=True)
    try:
        with pytest.raises(DownloadError) as caught:
            source.resolve("alice.dance")
    finally:
        source.close()

    assert caught.value.sentence == CERTIFICATE
    assert internet.requests == []


def test_translate_reads_ytdlp_errors_as_extract_info_raises_them():
    def wrapped(message: str) -> YtDlpDownloadError:
        try:
            raise ExtractorError(message, expected=True)
        except ExtractorError as exc:
            return YtDlpDownloadError(f"ERROR: {message}", (type(exc), exc, None))

    no_videos = translate(wrapped("This account does not have any videos posted"), username="x")
    private = translate(wrapped("This user's account is private. Log into an account"))
    blocked = translate(wrapped("Your IP address is blocked from accessing this post"))

    assert no_videos.sentence == "TikTok account @x has not posted any videos."
    assert isinstance(private, Private)
    assert isinstance(blocked, RateLimited)
    assert isinstance(translate(ConnectionResetError()), Transient)


def test_pages_are_requested_as_a_browser_through_curl_cffi(fake, internet, source, tmp_path):
    target = impersonation()
    assert target is not None and target.startswith("chrome-"), target
    version = target.split("-")[1].split(":")[0]
    fake.add_account("alice.dance", videos=2)
    _, pages = list_all(source, "alice.dance")
    item = pages[0].items[0]
    item.download(temp_name(tmp_path, item.media_id), no_progress)
    requests = fake.page_requests()
    assert [req.path for req in requests] == ["/@alice.dance", f"/@alice.dance/video/{item.media_id}"]
    for req in requests:
        assert list(req.headers)[:4] == CHROME_HEADER_ORDER, list(req.headers)
        assert f"Chrome/{version}." in req.headers["User-Agent"]
        assert req.headers["Sec-Fetch-Dest"] == "document"


def test_ca_file_and_proxy_reach_the_impersonating_client(fake, internet, monkeypatch, caplog):
    """Neither the environment's CA variables nor its proxy variables point at the fake here."""
    import certifi

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # curl_cffi would read these
        monkeypatch.setenv(name, certifi.where())
    caplog.set_level("INFO", logger="downloader.sources.ytdlp")
    fake.add_account("alice.dance", videos=1)
    source = make_source(internet)
    try:
        account = source.resolve("alice.dance")
    finally:
        source.close()
    assert account.media_count == 1
    assert "www.tiktok.com:443" in internet.connects  # through our proxy setting
    assert list(fake.page_requests()[0].headers)[:4] == CHROME_HEADER_ORDER
    said = [r.getMessage() for r in caplog.records if "requested as the browser" in r.getMessage()]
    assert said == [f"TikTok pages are requested as the browser {impersonation()}"]  # once per source


def test_the_fake_serves_a_plain_client_no_data(fake, internet):
    """The fake is as strict as TikTok: without a browser's navigation headers, no page data."""
    import requests

    fake.add_account("alice.dance", videos=1)
    page = requests.get(
        f"https://{WWW}/@alice.dance",
        proxies={"https": internet.proxy_url},
        verify=internet.ca_path,
        headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/148.0.0.0"},
        timeout=10,
    )
    assert page.status_code == 200 and "__UNIVERSAL_DATA_FOR_REHYDRATION__" not in page.text


COOKIES = "# Netscape HTTP Cookie File\n.tiktok.com\tTRUE\t/\tTRUE\t2147483647\tsessionid\tabc123\n"


def test_the_cookie_file_is_saved_back_atomically_and_stays_private(fake, internet, tmp_path):
    fake.add_account("alice.dance", videos=1)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES)
    cookies.chmod(0o644)
    before = cookies.stat().st_ino
    source = make_source(internet, extra_options={"cookiefile": str(cookies)})
    try:
        source.resolve("alice.dance")
    finally:
        source.close()  # yt-dlp saves the cookie jar back here
    assert cookies.stat().st_ino != before  # a new file renamed into place, not rewritten in place
    assert oct(cookies.stat().st_mode & 0o777) == oct(0o600)  # a login: group and others lose access
    text = cookies.read_text()
    assert text.startswith("# Netscape HTTP Cookie File") and "sessionid\tabc123" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cookies.txt"]  # no temp file left


def test_a_failed_cookie_save_keeps_the_old_file(fake, internet, tmp_path, caplog):
    """A save that breaks halfway (here: a cookie that cannot be written) must not cost the login."""
    import http.cookiejar

    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES)
    source = make_source(internet, extra_options={"cookiefile": str(cookies)})
    with source._workers.borrow() as worker:
        broken = http.cookiejar.Cookie(
            0, "broken", "\udc80", None, False, ".tiktok.com", True, True, "/", True, True,
            2147483647, False, None, None, {},
        )  # fmt: skip
        worker.ydl.cookiejar.set_cookie(broken)
    source.close()
    assert cookies.read_text() == COOKIES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cookies.txt"]
    assert any("could not save the TikTok cookie file" in r.getMessage() for r in caplog.records)
