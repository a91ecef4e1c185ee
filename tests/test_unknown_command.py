"""A misspelled or unknown command gets one sentence pointing at /help, never silence (issue 20, item 8)."""

from __future__ import annotations

import pytest

from tests.chat import World
from tests.fakes.instagram import FakeInstagram, make_profile
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, STRANGER, TOKEN, make_settings, running_bot

GROUP = -100555


@pytest.fixture
async def world(net, data_dir):
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=3))
    with FakeTelegram(TOKEN) as telegram:
        async with running_bot(make_settings(data_dir, net=net, telegram=telegram)) as app:
            yield World(telegram, instagram, FakeTikTok(net), app)


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("/downlaod alice", "Unknown command /downlaod. Did you mean /download? Send /help for the list."),
        ("/stauts", "Unknown command /stauts. Did you mean /status? Send /help for the list."),
        ("/chek alice", "Unknown command /chek. Did you mean /check? Send /help for the list."),
        ("/xyzzy alice", "Unknown command /xyzzy. Send /help for the list."),  # nothing close: no guess
    ],
)
async def test_an_unknown_command_gets_one_sentence(world, data_dir, command, answer):
    mark = world.say(command)
    reply = await world.telegram.await_for("sendMessage", chat_id=OWNER, after=mark, timeout=20)
    assert reply.params["text"] == answer
    assert "/help" in await world.reply("/start")  # a marker: everything before it was handled
    assert len([c for c in world.telegram.calls[mark:] if c.method == "sendMessage"]) == 2  # one each
    assert world.instagram.calls() == [] and not (data_dir / "downloads").exists()


async def test_known_commands_are_not_taken_by_it(world):
    assert "/download" in await world.reply("/help")
    assert "Unknown command" not in await world.reply("/download@archive_test_bot")  # its usage line
    assert "Usage: /list" in await world.reply("/list 2")


async def test_a_stranger_gets_the_usual_refusal_not_a_suggestion(world):
    answer = await world.reply("/downlaod alice", user=STRANGER)
    assert "not allowed" in answer and "Did you mean" not in answer


async def test_another_bots_command_in_a_group_is_left_alone(world):
    mark = len(world.telegram.calls)
    world.telegram.send_message(OWNER, "/stats@other_bot", chat_id=GROUP, chat_type="group")
    world.telegram.send_message(OWNER, "/stats@archive_test_bot", chat_id=GROUP, chat_type="group")
    reply = await world.telegram.await_for("sendMessage", chat_id=GROUP, after=mark, timeout=20)
    assert reply.params["text"].startswith("Unknown command /stats.")
    assert len([c for c in world.telegram.calls[mark:] if c.method == "sendMessage"]) == 1
