"""A fake TikTok (web pages, item_list API and a video CDN) for real yt-dlp, behind FakeInternet.

It answers the requests yt-dlp's TikTok extractors make (as recorded from real runs):

- ``GET https://www.tiktok.com/@<user>``: HTML whose
  ``__UNIVERSAL_DATA_FOR_REHYDRATION__`` script holds ``webapp.user-detail``
  (statusCode 0; 10222 private; 10221 with an empty ``userInfo`` for a user
  that does not exist, which is how TikTok answers it: HTTP 200, not 404).
- ``GET https://www.tiktok.com/api/creator/item_list/?secUid=..&cursor=<ms>``:
  newest first, items strictly older than the cursor, ``page_size`` per page,
  ``hasMorePrevious``.
- ``GET https://www.tiktok.com/@<user>/video/<id>``: ``webapp.video-detail``
  with ``itemInfo.itemStruct`` (statusCode 0, or 10216/10222/10204).
- ``GET https://<CDN_HOST>/video/tos/...``: deterministic bytes with
  Content-Length (Range supported); yt-dlp drops media URLs on www.tiktok.com,
  so media lives on a CDN host name.
- Photo posts ("photo mode") as the web app gets them: no playable video (no
  ``playAddr``), ``imagePost.images[].imageURL.urlList`` with a webp and a jpeg
  address per slide on ``IMAGE_HOST``, and the sound as ``music.playUrl`` on
  ``MUSIC_HOST``. Both are signed like TikTok's (``x-signature``) and expire six
  hours after they were listed (``x-expires``, against the fake's clock ``now``):
  an edited or expired URL gets 403. A LIVE replay is listed with ``liveRoomInfo`` and no playable video.
- A video's cover (``video.cover`` and ``originCover`` in the listing) on
  ``COVER_HOST``: a real JPEG, signed and expiring like the slides.

Like TikTok's bot detection, the user and video pages carry their data only
for a browser-like request (the navigation headers a real browser sends, which
yt-dlp sends only when it impersonates one through curl_cffi); anything else gets
the page without its data. ``browser_check = False`` turns that off.

Switches: ``rate_limited`` (429 on every host), ``ip_blocked`` (statusCode
10204), per account ``listing_hidden``, per video ``page_http``/``page_status``/
``media_http``/``cover_http``, per photo post ``slide_failures`` (slide number -> how many more
requests get 503), and ``media_delay`` (slow media). FakeInternet records every
request; the ``count_*`` helpers count the ones tests care about, ``range_requests()``
the ranges asked for, ``cdn_bytes_sent`` and ``cdn_open`` what the video CDN sends.
"""

from __future__ import annotations

import hashlib
import html
import json
import zlib
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.stills import still_jpeg

WWW = "www.tiktok.com"
CDN_HOST = "v16-webapp-prime.tiktokcdn-us.com"
IMAGE_HOST = "p16-sign-va.tiktokcdn.com"
URL_LIFETIME = 6 * 3600  # photo and sound URLs expire, as TikTok's signed CDN URLs do
MUSIC_HOST = "sf16-ies-music-va.tiktokcdn.com"
COVER_HOST = "p16-pu-sign-useast8.tiktokcdn-us.com"
# Newest post of every generated account: 2025-06-15 12:00 UTC; posts go back one hour each.
NEWEST = 1_750_000_000
STATUS_OK = 0
STATUS_USER_MISSING = 10221
STATUS_PRIVATE = 10222
STATUS_POST_PRIVATE = 10216
STATUS_IP_BLOCKED = 10204
# Not documented anywhere; yt-dlp reports any other code as "Video not available, status code N".
STATUS_POST_MISSING = 10217


@dataclass
class FakePost:
    """One post: a video, a photo post (``photo``: ``slides`` images and a sound), or a LIVE replay."""

    id: str
    create_time: int
    desc: str = ""
    size: int = 50_000
    photo: bool = False
    slides: int = 3
    sound: bool = True  # a photo post's music.playUrl
    live: bool = False
    slide_failures: dict[int, int] = field(default_factory=dict)
    page_status: int = STATUS_OK  # webapp.video-detail statusCode of its page
    page_http: int | None = None  # answer its page with this HTTP status instead
    media_http: int | None = None  # answer its media with this HTTP status instead
    cover_http: int | None = None  # answer its cover with this HTTP status instead

    def content(self, part: str = "") -> bytes:
        """The media bytes: deterministic per id (and slide ``part``, "1", "2"... or "sound"),
        never repeating, so bytes appended at a wrong offset change the sha256."""
        size = self.size + (len(part) and 100 * (int(part) if part.isdigit() else 99))
        return hashlib.shake_256(f"{self.id}{part}".encode()).digest(size)


@dataclass
class FakeAccount:
    """One TikTok account as the fake serves it; ``posts`` newest first."""

    username: str
    sec_uid: str
    nickname: str
    user_id: str
    private: bool = False
    # The listing shows nothing but says there is more, as TikTok does when every
    # video is private or a login is needed (yt-dlp then asks for a login).
    listing_hidden: bool = False
    posts: list[FakePost] = field(default_factory=list)

    @property
    def videos(self) -> list[FakePost]:
        """The posts yt-dlp can download (not photo posts, not LIVE replays)."""
        return [post for post in self.posts if not post.photo and not post.live]

    @property
    def photo_posts(self) -> list[FakePost]:
        """The photo posts, newest first."""
        return [post for post in self.posts if post.photo]

    def post(self, post_id: str) -> FakePost | None:
        """The post with this id, if the account has it."""
        return next((post for post in self.posts if post.id == post_id), None)


def sec_uid_for(username: str) -> str:
    """A secUid shaped like TikTok's (yt-dlp matches ``MS4wLjABAAAA[\\w-]{64}``)."""
    return "MS4wLjABAAAA" + hashlib.sha256(username.encode()).hexdigest()


def post_id_for(username: str, create_time: int, index: int) -> str:
    """A 19-digit id that, like TikTok's, carries its creation time in the high 32 bits."""
    low = zlib.crc32(f"{username}/{index}".encode())
    return str((create_time << 32) | low)


class FakeTikTok:
    """TikTok's web site and CDN as handlers on a FakeInternet."""

    def __init__(self, internet, *, page_size: int = 15):
        self.internet = internet
        self.page_size = page_size
        self.accounts: dict[str, FakeAccount] = {}
        self.rate_limited = False
        self.ip_blocked = False
        self.media_delay = 0.0  # seconds between 16 KiB media chunks
        self.cdn_bytes_sent = 0  # video bytes written to clients so far
        self.cdn_open = 0  # video answers being sent right now
        self.media_gate = internet.new_gate()  # holds CDN files half-way on cue (tests/fakes/gate.py)
        self.browser_check = True
        self.now = NEWEST  # the clock signed URLs expire by; a test moves it on between runs
        internet.add_host(WWW, self._www)
        internet.add_host(CDN_HOST, self._cdn)
        internet.add_host(IMAGE_HOST, self._image)
        internet.add_host(MUSIC_HOST, self._music)
        internet.add_host(COVER_HOST, self._cover)

    # ---- data -------------------------------------------------------------

    def rename(self, old: str, new: str) -> FakeAccount:
        """The account called ``old`` is now called ``new`` (same secUid, same videos)."""
        account = self.accounts.pop(old)
        account.username = new
        self.accounts[new] = account
        return account

    def add_account(
        self,
        username: str,
        *,
        videos: int = 0,
        photos: tuple[int, ...] = (),
        lives: tuple[int, ...] = (),
        private: bool = False,
        size: int = 50_000,
        slides: int = 3,
    ) -> FakeAccount:
        """An account with ``videos`` videos; the positions in ``photos`` are photo posts of
        ``slides`` images, those in ``lives`` LIVE replays."""
        count = videos + len(photos) + len(lives)
        posts = []
        for index in range(count):
            created = NEWEST - 3600 * index
            posts.append(
                FakePost(
                    id=post_id_for(username, created, index),
                    create_time=created,
                    desc=f"post {index} of @{username} #fake",
                    size=size + 1000 * index,  # distinct sizes catch mixed-up files
                    photo=index in photos,
                    slides=slides,
                    live=index in lives,
                )
            )
        account = FakeAccount(
            username=username,
            sec_uid=sec_uid_for(username),
            nickname=f"{username.title()} (fake)",
            user_id=str(6_800_000_000_000_000_000 + zlib.crc32(username.encode())),
            private=private,
            posts=posts,
        )
        self.accounts[username] = account
        return account

    def media_url(self, post: FakePost) -> str:
        """Where the CDN serves a post's video."""
        return (
            f"https://{CDN_HOST}/video/tos/useast2a/tos-useast2a-ve-0068c001/{post.id}/"
            f"?mime_type=video_mp4&br=800&ds=3&rc=fake"
        )

    def slide_urls(self, post: FakePost, number: int) -> list[str]:
        """A slide's addresses as TikTok lists them: webp first, then jpeg, both signed."""
        path = f"/tos-maliva-i-photomode-us/{post.id}_{number}~tplv-photomode-image"
        return [_signed(IMAGE_HOST, f"{path}.{ext}", self.now + URL_LIFETIME) for ext in ("webp", "jpeg")]

    def cover_urls(self, post: FakePost) -> list[str]:
        """A video's stills as the listing names them: ``cover`` (cropped), then ``originCover``."""
        paths = (f"/tos-useast8-p-0068-tx2/{post.id}~tplv-tiktokx-cropcenter:300:400.jpeg", f"/obj/{post.id}")
        return [_signed(COVER_HOST, path, self.now + URL_LIFETIME) for path in paths]

    def sound_url(self, post: FakePost) -> str:
        """Where a photo post's sound is served."""
        return _signed(MUSIC_HOST, f"/obj/ies-music-aiso/{post.id}.mp3", self.now + URL_LIFETIME)

    # ---- counting -------------------------------------------------------------

    def count_user_pages(self, username: str) -> int:
        """Requests for the user page of ``username``."""
        return sum(1 for req in self.internet.requests if req.host == WWW and req.path == f"/@{username}")

    def count_listing(self) -> int:
        """Requests to the item_list API."""
        return self.internet.count(host=WWW, path_prefix="/api/creator/item_list/")

    def count_video_pages(self, username: str | None = None) -> int:
        """Requests for per-video pages (of one user, or of all)."""
        prefix = f"/@{username}/video/" if username else None
        return sum(
            1
            for req in self.internet.requests
            if req.host == WWW and "/video/" in req.path and (prefix is None or req.path.startswith(prefix))
        )

    def page_requests(self) -> list:
        """The user and video page requests, in order (the ones TikTok's bot check guards)."""
        return [req for req in self.internet.requests if req.host == WWW and req.path.startswith("/@")]

    def count_media(self) -> int:
        """Requests to the video CDN."""
        return self.internet.count(host=CDN_HOST)

    def count_images(self) -> int:
        """Requests for photo posts' slides."""
        return self.internet.count(host=IMAGE_HOST)

    def count_covers(self) -> int:
        """Requests for videos' covers."""
        return self.internet.count(host=COVER_HOST)

    def count_sounds(self) -> int:
        """Requests for photo posts' sounds."""
        return self.internet.count(host=MUSIC_HOST)

    def range_requests(self) -> list[tuple[str, str]]:
        """(path, Range header) of every video CDN request that asked for part of a file."""
        found = []
        for req in [r for r in list(self.internet.requests) if r.host == CDN_HOST]:
            value = next((v for k, v in req.headers.items() if k.lower() == "range"), None)
            if value is not None:
                found.append((req.path, value))
        return found

    # ---- www.tiktok.com -----------------------------------------------------

    async def _www(self, request: web.Request) -> web.StreamResponse:
        if self.rate_limited:
            return _too_many()
        path = request.path
        if path == "/api/creator/item_list/":
            return self._item_list(request)
        parts = [part for part in path.split("/") if part]
        if parts and parts[0].startswith("@"):
            if self.browser_check and not looks_like_browser(request.headers):
                return _html_page_without_data()
            username = parts[0][1:]
            if len(parts) == 1:
                return self._user_page(username)
            if len(parts) == 3 and parts[1] == "video":
                return self._video_page(username, parts[2])
        # Includes /embed/@user, which yt-dlp tries when a user page has no secUid.
        return web.Response(status=404, text="Page not found")

    def _user_page(self, username: str) -> web.Response:
        account = self.accounts.get(username)
        if self.ip_blocked:
            detail = {"statusCode": STATUS_IP_BLOCKED, "statusMsg": "", "userInfo": {}}
        elif account is None:
            detail = {"statusCode": STATUS_USER_MISSING, "statusMsg": "", "userInfo": {}}
        else:
            detail = {
                # TikTok says 10222 for private accounts even to followers; without a
                # follower's cookies videoCount is then 0.
                "statusCode": STATUS_PRIVATE if account.private else STATUS_OK,
                "statusMsg": "",
                "userInfo": _user_info(account),
            }
        return _html_page({"webapp.user-detail": detail}, title=f"@{username} | TikTok")

    def _item_list(self, request: web.Request) -> web.Response:
        query = request.query
        account = next((acc for acc in self.accounts.values() if acc.sec_uid == query.get("secUid")), None)
        if self.ip_blocked:
            return web.json_response({"statusCode": STATUS_IP_BLOCKED, "itemList": []})
        if account is None or account.private:
            return web.json_response({"statusCode": 0, "itemList": [], "hasMorePrevious": False})
        if account.listing_hidden:
            return web.json_response({"statusCode": 0, "itemList": [], "hasMorePrevious": True})
        try:
            cursor = int(query.get("cursor", ""))
        except ValueError:
            return web.json_response({"statusCode": 10201, "statusMsg": "invalid cursor"})
        older = [post for post in account.posts if post.create_time * 1000 < cursor]
        page = older[: self.page_size]
        return web.json_response(
            {
                "statusCode": 0,
                "itemList": [self._item(account, post, listing=True) for post in page],
                "hasMorePrevious": len(older) > len(page),
                "hasMoreLatest": False,
            }
        )

    def _video_page(self, username: str, post_id: str) -> web.Response:
        account = self.accounts.get(username)
        post = account.post(post_id) if account else None
        if post is not None and post.page_http:
            return web.Response(status=post.page_http, text="Something went wrong")
        if self.ip_blocked:
            detail = {"statusCode": STATUS_IP_BLOCKED, "statusMsg": "", "itemInfo": {}}
        elif post is None:
            detail = {"statusCode": STATUS_POST_MISSING, "statusMsg": "", "itemInfo": {}}
        elif account.private:
            detail = {"statusCode": STATUS_PRIVATE, "statusMsg": "", "itemInfo": {}}
        elif post.page_status:
            detail = {"statusCode": post.page_status, "statusMsg": "", "itemInfo": {}}
        else:
            item = self._item(account, post, listing=False)
            detail = {"statusCode": 0, "statusMsg": "", "itemInfo": {"itemStruct": item}}
        return _html_page({"webapp.video-detail": detail}, title="TikTok")

    def _item(self, account: FakeAccount, post: FakePost, *, listing: bool) -> dict:
        """An itemStruct as TikTok's web app gets it (the listing's createTime is a number)."""
        item = {
            "id": post.id,
            "desc": post.desc,
            "createTime": post.create_time if listing else str(post.create_time),
            "author": {
                "id": account.user_id,
                "uniqueId": account.username,
                "nickname": account.nickname,
                "secUid": account.sec_uid,
            },
            "music": {"id": "7000000000000000001", "title": "original sound", "authorName": "x"},
            "stats": {"playCount": 1000, "diggCount": 100, "shareCount": 10, "commentCount": 5},
        }
        if post.photo:
            images = [
                {"imageURL": {"urlList": self.slide_urls(post, n)}, "imageWidth": 1080, "imageHeight": 1440}
                for n in range(1, post.slides + 1)
            ]
            item["imagePost"] = {"images": images, "title": post.desc}
            item["video"] = {"duration": 0, "width": 1080, "height": 1920}  # nothing to play
            if post.sound:
                item["music"] |= {"playUrl": self.sound_url(post), "duration": 12}
        elif post.live:
            item["liveRoomInfo"] = {"roomId": f"7{post.id[1:]}", "status": 4}
            item["video"] = {"duration": 0, "width": 720, "height": 1280}
        else:
            url = self.media_url(post)
            item["video"] = {
                "id": post.id,
                "width": 576,
                "height": 1024,
                "duration": 12,
                "ratio": "540p",
                "cover": self.cover_urls(post)[0],
                "originCover": self.cover_urls(post)[1],
                "playAddr": url,
                "bitrateInfo": [
                    {
                        "Bitrate": 800_000,
                        "CodecType": "h264",
                        "GearName": "normal_540_0",
                        "PlayAddr": {
                            "DataSize": post.size,
                            "UrlKey": f"v12044gd0000{post.id}_h264_540p_800000",
                            "UrlList": [url],
                        },
                    }
                ],
            }
        return item

    # ---- CDN ------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        if self.rate_limited:
            return _too_many()
        parts = [part for part in request.path.split("/") if part]
        post = self._post_by_id(parts[-1] if parts else "")
        if post is None or post.photo:
            return web.Response(status=404, text="Not Found")
        if post.media_http:
            return web.Response(status=post.media_http, text="Access Denied")
        if not request.headers.get("Referer", "").startswith("https://www.tiktok.com/"):
            return web.Response(status=403, text="Access Denied")  # TikTok's CDN checks it too
        return await self._send_media(request, post.content())

    async def _image(self, request: web.Request) -> web.StreamResponse:
        """A slide: ``/<bucket>/<post id>_<n>~tplv-photomode-image.<webp|jpeg>?x-signature=...``."""
        if self.rate_limited:
            return _too_many()
        if not _signature_ok(request, self.now):
            return web.Response(status=403, text="Access Denied")
        name = request.path.rsplit("/", 1)[-1].partition("~")[0]
        post_id, _, number = name.rpartition("_")
        post = self._post_by_id(post_id)
        if post is None or not post.photo or not number.isdigit() or not 1 <= int(number) <= post.slides:
            return web.Response(status=404, text="Not Found")
        if post.slide_failures.get(int(number)):
            post.slide_failures[int(number)] -= 1
            return web.Response(status=503, text="Service Unavailable")
        kind = "image/jpeg" if request.path.endswith(".jpeg") else "image/webp"
        return await self.internet.send_bytes(request, post.content(number), content_type=kind)

    async def _cover(self, request: web.Request) -> web.StreamResponse:
        """A video's still: ``/<bucket>/<post id>~tplv-...jpeg`` or ``/obj/<post id>``, signed."""
        if self.rate_limited:
            return _too_many()
        if not _signature_ok(request, self.now):
            return web.Response(status=403, text="Access Denied")
        post = self._post_by_id(request.path.rsplit("/", 1)[-1].partition("~")[0])
        if post is None or post.photo or post.live:
            return web.Response(status=404, text="Not Found")
        if post.cover_http:
            return web.Response(status=post.cover_http, text="Access Denied")
        return await self.internet.send_bytes(request, still_jpeg(post.id), content_type="image/jpeg")

    async def _music(self, request: web.Request) -> web.StreamResponse:
        """A photo post's sound: ``/obj/ies-music-aiso/<post id>.mp3?x-signature=...``."""
        if self.rate_limited:
            return _too_many()
        if not _signature_ok(request, self.now):
            return web.Response(status=403, text="Access Denied")
        post = self._post_by_id(request.path.rsplit("/", 1)[-1].removesuffix(".mp3"))
        if post is None or not post.photo or not post.sound:
            return web.Response(status=404, text="Not Found")
        return await self.internet.send_bytes(request, post.content("sound"), content_type="audio/mpeg")

    def _post_by_id(self, post_id: str) -> FakePost | None:
        for account in self.accounts.values():
            post = account.post(post_id)
            if post is not None:
                return post
        return None

    async def _send_media(self, request: web.Request, body: bytes) -> web.StreamResponse:
        ranged = bool(request.headers.get("Range"))
        start, end = _byte_range(request.headers.get("Range"), len(body))
        if start >= len(body):  # nothing left to send: "Range Not Satisfiable", as a real CDN says
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
        headers = {"Content-Range": f"bytes {start}-{end}/{len(body)}"} if ranged else None
        self.cdn_open += 1
        try:
            return await self.internet.send_bytes(
                request,
                body[start : end + 1],
                content_type="video/mp4",
                status=206 if ranged else 200,
                headers=headers,
                per_chunk_delay=self.media_delay,
                on_sent=self._count_sent,
                gate=self.media_gate,
            )
        finally:
            self.cdn_open -= 1

    def _count_sent(self, nbytes: int) -> None:
        self.cdn_bytes_sent += nbytes


def _user_info(account: FakeAccount) -> dict:
    """userInfo of webapp.user-detail (no itemList: TikTok no longer embeds one)."""
    visible = 0 if account.private else len(account.posts)
    return {
        "user": {
            "id": account.user_id,
            "uniqueId": account.username,
            "nickname": account.nickname,
            "secUid": account.sec_uid,
            "privateAccount": account.private,
            "verified": False,
            "avatarLarger": f"https://p16-sign.tiktokcdn-us.com/{account.user_id}.jpeg",
        },
        "stats": {
            "followerCount": 1234,
            "followingCount": 56,
            "heartCount": 7890,
            "videoCount": visible,
            "diggCount": 0,
        },
        # TikTok's statsV2 repeats the numbers as strings.
        "statsV2": {"videoCount": str(visible), "followerCount": "1234"},
    }


def _html_page(scope: dict, *, title: str) -> web.Response:
    """A TikTok web page carrying ``scope`` as its rehydration data."""
    data = json.dumps({"__DEFAULT_SCOPE__": scope}).replace("</", "<\\/")
    body = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{html.escape(title)}</title></head><body><div id="app"></div>'
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">'
        f"{data}</script></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


def looks_like_browser(headers) -> bool:
    """A top-level navigation as Chrome, Firefox and Safari send it (plain yt-dlp does not)."""
    return (
        headers.get("Sec-Fetch-Dest") == "document"
        and headers.get("Sec-Fetch-Mode") == "navigate"
        and "Sec-Fetch-Site" in headers
        and headers.get("Upgrade-Insecure-Requests") == "1"
        and headers.get("User-Agent", "").startswith("Mozilla/5.0")
    )


def _html_page_without_data() -> web.Response:
    """What TikTok serves a suspected bot: a page shell, no rehydration data."""
    body = (
        '<!DOCTYPE html><html lang="en"><head><title>TikTok</title></head>'
        '<body><div id="app"></div></body></html>'
    )
    return web.Response(text=body, content_type="text/html")


def _signed(host: str, path: str, expires: int) -> str:
    """A CDN URL signed as TikTok signs them (the signature covers the path and the expiry)."""
    return f"https://{host}{path}?x-expires={expires}&x-signature={_signature(path, str(expires))}"


def _signature(path: str, expires: str) -> str:
    return hashlib.sha256(f"{path}|{expires}".encode()).hexdigest()[:24]


def _signature_ok(request: web.Request, now: int) -> bool:
    """The URL came as listed (an edited path or expiry breaks the signature) and has not expired."""
    expires = request.query.get("x-expires", "")
    valid = request.query.get("x-signature") == _signature(request.path, expires)
    return valid and expires.isdigit() and int(expires) > now


def _too_many() -> web.Response:
    return web.Response(status=429, text="Too Many Requests")


def _byte_range(header: str | None, length: int) -> tuple[int, int]:
    """(first, last) byte of a ``Range: bytes=a-b`` header, or of the whole body."""
    if not header or not header.startswith("bytes="):
        return 0, length - 1
    first, _, last = header[len("bytes=") :].partition("-")
    start = int(first or 0)
    end = min(int(last), length - 1) if last else length - 1
    return start, end
