"""The fake Telegram against the real python-telegram-bot over HTTP: shapes PTB accepts, errors PTB raises."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import timedelta

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaAudio,
    InputMediaPhoto,
    InputMediaVideo,
    MessageEntity,
    Update,
)
from telegram.error import BadRequest, EndPointNotFound, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler

from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-TOKEN"
CHAT = 42
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data="job:cancel:1")]])


def make_bot(fake: FakeTelegram, token: str = TOKEN) -> Bot:
    """A real PTB Bot pointed at the fake."""
    return Bot(token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")


@pytest.fixture
def fake():
    """A running fake Telegram, stopped after the test."""
    with FakeTelegram(TOKEN) as server:
        yield server


@pytest.fixture
async def bot(fake):
    """An initialised PTB Bot (getMe done) talking to the fake."""
    async with make_bot(fake) as client:
        yield client


async def test_send_and_edit_a_message(bot, fake):
    sent = await bot.send_message(CHAT, "<b>Job 1</b> &amp; more", parse_mode="HTML", reply_markup=KEYBOARD)
    assert sent.text == "Job 1 & more" and sent.from_user.is_bot and sent.from_user.username == bot.username
    assert sent.entities == (MessageEntity(MessageEntity.BOLD, 0, 5),)
    assert sent.reply_markup == KEYBOARD
    edited = await bot.edit_message_text("<i>done</i>", CHAT, sent.message_id, parse_mode="HTML")
    assert edited.text == "done" and edited.edit_date is not None and edited.reply_markup is None
    [stored] = fake.messages(CHAT)
    assert (stored.text, stored.plain, stored.edits, stored.reply_markup) == ("<i>done</i>", "done", 1, None)
    call = fake.wait_for("editMessageText", chat_id=CHAT, timeout=1)
    assert call.params["message_id"] == sent.message_id and call.result["text"] == "done"


async def test_edit_errors_are_bad_requests(bot):
    sent = await bot.send_message(CHAT, "same", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("same", CHAT, sent.message_id, reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("new", CHAT, 999)
    assert await bot.delete_message(CHAT, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(CHAT, sent.message_id)


async def test_text_length_and_emptiness(bot):
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(CHAT, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    # The limit counts the text after parsing, so markup around 4096 characters is fine.
    sent = await bot.send_message(CHAT, f"<b>{'&lt;' * 4096}</b>", parse_mode="HTML")
    assert sent.text == "<" * 4096


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<b>open", 'end tag corresponding to start tag "b"'),
        ("1 < 2", "unclosed start tag"),
        ("1 < 2 > 0", 'unsupported start tag ""'),
        ("fish & chips", 'Unescaped "&"'),
        ("<foo>x</foo>", 'Unsupported start tag "foo"'),
        ("<b>x</i>", "Unmatched end tag"),
        ("x</b>", "Unexpected end tag"),
        ("<span>x</span>", "tg-spoiler"),
    ],
)
async def test_malformed_html_cannot_be_parsed(bot, html, problem):
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities") as error:
        await bot.send_message(CHAT, html, parse_mode="HTML")
    assert problem.lower() in error.value.message.lower()


async def test_allowed_html_becomes_entities(bot):
    html = '<a href="https://x.test">l</a> &#65;&quot; <pre><code class="language-py">p</code></pre>'
    sent = await bot.send_message(CHAT, html, parse_mode="HTML")
    assert sent.text == 'l A" p'
    link, pre = sent.entities
    assert (link.type, link.url, link.offset, link.length) == ("text_link", "https://x.test", 0, 1)
    # The <code class="language-py"> inside <pre> names the pre's language.
    assert (pre.type, pre.language, pre.offset, pre.length) == ("pre", "py", 5, 1)


async def test_flooding_one_chat_gets_retry_after(bot, fake, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22's forward-compatible retry_after, without a warning
    for number in range(3):  # the burst allowance
        await bot.send_message(CHAT, f"message {number}")
    with pytest.raises(RetryAfter) as error:
        await bot.send_message(CHAT, "one too many")
    # A token comes back within a second at chat_rate=1; retry_after is whole seconds, as on Telegram.
    assert error.value.retry_after == timedelta(seconds=1) and fake.rate_limited == 1
    await bot.send_message(CHAT + 1, "another chat has its own allowance")
    assert [m.text for m in fake.messages(CHAT)] == ["message 0", "message 1", "message 2"]


async def test_group_and_global_limits(monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    with FakeTelegram(TOKEN, chat_burst=100, group_per_minute=2, global_per_second=4) as fake:
        async with make_bot(fake) as bot:
            await bot.send_message(-100, "1")
            await bot.send_message(-100, "2")
            with pytest.raises(RetryAfter) as error:
                await bot.send_message(-100, "3")
            assert error.value.retry_after > timedelta(seconds=50)  # the group's minute is not over
            await bot.send_message(1, "third send this second")
            await bot.send_message(2, "fourth")
            with pytest.raises(RetryAfter):
                await bot.send_message(3, "fifth in one second is over the bot's limit")
            assert fake.rate_limited == 2


async def test_wrong_token_is_invalid_token(fake):
    with pytest.raises(InvalidToken):
        await make_bot(fake, "999:WRONG").get_me()
    assert fake.calls[-1].status == 401 and fake.calls[-1].error == "Unauthorized"


async def test_unknown_method_is_not_found(bot):
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": CHAT})


async def test_long_poll_returns_an_injected_command(bot, fake):
    started = time.monotonic()
    assert await bot.get_updates(timeout=0) == ()
    assert time.monotonic() - started < 0.5  # timeout=0 answers at once
    asyncio.get_running_loop().call_later(0.3, fake.send_message, CHAT, "/start@archive_test_bot now")
    started = time.monotonic()
    [update] = await bot.get_updates(timeout=5)
    assert 0.25 < time.monotonic() - started < 4  # held open until the update arrived
    assert update.message.text == "/start@archive_test_bot now"
    again = Update.de_json(fake.calls[-1].result[0], bot)
    for seen in (update, again):
        assert (
            seen.message.parse_entities([MessageEntity.BOT_COMMAND]).popitem()[1] == "/start@archive_test_bot"
        )
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()  # confirmed ones are gone


async def test_updates_of_types_not_asked_for_are_dropped(bot, fake):
    fake.send_message(CHAT, "/start")
    assert await bot.get_updates(timeout=0, allowed_updates=["callback_query"]) == ()
    sent = await bot.send_message(CHAT, "menu", reply_markup=KEYBOARD)
    fake.press_button(CHAT, sent.message_id, "job:cancel:1")
    [update] = await bot.get_updates(timeout=0)  # the list given last still applies
    assert update.callback_query.data == "job:cancel:1"


async def test_callback_query_round_trip(bot, fake):
    sent = await bot.send_message(CHAT, "Job 1 running", reply_markup=KEYBOARD)
    fake.press_button(CHAT, sent.message_id, "job:cancel:1")
    [update] = await bot.get_updates(timeout=2)
    query = update.callback_query
    assert query.data == "job:cancel:1" and query.from_user.id == CHAT
    assert query.message.message_id == sent.message_id and query.message.reply_markup == KEYBOARD
    assert await bot.answer_callback_query(query.id, text="Cancelling")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)
    assert fake.wait_for("answerCallbackQuery", timeout=1).params["text"] == "Cancelling"


async def test_media_group_and_file_size_limit(bot, fake):
    media = [
        InputMediaPhoto(b"jpeg bytes", caption="<b>1</b>", parse_mode="HTML"),
        InputMediaVideo(b"mp4 bytes", filename="clip.mp4"),
    ]
    first, second = await bot.send_media_group(CHAT, media)
    assert first.media_group_id == second.media_group_id and first.caption == "1" and first.photo
    assert second.video.file_name == "clip.mp4" and second.video.file_size == len(b"mp4 bytes")
    call = fake.wait_for("sendMediaGroup", timeout=1)
    parts = [item["media"].removeprefix("attach://") for item in call.params["media"]]
    assert call.params[parts[1]].data == b"mp4 bytes"
    assert [m.media_type for m in fake.messages(CHAT)] == ["photo", "video"]
    fake.max_file_size = 1000  # stands in for 50 MB, which would make the test slow
    with pytest.raises(NetworkError, match="Request Entity Too Large"):
        await bot.send_document(CHAT, b"x" * 1001, filename="big.zip")
    document = await bot.send_document(CHAT, b"x" * 1000, filename="ok.zip")
    assert document.document.file_name == "ok.zip"


async def test_audio_goes_alone_and_never_in_an_album_with_photos(bot, fake):
    sent = await bot.send_audio(
        CHAT, b"mp3 bytes", filename="sound.mp3", caption="<i>s</i>", parse_mode="HTML"
    )
    assert sent.audio.file_name == "sound.mp3" and sent.audio.file_size == 9 and sent.caption == "s"
    assert [(r.method, r.kind, r.filename) for r in fake.received] == [("sendAudio", "audio", "sound.mp3")]
    again = await bot.send_audio(CHAT + 1, sent.audio.file_id)  # by file_id: no new upload
    assert again.audio.file_id == sent.audio.file_id and len(fake.received) == 1
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type audio as photo"):
        await bot.send_photo(CHAT, sent.audio.file_id)
    mixed = [InputMediaPhoto(b"jpeg bytes"), InputMediaAudio(b"mp3 bytes", filename="b.mp3")]
    with pytest.raises(BadRequest, match=r"(?i)audio can't be mixed with other media types"):
        await bot.send_media_group(CHAT, mixed)
    assert len(fake.received) == 1  # a refused album stores nothing
    sounds = await bot.send_media_group(
        CHAT, [InputMediaAudio(b"a", filename="a.mp3"), InputMediaAudio(sent.audio)]
    )
    assert [m.audio.file_name for m in sounds] == ["a.mp3", "sound.mp3"]


async def test_application_answers_a_command(fake):
    async def start(update, context):
        await update.message.reply_text("hello", reply_markup=KEYBOARD)

    app = ApplicationBuilder().token(TOKEN).base_url(f"{fake.url}/bot").base_file_url(f"{fake.url}/file/bot")
    app = app.build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.bot.set_my_commands([("start", "Start the bot")])
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        await app.start()
        mark = len(fake.calls)
        fake.send_message(CHAT, "/start")
        reply = await fake.await_for("sendMessage", chat_id=CHAT, after=mark)
        await app.updater.stop()
        await app.stop()
    assert reply.params["text"] == "hello" and reply.result["reply_markup"] == KEYBOARD.to_dict()
    assert fake.commands == [{"command": "start", "description": "Start the bot"}]


def test_wait_for_times_out_with_a_listing(fake):
    fake.send_message(CHAT, "/start")
    with pytest.raises(AssertionError, match="no successful sendMessage in chat 42"):
        fake.wait_for("sendMessage", chat_id=CHAT, timeout=0.1)


async def test_uploads_are_recorded_and_their_file_ids_reusable(bot, fake):
    sent = await bot.send_photo(CHAT, b"jpeg bytes", filename="a.jpg")
    [record] = fake.received
    assert (record.kind, record.size, record.filename) == ("photo", 10, "a.jpg")
    assert record.sha256 == hashlib.sha256(b"jpeg bytes").hexdigest()
    again = await bot.send_photo(CHAT + 1, sent.photo[-1].file_id)  # by file_id: no new upload
    assert again.photo[-1].file_id == sent.photo[-1].file_id and len(fake.received) == 1
    with pytest.raises(BadRequest, match=r"(?i)can't use file of type photo as video"):
        await bot.send_video(CHAT, sent.photo[-1].file_id)
    # Only a local Bot API server reads paths (PTB itself refuses them unless in local mode).
    refused = pytest.raises(BadRequest, match=r"(?i)wrong file identifier")
    with refused, pytest.warns(UserWarning, match="Bot.sendPhoto"):
        await bot.do_api_request("sendPhoto", api_kwargs={"chat_id": CHAT, "photo": "file:///etc/hostname"})


async def test_photo_and_caption_limits(bot, fake):
    fake.max_photo_size = 100  # stands in for 10 MB
    with pytest.raises(BadRequest, match=r"(?i)photo is too big"):
        await bot.send_photo(CHAT, b"x" * 101, filename="big.jpg")
    document = await bot.send_document(CHAT, b"x" * 101, filename="big.jpg")
    assert document.document.file_size == 101
    # Telegram counts UTF-16 units: an emoji outside the BMP costs two.
    await bot.send_photo(CHAT, b"jpeg", caption="🌊" * 512)
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(CHAT, b"jpeg", caption="🌊" * 512 + "x")
    assert [r.kind for r in fake.received] == ["document", "photo"]  # refused sends store nothing


async def test_album_is_whole_or_nothing_and_counts_per_item_in_a_group(monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    with FakeTelegram(TOKEN, chat_burst=100, group_per_minute=5) as fake:
        async with make_bot(fake) as bot:
            bad = [InputMediaPhoto(b"1"), InputMediaPhoto(b"2", caption="x" * 1025)]
            with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
                await bot.send_media_group(-100, bad)
            assert fake.received == [] and fake.messages(-100) == []
            with pytest.raises(BadRequest, match="2-10"):
                await bot.send_media_group(-100, [InputMediaPhoto(b"1")] * 11)
            await bot.send_media_group(
                -100, [InputMediaPhoto(b"1"), InputMediaPhoto(b"2"), InputMediaPhoto(b"3")]
            )
            with pytest.raises(RetryAfter):  # 3 + 3 > 5 per minute: an album counts per item
                await bot.send_media_group(
                    -100, [InputMediaPhoto(b"4"), InputMediaPhoto(b"5"), InputMediaPhoto(b"6")]
                )
            await bot.send_media_group(-100, [InputMediaPhoto(b"4"), InputMediaPhoto(b"5")])
            assert len(fake.received) == 5 and fake.rate_limited == 1


async def test_local_mode_reads_files_by_path(tmp_path, fake):
    big = tmp_path / "clip.mp4"
    big.write_bytes(b"v" * 2000)
    fake.local_mode = True
    fake.max_file_size = 1000  # the public limit does not apply to a local server
    async with Bot(TOKEN, base_url=f"{fake.url}/bot", local_mode=True) as local:
        sent = await local.send_video(CHAT, big)
    [record] = fake.received
    assert record.by_path and record.size == 2000 and sent.video.file_size == 2000
    assert fake.calls[-1].params["video"] == big.as_uri()
