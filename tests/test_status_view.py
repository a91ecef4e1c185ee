"""Rendering of status messages: phases, progress, escaping, the 4,096 limit."""

from __future__ import annotations

from downloader.events import JobFinished, JobResult, PhaseResult, plural, summary_line
from downloader.queue import wire
from handlers.status_view import (
    JobView,
    SyncView,
    job_keyboard,
    progress_bar,
    render_job,
    render_sync,
    sync_line,
)


def test_running_phase_line_and_bar():
    view = JobView(
        1,
        "instagram",
        "alice",
        ["posts", "stories", "highlights"],
        state="running",
        phase="stories",
        done=3,
        total=7,
    )
    view.finished["posts"] = PhaseResult("posts", "done", downloaded=12, archived=30)
    text = render_job(view)
    assert "Downloading @alice stories… 3/7" in text
    assert "posts: 12 new, 30 already archived" in text
    assert progress_bar(3, 7) in text and "43%" in text
    assert [b.callback_data for b in job_keyboard(1, "running").inline_keyboard[0]] == [
        "job:pause:1",
        "job:cancel:1",
    ]


def test_summary_counts_posts_and_names_files_where_they_differ():
    phases = [
        PhaseResult("posts", "done", downloaded=42, posts=24),
        PhaseResult("stories", "done", downloaded=2),
        PhaseResult("highlights", "done", downloaded=7),
    ]
    result = JobResult(1, "instagram", "alice", "completed", phases)
    assert summary_line(result) == "Completed: 24 posts (42 files) + 9 stories/highlights"
    phases[0] = PhaseResult("posts", "done", downloaded=3, posts=3)  # one file per post
    assert summary_line(result) == "Completed: 3 posts + 9 stories/highlights"
    phases[0] = PhaseResult("posts", "done", downloaded=3, posts=1)
    assert summary_line(result) == "Completed: 1 post (3 files) + 9 stories/highlights"
    tiktok = JobResult(2, "tiktok", "bob", "completed", [PhaseResult("videos", "done", downloaded=4)])
    assert summary_line(tiktok) == "Completed: 4 videos"
    one = JobResult(2, "tiktok", "bob", "completed", [PhaseResult("videos", "done", downloaded=1)])
    assert summary_line(one) == "Completed: 1 video"
    assert (
        summary_line(JobResult(3, "tiktok", "bob", "failed", [], "No such account."))
        == "Failed: No such account."
    )


def test_summary_of_one_phase_names_only_that_phase():
    stories = JobResult(1, "instagram", "alice", "completed", [PhaseResult("stories", "done", downloaded=1)])
    assert summary_line(stories) == "Completed: 1 story"
    stories.phases[0].downloaded = 3
    assert summary_line(stories) == "Completed: 3 stories"
    highlights = JobResult(1, "instagram", "a", "paused", [PhaseResult("highlights", "paused", downloaded=6)])
    assert summary_line(highlights) == "Paused: 6 highlight items"
    posts = JobResult(1, "instagram", "a", "completed", [PhaseResult("posts", "done", downloaded=5, posts=4)])
    assert summary_line(posts) == "Completed: 4 posts (5 files)"


def test_plurals():
    assert [plural(n, "story") for n in (0, 1, 3)] == ["0 stories", "1 story", "3 stories"]
    assert plural(1, "post") == "1 post" and plural(2, "highlight item") == "2 highlight items"


def test_queued_line_only_when_another_download_runs():
    view = JobView(1, "instagram", "alice", ["posts", "stories", "highlights"])
    assert "Starting…" in render_job(view) and "Waiting" not in render_job(view)
    view.behind = "@bob"
    assert "Waiting for the running download of @bob to finish first." in render_job(view)


def test_user_content_is_escaped():
    view = JobView(1, "instagram", "alice", ["highlights"], state="running")
    view.finished["highlights"] = PhaseResult("highlights", "failed", message="<b>&oops</b>")
    view.warnings.append("title <script> & more")
    text = render_job(view)
    assert "<script>" not in text and "&lt;script&gt; &amp; more" in text
    assert "&lt;b&gt;&amp;oops" in text


def test_long_sync_lists_are_cut_under_the_limit():
    view = SyncView(9, total=500, done=500, state="completed")
    for i in range(500):
        result = JobResult(
            i, "instagram", f"user{i}_" + "x" * 20, "completed", [PhaseResult("posts", "done", 1)]
        )
        view.lines.append(sync_line(result))
    text = render_sync(view)
    assert len(text) <= 4096
    assert "…and 488 more" in text
    assert text.rstrip().endswith("</b>")  # the totals line survives


def test_keyboards_per_state():
    assert job_keyboard(5, "completed") is None
    assert [b.callback_data for b in job_keyboard(5, "paused").inline_keyboard[0]] == [
        "job:resume:5",
        "job:cancel:5",
    ]
    assert [b.callback_data for b in job_keyboard(5, "failed").inline_keyboard[0]] == ["job:retry:5"]


def test_summary_names_photo_posts_and_every_item_not_archived():
    videos = PhaseResult("videos", "done", downloaded=8, posts=5, photo_posts=1, images=3)
    result = JobResult(1, "tiktok", "painter", "completed", [videos])
    assert summary_line(result) == "Completed: 4 videos + 1 photo post (3 images)"
    view = JobView(1, "tiktok", "painter", ["videos"], state="completed", finished={"videos": videos})
    assert "✅ videos: 4 new + 1 photo post (3 images)" in render_job(view)
    videos.unsupported = 1
    videos.miss("7300000000000000068", "live replay, not supported")
    assert summary_line(result) == (
        "Completed: 4 videos + 1 photo post (3 images); "
        "1 item not archived: 7300…068 (live replay, not supported)"
    )
    videos.failed = 4
    for number in range(1, 5):  # a failure's sentence names the id again: not repeated
        videos.miss(f"7300000000000000099_{number}", f"7300000000000000099_{number}: HTTP 503.")
    videos.miss("7300000000000000068", "listed twice")  # one entry per id
    assert summary_line(result).endswith(
        "; 5 items not archived: 7300…068 (live replay, not supported), 7300…099_1 (HTTP 503), "
        "7300…099_2 (HTTP 503) and 2 more"
    )
    stored = PhaseResult.from_dict(videos.to_dict())  # kept on the job row, e.g. across a restart
    assert summary_line(JobResult(1, "tiktok", "painter", "completed", [stored])) == summary_line(result)


def test_a_job_missing_many_items_still_fits_one_message_between_processes():
    phases = [PhaseResult(name, "done", failed=30) for name in ("posts", "stories", "highlights")]
    for phase in phases:
        for number in range(30):
            phase.miss(f"33{number:017d}", "The platform refused this media file (HTTP 403). " * 5)
            phase.warnings.append("a warning that is long enough to matter " * 5)
    result = JobResult(7, "instagram", "alice", "completed", phases)

    text = wire.dumps(JobFinished(7, result))

    assert len(text) <= wire.LIMIT
    assert summary_line(wire.loads(text).result) == summary_line(result)
    assert "90 items not archived: 3300…000 (" in summary_line(result)
