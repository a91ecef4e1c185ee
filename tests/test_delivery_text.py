"""The pure parts of delivery: captions within Telegram's limit, summary lines, the backlog cut."""

from __future__ import annotations

from datetime import UTC, datetime

from db.models import MediaItem
from handlers.delivery.captions import caption, summary_counts, trim_utf16, utf16_len
from handlers.delivery.plan import units_of, within_limit
from tests.fakes.telegram import parse_html

WHEN = datetime(2025, 6, 15, 12, tzinfo=UTC)


def shown(html: str) -> str:
    """What Telegram shows for an HTML caption (the fake's parser is Telegram's rules)."""
    return parse_html(html)[0]


def test_caption_names_account_kind_date_text_and_link():
    html = caption(
        platform="tiktok",
        username="bob.dance",
        kind="video",
        taken_at=WHEN,
        text="<script> & co",
        link="https://www.tiktok.com/@bob.dance/video/1?a=1&b=2",
    )
    plain, entities = parse_html(html)
    assert plain == "@bob.dance (TikTok) · video · 2025-06-15\n<script> & co\nOpen on TikTok"
    assert entities[-1]["url"] == "https://www.tiktok.com/@bob.dance/video/1?a=1&b=2"


def test_long_captions_are_cut_to_1024_utf16_units_without_splitting_an_emoji():
    for filler in ("a", "🌊", "a🌊", "&<>"):
        html = caption(
            platform="instagram",
            username="alice",
            kind="post",
            taken_at=WHEN,
            text=filler * 2000,
            link="https://www.instagram.com/p/Cabc/",
        )
        plain = shown(html)
        assert 1000 < utf16_len(plain) <= 1024, filler
        assert "…\nOpen on Instagram" in plain and "\ufffd" not in plain
    assert trim_utf16("🌊🌊", 3) == "🌊…" and trim_utf16("short", 10) == "short"


def test_summary_counts_posts_not_files():
    rows = [("post", "C1", "1_1"), ("post", "C1", "1_2"), ("post", "C2", "2"), ("story", None, "9")]
    assert summary_counts(rows) == "2 new posts, 1 new story"
    assert summary_counts([]) == ""


def item(media_id: str, group: str | None) -> MediaItem:
    return MediaItem(
        media_id=media_id, group_id=group, platform="instagram", kind="post", path="x", taken_at=WHEN
    )


def test_backlog_keeps_the_newest_whole_posts():
    items = [
        item("a", None),
        item("b1", "B"),
        item("b2", "B"),
        item("b3", "B"),
        item("c", None),
        item("d", None),
    ]
    chosen, rest = within_limit(units_of(items), 3)
    assert [[i.media_id for i in unit] for unit in chosen] == [["c"], ["d"]]  # the carousel would not fit
    assert [i.media_id for i in rest] == ["a", "b1", "b2", "b3"]
    chosen, rest = within_limit(units_of([item("b1", "B"), item("b2", "B"), item("b3", "B")]), 2)
    assert [i.media_id for i in chosen[0]] == ["b1", "b2"] and [i.media_id for i in rest] == ["b3"]


def test_summary_counts_a_photo_post_once_however_many_files():
    rows = [("video", "1", "1"), ("photo", "2", "2_1"), ("photo", "2", "2_2"), ("audio", "2", "2")]
    assert summary_counts(rows) == "1 new video, 1 new photo post"
    assert summary_counts([*rows, ("photo", "3", "3_1")]) == "1 new video, 2 new photo posts"
