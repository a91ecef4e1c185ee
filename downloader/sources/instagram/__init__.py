"""Instagram through instaloader, used as a library: listing only, never downloading.

The package is split by concern: ``api`` (endpoints, batching, counting), ``lookup``,
``posts``, ``reels`` (stories and highlights), ``session`` (login files), ``errors``
(translation), ``ratecontrol`` (politeness, budget, back-off), ``media`` (parsing) and
``source`` (the Source protocol on top).
"""

from downloader.sources.instagram.errors import translate
from downloader.sources.instagram.posts import SKIPPED_POST
from downloader.sources.instagram.source import InstagramSource

__all__ = ["SKIPPED_POST", "InstagramSource", "translate"]
