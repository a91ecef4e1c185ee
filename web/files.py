"""Archived files and their thumbnails, served by archive id, never by a path from the request."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from db.models import MediaItem
from downloader.paths import downloads_root
from web.keys import CONFIG, THUMBS
from web.thumbs import is_video

STATIC = Path(__file__).resolve().parent / "static"
FILE_CACHE = "private, max-age=86400"  # an archived file never changes under its id
THUMB_CACHE = "private, max-age=31536000, immutable"
MISSING = "That file is not in the archive (or no longer on disk)."


async def archived_file(request: web.Request) -> tuple[MediaItem, Path]:
    """The row and the on-disk path of /files/<id>; 404 unless it lies inside downloads/."""
    item = await MediaItem.get_or_none(id=int(request.match_info["id"]))
    if item is None:
        raise web.HTTPNotFound(text=MISSING)
    data_dir = request.app[CONFIG].data_dir
    root = downloads_root(data_dir)
    path = (Path(data_dir) / item.path).resolve()
    # The row's path is ours, but a tampered database must still not reach outside the archive.
    if root not in path.parents or not path.is_file():
        raise web.HTTPNotFound(text=MISSING)
    return item, path


async def file_view(request: web.Request) -> web.StreamResponse:
    """GET /files/<id>: the original file, streamed with ETag, Last-Modified and Range (206)."""
    _item, path = await archived_file(request)
    disposition = "attachment" if request.query.get("download") else "inline"
    headers = {"Cache-Control": FILE_CACHE, "Content-Disposition": f'{disposition}; filename="{path.name}"'}
    return web.FileResponse(path, chunk_size=256 * 1024, headers=headers)


async def thumb_view(request: web.Request) -> web.StreamResponse:
    """GET /thumbs/<id>: a ~320 px thumbnail, or a placeholder tile for videos and unreadable files."""
    item, path = await archived_file(request)
    thumb = await request.app[THUMBS].get(item.platform, item.media_id, path)
    if thumb is None:
        thumb = STATIC / ("video.svg" if is_video(path) else "broken.svg")
    return web.FileResponse(thumb, headers={"Cache-Control": THUMB_CACHE})


def add_routes(app: web.Application) -> None:
    """Files and thumbnails; the id is digits, so no other path reaches these handlers."""
    app.router.add_get(r"/files/{id:\d{1,12}}", file_view)
    app.router.add_get(r"/thumbs/{id:\d{1,12}}", thumb_view)
