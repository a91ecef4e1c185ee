"""TikTok: accounts, their videos and photo posts (yt-dlp for listing and videos, our fetcher for photos).

``source`` is the Source; ``listing`` reads the user page and item_list pages; ``posts``
turns a listed post into files (or a named reason it cannot be archived); ``errors``
gives every failure a sentence.
"""

from downloader.sources.tiktok.errors import CERTIFICATE, translate
from downloader.sources.tiktok.source import TikTokSource

__all__ = ["CERTIFICATE", "TikTokSource", "translate"]
