"""Every version of a status message names the platform the same way, the first one too (issue 20, item 8)."""

from __future__ import annotations

from tests.fakes.instagram import FakeInstagram, make_profile, write_session_file
from tests.fakes.telegram import FakeTelegram
from tests.fakes.tiktok import FakeTikTok
from tests.harness import OWNER, TOKEN, make_settings, running_bot


async def test_the_first_version_of_a_status_message_names_the_platform(net, data_dir, tmp_path):
    instagram = FakeInstagram(net)
    instagram.add_profile(make_profile("alice", 1001, posts=2, highlights=()))
    tiktok = FakeTikTok(net, page_size=5)
    tiktok.add_account("bob.dance", videos=2)
    session = write_session_file(tmp_path / "session-archivebot", instagram.login())
    with FakeTelegram(TOKEN) as telegram:
        settings = make_settings(data_dir, net=net, telegram=telegram, instagram_session_file=session)
        async with running_bot(settings):
            for command, name, platform in (
                ("/download alice stories", "@alice", "Instagram"),
                ("/download tiktok.com/@bob.dance", "@bob.dance", "TikTok"),
            ):
                mark = len(telegram.calls)
                telegram.send_message(OWNER, command)
                first = await telegram.await_for(
                    "sendMessage",
                    chat_id=OWNER,
                    after=mark,
                    predicate=lambda call, name=name: call.params["text"].startswith(f"<b>{name}</b>"),
                    timeout=30,
                )
                final = await telegram.await_for(
                    "editMessageText",
                    chat_id=OWNER,
                    after=mark,
                    predicate=lambda call: "Completed" in call.params["text"],
                    timeout=60,
                )
                versions = [first.params["text"]] + [
                    c.params["text"]
                    for c in telegram.calls[mark:]
                    if c.method == "editMessageText"
                    and c.params.get("message_id") == final.params["message_id"]
                ]
                assert all(v.splitlines()[0] == f"<b>{name}</b> · {platform}" for v in versions), versions
