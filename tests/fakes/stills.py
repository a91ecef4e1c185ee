"""Real JPEG stills for the fakes' video covers: deterministic, small, decodable by Pillow."""

from __future__ import annotations

import functools
import hashlib
import io

from PIL import Image


def still_colour(key: str) -> tuple[int, int, int]:
    """The one colour of the still named ``key`` (a test can find it again in a thumbnail)."""
    digest = hashlib.sha256(key.encode()).digest()
    return digest[0], digest[1], digest[2]


@functools.lru_cache(maxsize=256)
def still_jpeg(key: str, width: int = 360, height: int = 640) -> bytes:
    """A portrait JPEG of one colour, as a video's cover is (larger than a thumbnail)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), still_colour(key)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
