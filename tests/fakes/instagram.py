"""A fake Instagram (www, i.instagram.com and the CDN) for real instaloader 4.16, behind FakeInternet.

It answers the requests instaloader makes (as recorded from real runs):

- ``GET www.instagram.com/<user>/``: HTML embedding two ``xig_user_by_username``
  query results (details; and, unless private, the first page of post codes).
- ``GET www.instagram.com/``: the start page with the LSD / DTSG tokens and a
  ``csrftoken`` cookie.
- ``POST /api/graphql`` (the web app's endpoint; needs the LSD token): a post by
  shortcode, the logged-out posts pagination and the logged-in timeline.
- ``POST /graphql/query``: the logged-in profile query (and a post by shortcode).
- ``GET /graphql/query?query_hash=``: test_login, stories, highlights, highlight items.
- ``GET i.instagram.com/api/v1/feed/reels_media/`` (Bearer IGT:2 token), media and
  user info.
- CDN: deterministic bytes per URL (a video's still, the archive's cover for it, is a
  real JPEG), sizes from the model, Content-Length, ETag and
  Last-Modified set; ``Range: bytes=N-`` answered 206 with Content-Range (honouring
  ``If-Range``), or 416 beyond the end.

Switches (set from the test thread at any time): ``rate_limit()``, ``checkpoint()``,
``expire_session()``, ``login_wall``, ``forbid_media()``, ``media_delay`` (a slow link),
``honour_range`` (False: Range ignored, 200 with the whole file) and ``break_media()``.
Counting helpers separate Instagram API requests from CDN requests; ``range_requests()``
lists the ranges asked for, ``cdn_bytes_sent`` and ``cdn_open`` what the CDN sends.
CDN requests for video stills are counted by ``cover_count()``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from tests.fakes.stills import still_jpeg
from tests.fakes.tls import FakeInternet, Req, host_matches

WWW = "www.instagram.com"
IPHONE = "i.instagram.com"
CDN_HOST = "scontent.cdninstagram.com"
LAST_MODIFIED = "Wed, 11 Jun 2025 12:00:00 GMT"
CDN_PATTERNS = ("*.cdninstagram.com", "*.fbcdn.net")
API_HOSTS = (WWW, IPHONE)
PAGE_SIZE = 12
# Newest post of generated profiles: 2025-06-15 12:00 UTC; older posts one day apart.
NEWEST = 1_750_000_000

DOC_POST = "27128499623469141"
DOC_ANON_POSTS = "28904005159232689"
DOC_TIMELINE = "29104886249145907"
DOC_PROFILE = "27937681195819736"
HASH_TEST_LOGIN = "d6f4427fbe92d846298cf93df0b937d3"
HASH_STORIES = "303a4ae99711322310f25250d988f3b7"
HASH_HIGHLIGHTS = "7c16654f22c819fb63d1183034a5162f"
HASH_HIGHLIGHT_ITEMS = "45246d3fe16ccc6577e0bd297a5db1ab"
# Most reels one request may name: instaloader groups 50 accounts per stories query;
# reels_media is asked for 5 highlight reels at a time by gallery-dl and the web app.
MAX_STORY_REELS = 50
MAX_REELS_MEDIA = 5

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def shortcode_of(pk: int) -> str:
    """Instagram's shortcode: the media id in URL-safe base64, without leading zeros."""
    code = ""
    while pk:
        pk, digit = divmod(pk, 64)
        code = _B64[digit] + code
    return code or "A"


def cdn_url(name: str, ext: str) -> str:
    """A CDN URL shaped like Instagram's (signed query parameters the CDN ignores here)."""
    sig = hashlib.sha1(name.encode()).hexdigest()[:16]
    return (
        f"https://{CDN_HOST}/v/t51.2885-15/{name}.{ext}"
        f"?_nc_ht=scontent.cdninstagram.com&_nc_cat=1&oh=00_{sig}&oe=68000000"
    )


def media_bytes(url: str, size: int) -> bytes:
    """Deterministic content of the file at ``url`` (its path decides), ``size`` bytes.

    No two stretches of it are alike, so bytes continued from a wrong offset show."""
    return hashlib.shake_256(urlsplit(url).path.encode()).digest(size)


# ----- the data model --------------------------------------------------------


@dataclass
class FakeChild:
    """One slide of a carousel."""

    pk: int
    is_video: bool = False
    image_size: int = 3000
    video_size: int = 6000

    @property
    def image_url(self) -> str:
        return cdn_url(str(self.pk), "jpg")

    @property
    def video_url(self) -> str | None:
        return cdn_url(str(self.pk), "mp4") if self.is_video else None

    def media(self) -> dict[str, int]:
        """CDN path -> size of this slide's files."""
        files = {self.image_url: self.image_size}
        if self.video_url:
            files[self.video_url] = self.video_size
        return files

    def covers(self) -> set[str]:
        """CDN paths of video stills (served as real JPEGs)."""
        return {urlsplit(self.image_url).path} if self.is_video else set()


@dataclass
class FakePost:
    """A post: ``kind`` image, video, carousel or reel (a video with product_type clips)."""

    pk: int
    kind: str = "image"
    taken_at: int = NEWEST
    caption: str | None = None
    likes: int = 0
    comments: int = 0
    children: list[FakeChild] = field(default_factory=list)
    location: dict | None = None  # {"pk", "name", "lat", "lng"}
    image_size: int = 3000
    video_size: int = 6000

    @property
    def code(self) -> str:
        return shortcode_of(self.pk)

    @property
    def is_video(self) -> bool:
        return self.kind in ("video", "reel")

    @property
    def media_type(self) -> int:
        return 8 if self.kind == "carousel" else 2 if self.is_video else 1

    @property
    def image_url(self) -> str:
        return cdn_url(str(self.pk), "jpg")

    @property
    def video_url(self) -> str | None:
        """The best video version (the one an archive should keep)."""
        return cdn_url(str(self.pk), "mp4") if self.is_video else None

    @property
    def low_video_url(self) -> str | None:
        return cdn_url(f"{self.pk}_480", "mp4") if self.is_video else None

    def media(self) -> dict[str, int]:
        """CDN path -> size of every file this post references."""
        files = {self.image_url: self.image_size, cdn_url(f"{self.pk}_640", "jpg"): 1000}
        if self.is_video:
            files[self.video_url] = self.video_size
            files[self.low_video_url] = self.video_size // 2
        for child in self.children:
            files.update(child.media())
        return files

    def covers(self) -> set[str]:
        """CDN paths of video stills: a video's image, a video slide's image."""
        paths = {urlsplit(self.image_url).path} if self.is_video else set()
        return paths.union(*(child.covers() for child in self.children))


@dataclass
class FakeStoryItem:
    """One story (or highlight) item."""

    pk: int
    is_video: bool = False
    taken_at: int = NEWEST
    image_size: int = 3000
    video_size: int = 6000

    @property
    def image_url(self) -> str:
        return cdn_url(f"s{self.pk}", "jpg")

    @property
    def video_url(self) -> str | None:
        return cdn_url(f"s{self.pk}", "mp4") if self.is_video else None

    def media(self) -> dict[str, int]:
        files = {self.image_url: self.image_size, cdn_url(f"s{self.pk}_640", "jpg"): 1000}
        if self.is_video:
            files[self.video_url] = self.video_size
            files[cdn_url(f"s{self.pk}_480", "mp4")] = self.video_size // 2
        return files

    def covers(self) -> set[str]:
        """CDN paths of video stills."""
        return {urlsplit(self.image_url).path} if self.is_video else set()


@dataclass
class FakeHighlight:
    """A highlight reel: an id, a title (any characters) and items."""

    id: int
    title: str
    items: list[FakeStoryItem] = field(default_factory=list)
    updated_at: int | None = None  # when an item was last added; set it when changing items

    @property
    def latest(self) -> int:
        """The tray's latest_reel_media: when the highlight last changed."""
        return self.updated_at or max((i.taken_at for i in self.items), default=0)

    @property
    def cover_url(self) -> str:
        return cdn_url(f"hc{self.id}", "jpg")

    def media(self) -> dict[str, int]:
        files = {self.cover_url: 1500}
        for item in self.items:
            files.update(item.media())
        return files

    def covers(self) -> set[str]:
        """CDN paths of its video items' stills."""
        return set().union(*(item.covers() for item in self.items))


@dataclass
class FakeProfile:
    """An Instagram account as the fake serves it; ``posts`` newest first."""

    username: str
    pk: int
    full_name: str = ""
    is_private: bool = False
    followed_by_viewer: bool = False
    posts: list[FakePost] = field(default_factory=list)
    stories: list[FakeStoryItem] = field(default_factory=list)
    highlights: list[FakeHighlight] = field(default_factory=list)
    biography: str = "A fake profile."
    external_url: str | None = None
    followers: int = 100
    pic_version: int = 0  # change_picture() makes a new picture file (a new CDN name)

    @property
    def pic_url(self) -> str:
        return cdn_url(f"p{self.pk}" + (f"_v{self.pic_version}" if self.pic_version else ""), "jpg")

    def change_picture(self) -> str:
        """A new profile picture (a new file on the CDN, as Instagram serves one); its URL."""
        self.pic_version += 1
        return self.pic_url

    def media(self) -> dict[str, int]:
        files = {self.pic_url: 1200}
        for thing in [*self.posts, *self.stories, *self.highlights]:
            files.update(thing.media())
        return files

    def covers(self) -> set[str]:
        """CDN paths of every video still the profile's media name."""
        return set().union(*(thing.covers() for thing in [*self.posts, *self.stories, *self.highlights]))

    def post(self, code: str) -> FakePost | None:
        """The post with this shortcode, if the profile has it."""
        return next((post for post in self.posts if post.code == code), None)


@dataclass
class FakeSession:
    """A logged-in Instagram session (the bot's account)."""

    username: str
    user_id: int
    sessionid: str
    csrftoken: str
    expired: bool = False

    def cookies(self) -> dict[str, str]:
        """The cookies instaloader's session file holds after ``instaloader --login``."""
        return {
            "csrftoken": self.csrftoken,
            "sessionid": self.sessionid,
            "ds_user_id": str(self.user_id),
            "mid": "ZfakeMIDaaaaaaaaaaaaaaaaaaa",
            "ig_did": "00000000-0000-4000-8000-000000000000",
        }


ODD_TITLES = ("Travel / 2024", "<b>Food & Drinks</b>", "🌊 Summer ☀️")


def make_profile(
    username: str,
    pk: int,
    *,
    posts: int = 30,
    private: bool = False,
    followed: bool = False,
    stories: int = 2,
    highlights: tuple[str, ...] = ODD_TITLES,
    image_size: int = 3000,
    video_size: int = 6000,
) -> FakeProfile:
    """A profile whose posts cycle image, video, carousel (image, video, image), reel."""
    profile = FakeProfile(username, pk, f"{username.title()} Example", private, followed)
    kinds = ("image", "video", "carousel", "reel")
    for index in range(posts):
        post_pk = 3_000_000_000_000_000_000 + pk * 100_000 + index * 10
        post = FakePost(
            post_pk,
            kinds[index % len(kinds)],
            taken_at=NEWEST - index * 86_400,
            caption=f"Post {index} of @{username} #fake",
            likes=index * 3,
            comments=index,
            image_size=image_size,
            video_size=video_size,
        )
        if post.kind == "carousel":
            post.children = [
                FakeChild(post_pk + 1, False, image_size, video_size),
                FakeChild(post_pk + 2, True, image_size, video_size),
                FakeChild(post_pk + 3, False, image_size, video_size),
            ]
        if index == 0:
            post.location = {"pk": 213385402, "name": "Berlin, Germany", "lat": 52.52, "lng": 13.405}
        profile.posts.append(post)
    story_base = 3_500_000_000_000_000_000 + pk * 1000
    profile.stories = [
        FakeStoryItem(story_base + i, i % 2 == 1, NEWEST + 3600 * i, image_size, video_size)
        for i in range(stories)
    ]
    for h_index, title in enumerate(highlights):
        items = [
            FakeStoryItem(story_base + 100 * (h_index + 1) + i, i == 1, NEWEST - 864_000 - i)
            for i in range(2)
        ]
        profile.highlights.append(FakeHighlight(17_900_000_000_000_000 + pk * 10 + h_index, title, items))
    return profile


# ----- session files ---------------------------------------------------------


def write_session_file(path: Path, session: FakeSession) -> Path:
    """Write what ``instaloader --login USER`` writes: a pickled dict of the session's cookies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(session.cookies(), file)
    return path


def write_cookies_txt(path: Path, session: FakeSession) -> Path:
    """Write a browser-exported Netscape cookies.txt with the same cookies (plus a foreign one)."""
    lines = ["# Netscape HTTP Cookie File", "# https://curl.se/docs/http-cookies.html", ""]
    expires = 2_000_000_000
    for name, value in session.cookies().items():
        # Browsers export HttpOnly cookies (sessionid) with this prefix.
        prefix = "#HttpOnly_" if name == "sessionid" else ""
        lines.append(f"{prefix}.instagram.com\tTRUE\t/\tTRUE\t{expires}\t{name}\t{value}")
    lines.append(f".example.org\tTRUE\t/\tFALSE\t{expires}\tsessionid\tnot-instagram")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ----- the fake --------------------------------------------------------------


@dataclass
class _Broken:
    after: int
    stall_seconds: float


class FakeInstagram:
    """Instagram's web site, mobile API and CDN as handlers on a FakeInternet."""

    def __init__(self, internet: FakeInternet):
        self.internet = internet
        self.profiles: dict[str, FakeProfile] = {}
        self.sessions: dict[str, FakeSession] = {}
        self.media_delay = 0.0  # seconds per byte of media (a slow link)
        # Range requests are answered 206 with Content-Range, ETag and Last-Modified, as the
        # real CDN does; False: the whole file (200) instead, as some servers answer.
        self.honour_range = True
        self.cdn_bytes_sent = 0  # media bytes written to clients so far
        self.cdn_open = 0  # media answers being sent right now
        self.media_gate = internet.new_gate()  # holds CDN files half-way on cue (tests/fakes/gate.py)
        self.expired_answer = "401"  # or "redirect": how an expired session is refused
        # Anonymous profile pages redirect to the login page (as for many server addresses).
        self.login_wall = False
        self.retry_after: int | None = None  # seconds sent as Retry-After with a 429
        self._rate_limit: int | None = 0  # API requests still answered 429; None: all
        self._rate_limit_prefix: str | None = None
        self._checkpoint: str | None = None
        self._forbidden: set[str] | None = set()  # media paths answered 403; None: all
        self._broken: dict[str, _Broken] = {}
        self._failing: dict[str, int] = {}  # media path -> answers of 503 still to give
        self._lsd_tokens: set[str] = set()
        self._fail_after: tuple[int, str] | None = None  # (timeline pages still served, then what)
        self._dtsg_tokens: set[str] = set()
        internet.add_host(WWW, self._www)
        internet.add_host(IPHONE, self._iphone)
        internet.add_host(CDN_HOST, self._cdn)
        for pattern in CDN_PATTERNS:
            internet.add_host(pattern, self._cdn)

    # ---- data and sessions ---------------------------------------------------

    def add_profile(self, profile: FakeProfile) -> FakeProfile:
        """Serve ``profile`` (replacing one with the same username)."""
        self.profiles[profile.username.lower()] = profile
        return profile

    def rename(self, old: str, new: str) -> FakeProfile:
        """The account called ``old`` is now called ``new`` (same id, same posts); ``old`` is free."""
        profile = self.profiles.pop(old.lower())
        profile.username = new
        self.profiles[new.lower()] = profile
        return profile

    def delete_post(self, username: str, code: str) -> FakePost:
        """The owner deleted a post: no listing names it any more; returned for ``restore_post``."""
        profile = self.profiles[username.lower()]
        post = profile.post(code)
        if post is None:
            raise KeyError(code)
        profile.posts.remove(post)
        return post

    def restore_post(self, username: str, post: FakePost) -> None:
        """A deleted (or archived-then-unarchived) post is listed again, in its place by date."""
        posts = self.profiles[username.lower()].posts
        posts.append(post)
        posts.sort(key=lambda p: p.taken_at, reverse=True)

    def fail_timeline_after(self, pages: int, what: str = "429") -> None:
        """After ``pages`` more timeline pages, answer every API request with a 429 (or a
        checkpoint): a listing cut part-way."""
        self._fail_after = (pages, what)

    def login(self, username: str = "archivebot", user_id: int = 999) -> FakeSession:
        """A fresh valid session of the bot's account."""
        session = FakeSession(username, user_id, secrets.token_hex(16), secrets.token_hex(16))
        self.sessions[session.sessionid] = session
        return session

    def expire_session(self, session: FakeSession | None = None, *, answer: str = "401") -> None:
        """Stop accepting ``session`` (or all sessions): test_login answers null, API 401/redirect."""
        self.expired_answer = answer
        for each in [session] if session else list(self.sessions.values()):
            each.expired = True

    def expected_bytes(self, url: str) -> bytes:
        """The bytes the CDN serves for ``url``."""
        size = self._media_index().get(urlsplit(url).path)
        if size is None:
            raise KeyError(url)
        if urlsplit(url).path in self._covers():
            return still_jpeg(urlsplit(url).path)
        return media_bytes(url, size)

    # ---- switches ------------------------------------------------------------

    def rate_limit(self, times: int | None = None, *, path_prefix: str | None = None) -> None:
        """Answer the next ``times`` API requests (None: all, until reset) with 429."""
        self._rate_limit = times
        self._rate_limit_prefix = path_prefix

    def stop_rate_limit(self) -> None:
        """Answer API requests normally again."""
        self._rate_limit = 0

    def checkpoint(self, kind: str | None = "checkpoint_required") -> None:
        """Answer every API request with HTTP 400 ``kind`` (checkpoint_required/challenge_required,
        or feedback_required: a temporary block)."""
        self._checkpoint = kind

    def forbid_media(self, url: str | None = None) -> None:
        """Answer media ``url`` (None: all media) with 403."""
        if url is None:
            self._forbidden = None
        elif self._forbidden is not None:
            self._forbidden.add(urlsplit(url).path)

    def fail_media(self, url: str, times: int = 1) -> None:
        """Answer media ``url`` with 503 the next ``times`` times, then serve it."""
        self._failing[urlsplit(url).path] = times

    def break_media(self, url: str, after: int, stall_seconds: float = 0.0) -> None:
        """Send only ``after`` bytes of ``url``, stall ``stall_seconds``, then drop the connection."""
        self._broken[urlsplit(url).path] = _Broken(after, stall_seconds)

    # ---- counting ------------------------------------------------------------

    def api_requests(self) -> list[Req]:
        """Requests to Instagram's web site and API (not the CDN)."""
        return [r for r in list(self.internet.requests) if r.host in API_HOSTS]

    def cdn_requests(self) -> list[Req]:
        """Requests to the media CDN."""
        return [
            r
            for r in list(self.internet.requests)
            if r.host == CDN_HOST or any(host_matches(p, r.host) for p in CDN_PATTERNS)
        ]

    def range_requests(self) -> list[tuple[str, str]]:
        """(path, Range header) of every CDN request that asked for part of a file."""
        found = []
        for req in self.cdn_requests():
            value = next((v for k, v in req.headers.items() if k.lower() == "range"), None)
            if value is not None:
                found.append((req.path, value))
        return found

    def cover_requests(self) -> list[Req]:
        """CDN requests for video stills (the covers the archive keeps for its gallery)."""
        covers = self._covers()
        return [r for r in self.cdn_requests() if r.path in covers]

    def cover_count(self) -> int:
        """How many CDN requests asked for a video's still."""
        return len(self.cover_requests())

    def api_count(self) -> int:
        """How many Instagram API (and page) requests were served."""
        return len(self.api_requests())

    def cdn_count(self) -> int:
        """How many CDN requests for media were served (profile pictures are counted apart)."""
        return len([r for r in self.cdn_requests() if not is_profile_picture(r.path)])

    def calls(self) -> list[str]:
        """The API requests as short labels, e.g. ``"POST /api/graphql 27128499623469141"``."""
        return [describe(r) for r in self.api_requests()]

    def query_count(self, doc_or_hash: str) -> int:
        """How many GraphQL requests used this doc_id or query_hash."""
        return sum(1 for r in self.api_requests() if _query_id(r) == doc_or_hash)

    # ---- www.instagram.com ---------------------------------------------------

    async def _www(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        form = await _form(request)
        path = request.path
        if path == "/":
            return self._start_page(request)
        if path.rstrip("/") == "/graphql/query":
            return self._graphql_query(request, form)
        if path.rstrip("/") == "/api/graphql":
            return self._web_api(request, form)
        if path == "/api/v1/users/web_profile_info/":
            return self._web_profile_info(request.query.get("username", ""), self._viewer(request))
        match = re.fullmatch(r"/([A-Za-z0-9._]+)/", path)
        if match and request.method == "GET":
            viewer = self._viewer(request)
            if self.login_wall and (viewer is None or viewer.expired):
                login = f"https://www.instagram.com/accounts/login/?next=/{match.group(1)}/"
                return web.Response(status=302, headers={"Location": login})
            return self._profile_page(match.group(1))
        return _json({"message": "Page not found", "status": "fail"}, 404)

    def _refusal(self, request: web.Request) -> web.StreamResponse | None:
        """The checkpoint and rate-limit switches, applied to every API request."""
        if self._checkpoint:
            body = {
                "message": self._checkpoint,
                "checkpoint_url": "https://www.instagram.com/challenge/?next=/",
                "lock": True,
                "status": "fail",
            }
            return _json(body, 400)
        limited = self._rate_limit is None or self._rate_limit > 0
        prefix_ok = self._rate_limit_prefix is None or request.path.startswith(self._rate_limit_prefix)
        if limited and prefix_ok:
            if self._rate_limit is not None:
                self._rate_limit -= 1
            body = {"message": "Please wait a few minutes before you try again.", "status": "fail"}
            headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
            return web.json_response(body, status=429, headers=headers)
        return None

    def _viewer(self, request: web.Request) -> FakeSession | None:
        """The logged-in session of a www request (None: anonymous)."""
        return self.sessions.get(request.cookies.get("sessionid", ""))

    def _session_refusal(self, request: web.Request) -> web.StreamResponse | None:
        """How Instagram refuses a logged-in-only query without a valid session."""
        viewer = self._viewer(request)
        if viewer is not None and not viewer.expired:
            return None
        if viewer is not None and self.expired_answer == "redirect":
            login = "https://www.instagram.com/accounts/login/?next=/"
            return web.Response(status=302, headers={"Location": login})
        body = {"message": "login_required", "require_login": True, "status": "fail"}
        return _json(body, 401)

    def _start_page(self, request: web.Request) -> web.StreamResponse:
        viewer = self._viewer(request)
        logged_in = viewer is not None and not viewer.expired
        lsd = secrets.token_urlsafe(12)
        self._lsd_tokens.add(lsd)
        parts = [f'["LSD",[],{{"token":"{lsd}"}},323]']
        parts.append(f'"IG_USER_EIMU":"{viewer.user_id if logged_in else 0}"')
        if logged_in:
            dtsg = secrets.token_urlsafe(16)
            self._dtsg_tokens.add(dtsg)
            parts.append(f'["DTSGInitialData",[],{{"token":"{dtsg}"}},258]')
        html = (
            "<!DOCTYPE html><html><head><title>Instagram</title></head><body>"
            f"<script>requireLazy({','.join(parts)})</script></body></html>"
        )
        response = web.Response(text=html, content_type="text/html")
        csrftoken = request.cookies.get("csrftoken") or secrets.token_hex(16)
        response.set_cookie("csrftoken", csrftoken, domain=".instagram.com", secure=True)
        return response

    def _profile_page(self, username: str) -> web.StreamResponse:
        profile = self.profiles.get(username.lower())
        if profile is None:
            return web.Response(status=404, text="<html>Page not found</html>", content_type="text/html")
        blobs = [_bbox({"xig_user_by_username": _page_user(profile)})]
        if not profile.is_private:
            timeline = {
                "id": f"page-{profile.pk}",
                "polaris_ordered_timeline_connection": _code_page(profile, 0),
            }
            blobs.append(_bbox({"xig_user_by_username": timeline}))
        scripts = "".join(
            '<script type="application/json" data-sjs>'
            + json.dumps(blob).replace("<", "\\u003c")
            + "</script>"
            for blob in blobs
        )
        title = f"<title>@{profile.username}</title>"
        html = f"<!DOCTYPE html><html><head>{title}</head><body>{scripts}</body></html>"
        return web.Response(text=html, content_type="text/html")

    def _graphql_query(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        """``graphql/query``: query_hash queries (GET) and doc_id queries (POST)."""
        params = form if request.method == "POST" else dict(request.query)
        variables = json.loads(params.get("variables") or "{}")
        query = params.get("query_hash") or params.get("doc_id")
        if query == HASH_TEST_LOGIN:
            viewer = self._viewer(request)
            ok = viewer is not None and not viewer.expired
            user = {"username": viewer.username, "id": str(viewer.user_id)} if ok else None
            return _json({"data": {"user": user}, "status": "ok"})
        refusal = self._session_refusal(request)
        if refusal is not None:
            return refusal
        viewer = self._viewer(request)
        if query == DOC_PROFILE:
            return self._profile_query(variables)
        if query == DOC_POST:
            return self._post_by_code(variables.get("shortcode", ""))
        if query == HASH_STORIES:
            return self._stories_query(variables.get("reel_ids") or [], viewer)
        if query == HASH_HIGHLIGHTS:
            return self._highlights(str(variables.get("user_id")), viewer)
        if query == HASH_HIGHLIGHT_ITEMS:
            return self._highlight_items(variables.get("highlight_reel_ids") or [], viewer)
        return _json({"message": f"unknown query {query}", "status": "fail"}, 400)

    def _web_api(self, request: web.Request, form: dict[str, str]) -> web.StreamResponse:
        """``api/graphql``: the web app's endpoint; it needs the start page's LSD token."""
        lsd = form.get("lsd", "")
        if lsd not in self._lsd_tokens or request.headers.get("x-fb-lsd") != lsd:
            return _json({"error": 1357004, "errorSummary": "Sorry, something went wrong"}, 400)
        variables = json.loads(form.get("variables") or "{}")
        doc_id = form.get("doc_id")
        if doc_id == DOC_POST:
            return self._post_by_code(variables.get("shortcode", ""))
        if doc_id == DOC_ANON_POSTS:
            return self._anon_posts_page(variables)
        if doc_id == DOC_TIMELINE:
            refusal = self._session_refusal(request)
            if refusal is not None:
                return refusal
            if form.get("fb_dtsg") not in self._dtsg_tokens:
                return _json({"error": 1357001, "errorSummary": "Please log in"}, 400)
            return self._timeline(variables, self._viewer(request))
        if doc_id == DOC_PROFILE:
            return self._profile_query(variables)
        return _json({"errors": [{"message": f"unknown doc_id {doc_id}"}]}, 400)

    def _web_profile_info(self, username: str, viewer: FakeSession | None) -> web.StreamResponse:
        if viewer is not None and viewer.expired:
            return _json({"message": "login_required", "require_login": True, "status": "fail"}, 401)
        profile = self.profiles.get(username.lower())
        if profile is None:
            return _json({"message": "User not found", "status": "fail"}, 404)
        user = {
            "followed_by_viewer": bool(viewer and profile.followed_by_viewer),
            "id": str(profile.pk),
            "username": profile.username,
            "full_name": profile.full_name,
            "is_private": profile.is_private,
            "profile_pic_url_hd": profile.pic_url,
            "edge_owner_to_timeline_media": {"count": len(profile.posts)},
            "biography": profile.biography,
            "external_url": profile.external_url,
            "edge_followed_by": {"count": profile.followers},
            "edge_follow": {"count": 50},
        }
        return _json({"data": {"user": user}, "status": "ok"})

    def _profile_by_id(self, user_id: str) -> FakeProfile | None:
        return next((p for p in self.profiles.values() if str(p.pk) == str(user_id)), None)

    def _profile_query(self, variables: dict) -> web.StreamResponse:
        profile = self._profile_by_id(variables.get("id", ""))
        if profile is None:
            return _json({"data": {"user": None}, "status": "ok"})
        user = _page_user(profile) | {
            "id": str(profile.pk),
            "media_count": len(profile.posts),
            "follower_count": profile.followers,
            "following_count": 50,
            "biography": profile.biography,
            "external_url": profile.external_url,
            "is_verified": False,
            "friendship_status": {
                "following": profile.followed_by_viewer,
                "followed_by": False,
                "blocking": False,
                "incoming_request": False,
                "outgoing_request": False,
            },
        }
        return _json({"data": {"user": user}, "status": "ok"})

    def _post_by_code(self, code: str) -> web.StreamResponse:
        for profile in self.profiles.values():
            post = profile.post(code)
            if post is not None:
                items = [_media(post, profile)]
                break
        else:
            items = []
        data = {"xdt_api__v1__media__shortcode__web_info": {"items": items}}
        return _json({"data": data, "extensions": {"is_final": True}})

    def _anon_posts_page(self, variables: dict) -> web.StreamResponse:
        page_id = str(variables.get("id", ""))
        profile = self._profile_by_id(page_id.removeprefix("page-"))
        if profile is None or profile.is_private:
            return _json({"data": {"node": None}})
        start = int(variables.get("after") or 0)
        connection = _code_page(profile, start)
        self._count_timeline_page()
        return _json({"data": {"node": {"polaris_ordered_timeline_connection": connection}}})

    def _count_timeline_page(self) -> None:
        """One timeline page served: switch on the failure fail_timeline_after asked for."""
        if self._fail_after is None:
            return
        pages, what = self._fail_after
        if pages > 1:
            self._fail_after = (pages - 1, what)
            return
        self._fail_after = None
        if what == "checkpoint":
            self.checkpoint()
        else:
            self.rate_limit(None)

    def _timeline(self, variables: dict, viewer: FakeSession | None) -> web.StreamResponse:
        profile = self.profiles.get(str(variables.get("username", "")).lower())
        edges: list[dict] = []
        has_next, end_cursor = False, None
        if profile is not None and _visible(profile, viewer):
            start = 0
            after = variables.get("after")
            if after:
                pk = int(str(after).split("_")[0])
                start = next(i for i, p in enumerate(profile.posts) if p.pk == pk) + 1
            posts = profile.posts[start : start + PAGE_SIZE]
            edges = [{"node": _media(p, profile), "cursor": f"{p.pk}_{profile.pk}"} for p in posts]
            has_next = start + PAGE_SIZE < len(profile.posts)
            end_cursor = f"{posts[-1].pk}_{profile.pk}" if posts else None
        connection = {
            "edges": edges,
            "page_info": {"has_next_page": has_next, "end_cursor": end_cursor},
        }
        data = {"xdt_api__v1__feed__user_timeline_graphql_connection": connection}
        self._count_timeline_page()
        return _json({"data": data, "extensions": {"is_final": True}, "status": "ok"})

    def _stories(self, reel_ids: list, viewer: FakeSession | None) -> web.StreamResponse:
        reels = []
        for reel_id in reel_ids:
            profile = self._profile_by_id(str(reel_id))
            if profile is None or not profile.stories or not _visible(profile, viewer):
                continue
            owner = _owner(profile)
            reels.append(
                {
                    "__typename": "GraphReel",
                    "id": str(profile.pk),
                    "latest_reel_media": max(i.taken_at for i in profile.stories),
                    "expiring_at": max(i.taken_at for i in profile.stories) + 86_400,
                    "seen": None,
                    "owner": owner,
                    "user": owner,
                    "items": [_story_node(i, profile) for i in profile.stories],
                }
            )
        return _json({"data": {"reels_media": reels}, "status": "ok"})

    def _stories_query(self, reel_ids: list, viewer: FakeSession | None) -> web.StreamResponse:
        if len(reel_ids) > MAX_STORY_REELS:
            return _json({"message": "Invalid reel_ids: too many", "status": "fail"}, 400)
        return self._stories(reel_ids, viewer)

    def _highlights(self, user_id: str, viewer: FakeSession | None) -> web.StreamResponse:
        profile = self._profile_by_id(user_id)
        if profile is None:
            return _json({"data": {"user": None}, "status": "ok"})
        highlights = profile.highlights if _visible(profile, viewer) else []
        edges = [
            {
                "node": {
                    "__typename": "GraphHighlightReel",
                    "id": str(h.id),
                    "title": h.title,
                    "cover_media": {"thumbnail_src": h.cover_url},
                    "cover_media_cropped_thumbnail": {"url": h.cover_url},
                    "owner": _owner(profile),
                }
            }
            for h in highlights
        ]
        user = {"edge_chaining": {"edges": []}, "edge_highlight_reels": {"edges": edges}}
        return _json({"data": {"user": user}, "status": "ok"})

    def _find_highlight(self, highlight_id: str) -> tuple[FakeProfile, FakeHighlight] | None:
        for profile in self.profiles.values():
            for highlight in profile.highlights:
                if str(highlight.id) == str(highlight_id):
                    return profile, highlight
        return None

    def _highlight_items(self, ids: list, viewer: FakeSession | None) -> web.StreamResponse:
        reels = []
        for highlight_id in ids:
            found = self._find_highlight(highlight_id)
            if found is None or not _visible(found[0], viewer):
                continue
            profile, highlight = found
            reels.append(
                {
                    "__typename": "GraphHighlightReel",
                    "id": str(highlight.id),
                    "latest_reel_media": max((i.taken_at for i in highlight.items), default=0),
                    "seen": None,
                    "owner": _owner(profile),
                    "items": [_story_node(i, profile) for i in highlight.items],
                }
            )
        return _json({"data": {"reels_media": reels}, "status": "ok"})

    # ---- i.instagram.com -------------------------------------------------------

    async def _iphone(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        viewer = self._bearer_session(request)
        if viewer is None or viewer.expired:
            body = {"message": "login_required", "require_login": True, "status": "fail"}
            return _json(body, 401)
        path = request.path
        if path == "/api/v1/feed/reels_media/":
            return self._reels_media(request.query.getall("reel_ids", []), viewer)
        match = re.fullmatch(r"/api/v1/media/(\d+)/info/", path)
        if match:
            return self._media_info(int(match.group(1)))
        match = re.fullmatch(r"/api/v1/users/(\d+)/info/", path)
        if match and (profile := self._profile_by_id(match.group(1))):
            return self._user_info(profile, viewer)
        match = re.fullmatch(r"/api/v1/highlights/(\d+)/highlights_tray/", path)
        if match and (profile := self._profile_by_id(match.group(1))):
            return self._highlights_tray(profile, viewer)
        return _json({"message": "not found", "status": "fail"}, 404)

    def _bearer_session(self, request: web.Request) -> FakeSession | None:
        """The session named by ``Authorization: Bearer IGT:2:<base64 json>``."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer IGT:2:"):
            return None
        try:
            token = json.loads(base64.b64decode(header.removeprefix("Bearer IGT:2:")))
        except ValueError:
            return None
        session = self.sessions.get(token.get("sessionid", ""))
        if session is None or str(session.user_id) != str(token.get("ds_user_id")):
            return None
        return session

    def _user_info(self, profile: FakeProfile, viewer: FakeSession) -> web.StreamResponse:
        """The mobile API's user info: counts, privacy, the viewer's friendship, the latest story."""
        user = _owner(profile) | {
            "hd_profile_pic_url_info": {"url": profile.pic_url},
            "media_count": len(profile.posts),
            "follower_count": profile.followers,
            "biography": profile.biography,
            "external_url": profile.external_url,
            "latest_reel_media": max((i.taken_at for i in profile.stories), default=0),
            "friendship_status": {"following": profile.followed_by_viewer, "is_private": profile.is_private},
        }
        return _json({"user": user, "status": "ok"})

    def _highlights_tray(self, profile: FakeProfile, viewer: FakeSession) -> web.StreamResponse:
        """The mobile API's highlights tray: each highlight with its latest_reel_media, no items."""
        highlights = profile.highlights if _visible(profile, viewer) else []
        tray = [
            {
                "id": f"highlight:{h.id}",
                "title": h.title,
                "latest_reel_media": h.latest,
                "media_count": len(h.items),
                "cover_media": {"cropped_image_version": {"url": h.cover_url}},
                "user": _owner(profile),
            }
            for h in highlights
        ]
        return _json({"tray": tray, "status": "ok"})

    def _reels_media(self, reel_ids: list[str], viewer: FakeSession) -> web.StreamResponse:
        reels = {}
        wanted = [r for r in ",".join(reel_ids).split(",") if r]
        if len(wanted) > MAX_REELS_MEDIA:
            return _json({"message": "Invalid reel_ids: too many", "status": "fail"}, 400)
        for reel_id in wanted:
            if reel_id.startswith("highlight:"):
                found = self._find_highlight(reel_id.removeprefix("highlight:"))
                if found and _visible(found[0], viewer):
                    profile, highlight = found
                    items = [_story_v1(i, profile) for i in highlight.items]
                    reels[reel_id] = {
                        "id": reel_id,
                        "items": items,
                        "latest_reel_media": highlight.latest,
                        "user": _owner(profile),
                    }
            elif (profile := self._profile_by_id(reel_id)) and _visible(profile, viewer):
                items = [_story_v1(i, profile) for i in profile.stories]
                reels[reel_id] = {"id": int(reel_id), "items": items, "user": _owner(profile)}
        return _json({"reels": reels, "reels_media": list(reels.values()), "status": "ok"})

    def _media_info(self, pk: int) -> web.StreamResponse:
        for profile in self.profiles.values():
            for post in profile.posts:
                if post.pk == pk:
                    return _json({"items": [_media(post, profile, v1=True)], "status": "ok"})
        return _json({"message": "Media not found or unavailable", "status": "fail"}, 400)

    # ---- the CDN ---------------------------------------------------------------

    def _media_index(self) -> dict[str, int]:
        index: dict[str, int] = {}
        for profile in list(self.profiles.values()):
            for url, size in profile.media().items():
                index[urlsplit(url).path] = size
        return index

    def _covers(self) -> set[str]:
        return set().union(*(profile.covers() for profile in list(self.profiles.values())))

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        size = self._media_index().get(request.path)
        if size is None:
            return web.Response(status=404, text="Not Found")
        if self._forbidden is None or request.path in self._forbidden:
            return web.Response(status=403, text="Bad URL timestamp")
        if self._failing.get(request.path, 0) > 0:
            self._failing[request.path] -= 1
            return web.Response(status=503, text="Service Unavailable")
        ext = request.path.rsplit(".", 1)[-1]
        content_type = "video/mp4" if ext == "mp4" else "image/jpeg"
        broken = self._broken.get(request.path)
        # A video's still is a real JPEG (the gallery decodes it); other files are filler bytes.
        body = still_jpeg(request.path) if request.path in self._covers() else media_bytes(request.path, size)
        size = len(body)
        headers = {"ETag": _etag(request.path, size), "Last-Modified": LAST_MODIFIED}
        headers["Accept-Ranges"] = "bytes"
        status, start = self._range(request, headers, size)
        if status == 416:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        if is_profile_picture(request.path) or request.path in self._covers():
            # A profile picture or a video's still: the gate, delay and byte counters are for media.
            return await self.internet.send_bytes(
                request, body[start:], content_type=content_type, status=status, headers=headers
            )
        self.cdn_open += 1
        try:
            return await self.internet.send_bytes(
                request,
                body[start:],
                content_type=content_type,
                status=status,
                headers=headers,
                abort_after=broken.after if broken else None,
                stall_seconds=broken.stall_seconds if broken else 0.0,
                per_byte_delay=self.media_delay,
                on_sent=self._count_sent,
                gate=self.media_gate,
            )
        finally:
            self.cdn_open -= 1

    def _count_sent(self, nbytes: int) -> None:
        self.cdn_bytes_sent += nbytes

    def _range(self, request: web.Request, headers: dict[str, str], size: int) -> tuple[int, int]:
        """(status, first byte) of the answer; a 206 gets its Content-Range header."""
        asked = request.headers.get("Range")
        if not asked or not self.honour_range or not asked.startswith("bytes="):
            return 200, 0
        if_range = request.headers.get("If-Range")
        if if_range is not None and if_range not in (headers["ETag"], headers["Last-Modified"]):
            return 200, 0  # the file changed since: all of it
        first, _, last = asked[len("bytes=") :].partition("-")
        if not first.isdigit() or last:  # the fetcher asks for "from N to the end" only
            return 200, 0
        start = int(first)
        if start >= size:
            return 416, 0
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        return 206, start


def is_profile_picture(path: str) -> bool:
    """Whether a CDN path is a profile picture's (``p<pk>.jpg``, ``p<pk>_v<n>.jpg``)."""
    return re.fullmatch(r"p\d+(_v\d+)?\.jpg", path.rsplit("/", 1)[-1]) is not None


def _etag(path: str, size: int) -> str:
    return '"' + hashlib.sha1(f"{path}:{size}".encode()).hexdigest()[:20] + '"'


# ----- JSON shapes -----------------------------------------------------------


def _json(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def _form(request: web.Request) -> dict[str, str]:
    if request.method != "POST":
        return {}
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def _query_id(req: Req) -> str | None:
    """The doc_id or query_hash of a GraphQL request."""
    if "query_hash" in req.query:
        return req.query["query_hash"]
    if req.method == "POST" and req.body:
        form = parse_qs(req.body.decode("latin-1"))
        return (form.get("doc_id") or [None])[0]
    return None


def describe(req: Req) -> str:
    """A short label of an API request, for assertions and debugging."""
    prefix = "i:" if req.host == IPHONE else ""
    label = f"{req.method} {prefix}{req.path}"
    query = _query_id(req)
    if query:
        label += f" {query}"
    if req.path == "/api/v1/feed/reels_media/":
        label += f" {req.query.get('reel_ids')}"
    return label


def _visible(profile: FakeProfile, viewer: FakeSession | None) -> bool:
    """Whether ``viewer`` may see the profile's content."""
    if not profile.is_private:
        return True
    return viewer is not None and (profile.followed_by_viewer or viewer.user_id == profile.pk)


def _bbox(data: dict) -> dict:
    """One embedded query result as the page's ScheduledServerJS blob nests it."""
    result = {"__bbox": {"complete": True, "result": {"data": data, "extensions": {}}}}
    preloader = ["RelayPrefetchedStreamCache", "next", [], ["adp_PolarisQueryRelayPreloader", result]]
    return {"require": [["ScheduledServerJS", "handle", None, [{"__bbox": {"require": [preloader]}}]]]}


def _owner(profile: FakeProfile) -> dict:
    return {
        "id": str(profile.pk),
        "pk": str(profile.pk),
        "username": profile.username,
        "full_name": profile.full_name,
        "is_private": profile.is_private,
        "profile_pic_url": profile.pic_url,
    }


def _page_user(profile: FakeProfile) -> dict:
    """The details blob of a profile page, as a logged-out visitor gets it."""
    return _owner(profile) | {
        "all_media_count": len(profile.posts),
        "friendship_status": None,
        "is_verified": False,
        "biography": profile.biography,
    }


def _code_page(profile: FakeProfile, start: int) -> dict:
    """A page of the logged-out posts connection: nodes carry only the shortcode."""
    posts = profile.posts[start : start + PAGE_SIZE]
    has_next = start + PAGE_SIZE < len(profile.posts)
    return {
        "edges": [{"node": {"code": p.code, "__typename": "XDTMediaDict"}} for p in posts],
        "page_info": {"has_next_page": has_next, "end_cursor": str(start + len(posts))},
    }


def _image_versions(name: str, size_hint: str) -> dict:
    return {
        "candidates": [
            {"url": cdn_url(name, "jpg"), "width": 1080, "height": 1350},
            {"url": cdn_url(f"{name}_{size_hint}", "jpg"), "width": 640, "height": 800},
        ]
    }


def _video_versions(name: str) -> list[dict]:
    # The low-quality version comes last; instaloader's own pick of the last entry would be wrong.
    return [
        {"type": 101, "url": cdn_url(name, "mp4"), "width": 1080, "height": 1920},
        {"type": 102, "url": cdn_url(f"{name}_480", "mp4"), "width": 480, "height": 854},
    ]


def _media(post: FakePost, profile: FakeProfile, *, v1: bool = False) -> dict:
    """A post as the XDT GraphQL API (or, ``v1``, the mobile API) describes it."""
    pk: int | str = post.pk if v1 else str(post.pk)
    media = {
        "pk": pk,
        "id": f"{post.pk}_{profile.pk}",
        "code": post.code,
        "taken_at": post.taken_at,
        "media_type": post.media_type,
        "product_type": {"reel": "clips", "carousel": "carousel_container"}.get(post.kind, "feed"),
        "user": _owner(profile),
        "caption": {"text": post.caption, "pk": str(post.pk + 7)} if post.caption else None,
        "like_count": post.likes,
        "comment_count": post.comments,
        "has_liked": False,
        "image_versions2": _image_versions(str(post.pk), "640"),
        "original_width": 1080,
        "original_height": 1350,
        "accessibility_caption": None,
    }
    if post.is_video:
        media["video_versions"] = _video_versions(str(post.pk))
        media |= {"video_duration": 12.5, "view_count": 100 + post.likes, "play_count": 150}
    if post.children:
        media["carousel_media_count"] = len(post.children)
        media["carousel_media"] = [_child(child, post) for child in post.children]
    if post.location:
        media["location"] = dict(post.location, short_name=post.location["name"])
    return media


def _child(child: FakeChild, post: FakePost) -> dict:
    node = {
        "pk": str(child.pk),
        "id": f"{child.pk}_0",
        "media_type": 2 if child.is_video else 1,
        "image_versions2": {"candidates": [{"url": child.image_url, "width": 1080, "height": 1350}]},
        "video_versions": None,
    }
    if child.is_video:
        node["video_versions"] = [{"type": 101, "url": child.video_url, "width": 1080, "height": 1920}]
    return node


def _story_node(item: FakeStoryItem, profile: FakeProfile) -> dict:
    """A story item as the query_hash GraphQL API describes it."""
    name = f"s{item.pk}"
    node = {
        "__typename": "GraphStoryVideo" if item.is_video else "GraphStoryImage",
        "id": str(item.pk),
        "is_video": item.is_video,
        "taken_at_timestamp": item.taken_at,
        "expiring_at_timestamp": item.taken_at + 86_400,
        "display_url": cdn_url(name, "jpg"),
        "display_resources": [
            {"src": cdn_url(f"{name}_640", "jpg"), "config_width": 640, "config_height": 1138},
            {"src": cdn_url(name, "jpg"), "config_width": 1080, "config_height": 1920},
        ],
        "owner": {"id": str(profile.pk), "username": profile.username},
    }
    if item.is_video:
        node["video_resources"] = [
            {"src": cdn_url(f"{name}_480", "mp4"), "config_width": 480, "profile": "BASELINE"},
            {"src": cdn_url(name, "mp4"), "config_width": 1080, "profile": "MAIN"},
        ]
    return node


def _story_v1(item: FakeStoryItem, profile: FakeProfile) -> dict:
    """A story item as the mobile API describes it (integer pk)."""
    name = f"s{item.pk}"
    node = {
        "pk": item.pk,
        "id": f"{item.pk}_{profile.pk}",
        "media_type": 2 if item.is_video else 1,
        "taken_at": item.taken_at,
        "image_versions2": _image_versions(name, "640"),
    }
    if item.is_video:
        node["video_versions"] = _video_versions(name)
    return node
