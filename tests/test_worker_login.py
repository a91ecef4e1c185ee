"""A login file sent in chat is the bot's login; a worker keeps its own (RabbitMQ, PostgreSQL).

The worker is a real `python bot.py worker` subprocess; which login each request carried
is read at the fake Instagram.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.fakes.instagram import FakeInstagram, FakeSession, make_profile, write_cookies_txt
from tests.test_login_chat import send_file
from tests.workers_kit import running_cluster, started_jobs

pytestmark = pytest.mark.timeout(180)


def requests_of(instagram: FakeInstagram, csrftoken: str, since: int = 0) -> int:
    """API requests served after the ``since``-th that carried the login with ``csrftoken``
    (a cookie, or the mobile API's header)."""
    served = instagram.api_requests()[since:]
    return sum(1 for r in served if csrftoken in " ".join(r.headers.values()))


async def test_a_worker_keeps_its_own_session_after_a_login_file_is_sent_in_chat(net, data_dir, tmp_path):
    async with running_cluster(net, data_dir, tmp_path) as cluster:
        world = cluster.world
        world.instagram.add_profile(make_profile("alice", 1001, posts=3, stories=1, highlights=()))
        own = pickle.loads(Path(cluster.env["INSTAGRAM_SESSION_FILE"]).read_bytes())  # our own file
        chat: FakeSession = world.instagram.login("chatbot", 555)
        cookies = write_cookies_txt(tmp_path / "cookies.txt", chat).read_bytes()
        answer, _ = await send_file(world, "cookies.txt", cookies)
        assert "Logged in to Instagram as @chatbot" in answer
        checked = len(world.instagram.api_requests())
        assert requests_of(world.instagram, chat.csrftoken) == checked == 1  # the bot's check

        worker = cluster.start("w-own", "--platform", "instagram")  # started after the chat login
        await worker.wait_for("takes instagram jobs")
        await world.reply("/download alice")
        final = await world.message_with("Completed:", timeout=90)
        assert "Completed: 3 posts" in final.plain, final.plain
        assert started_jobs(worker) == 1
        made = len(world.instagram.api_requests()) - checked
        assert made > 0
        assert requests_of(world.instagram, own["csrftoken"], since=checked) == made
        assert requests_of(world.instagram, chat.csrftoken, since=checked) == 0
        status = await world.reply("/status")
        assert "w-own (instagram, session archivebot)" in status
        assert "the file sent in chat" not in worker.output
