"""The Bot API stand-in, driven by the real python-telegram-bot over HTTP (and its pure parsers directly)."""

from __future__ import annotations

import asyncio
import datetime as dtm
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes
from telegram.helpers import escape_markdown
from telegram.warnings import PTBDeprecationWarning

from tests.support.botapi import BotApi, MarkupError, Upload, parse_html, parse_markdown_v2

TOKEN = "123456:TEST-token-for-the-stand-in-only"


@pytest.fixture
def api() -> Iterator[BotApi]:
    with BotApi() as server:
        yield server
    assert server.errors == []  # the stand-in itself never crashed


@pytest.fixture
async def bot(api: BotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


@pytest.fixture
def timedelta_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB >= 22.2 warns when RetryAfter is built in int mode; filterwarnings=error turns that into an error."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


def png(width: int, height: int) -> bytes:
    """A valid grey PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def description(api: BotApi, method: str = "sendMessage") -> str | None:
    """Telegram's raw description of the last call of `method`."""
    return api.calls(method)[-1].description


# ------------------------------------------------------------------ pure parsers


@pytest.mark.parametrize(
    ("html", "plain", "kinds"),
    [
        ("<b>bold <i>both</i></b> plain", "bold both plain", ["bold", "italic"]),
        ('<a href="https://x.example/?a=1&amp;b=2">link</a>', "link", ["text_link"]),
        ("<code>1 &lt; 2</code>", "1 < 2", ["code"]),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1", ["code", "pre"]),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍", ["custom_emoji"]),
        ('<span class="tg-spoiler">a</span><tg-spoiler>b</tg-spoiler>', "ab", ["spoiler", "spoiler"]),
        (
            "<blockquote expandable>q</blockquote><blockquote>r</blockquote>",
            "qr",
            ["expandable_blockquote", "blockquote"],
        ),
        (
            "<s>s</s><strike>t</strike><del>d</del><u>u</u><ins>n</ins><em>e</em><strong>g</strong>",
            "stduneg",
            ["strikethrough", "strikethrough", "strikethrough", "underline", "underline", "italic", "bold"],
        ),
        ("&#128077; &#x1F44D; &quot;q&quot; &gt;", '👍 👍 "q" >', []),
    ],
)
def test_parse_html_accepts_telegram_markup(html: str, plain: str, kinds: list[str]) -> None:
    text, entities = parse_html(html)
    assert text == plain
    assert sorted(kind for kind, *_ in entities) == sorted(kinds)


def test_parse_html_entity_positions_and_link_target() -> None:
    _, entities = parse_html('ab <b>cd <a href="https://e.example/?x=1&amp;y=2">ef</a></b>')
    assert entities == [("bold", 3, 5, ""), ("text_link", 6, 2, "https://e.example/?x=1&y=2")]


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("Hello world <script>", 'Unsupported start tag "script" at byte offset 12'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("€ <x>", 'Unsupported start tag "x" at byte offset 4'),  # offsets are UTF-8 bytes
        ("AT&T", "Unsupported HTML entity at byte offset 2"),
        ("&nbsp;", "Unsupported HTML entity at byte offset 0"),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ('<tg-emoji emoji-id="abc">x</tg-emoji>', "Invalid custom emoji identifier specified"),
        ('<a href="x>y</a>', "Unclosed start tag at byte offset 0"),
        (
            "<a href>y</a>",
            'Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0',
        ),
    ],
)
def test_parse_html_refuses_like_telegram(html: str, reason: str) -> None:
    with pytest.raises(MarkupError) as info:
        parse_html(html)
    assert str(info.value) == reason


def test_parse_html_lenient_ampersand_matches_telegram() -> None:
    assert parse_html("AT&T &nbsp;", strict_entities=False) == ("AT&T &nbsp;", [])


@pytest.mark.parametrize(
    ("markdown", "plain"),
    [
        ("*b* _i_ __u__ ~s~ ||p|| `c.d`", "b i u s p c.d"),
        ("Version 1\\.0 \\(beta\\)\\!", "Version 1.0 (beta)!"),
        ("[site](https://x.example/a\\)b)", "site"),
        ("```python\nx = 1.0\n```", "x = 1.0\n"),
        (">quoted\n>lines", "quoted\nlines"),
        ("![👍](tg://emoji?id=5368324170671202286)", "👍"),
        (
            escape_markdown("Short ratio 12.5% (+3.1pp) for 01810.HK!", version=2),
            "Short ratio 12.5% (+3.1pp) for 01810.HK!",
        ),
    ],
)
def test_parse_markdown_v2_accepts(markdown: str, plain: str) -> None:
    assert parse_markdown_v2(markdown)[0] == plain


@pytest.mark.parametrize(
    ("markdown", "reason"),
    [
        ("Version 1.0", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("x|y", "Character '|' is reserved and must be escaped with the preceding '\\'"),
        ("*bold", "Can't find end of Bold entity at byte offset 0"),
        ("🏟 🏟_abacaba", "Can't find end of Italic entity at byte offset 9"),
        ("[x](http://a", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_parse_markdown_v2_refuses_like_telegram(markdown: str, reason: str) -> None:
    with pytest.raises(MarkupError) as info:
        parse_markdown_v2(markdown)
    assert str(info.value) == reason


# ------------------------------------------------------------------ PTB Bot against the stand-in


async def test_get_me_identifies_the_test_bot(api: BotApi, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "positioning_test_bot", True)
    assert bot.username == "positioning_test_bot"  # initialize() already called getMe
    assert api.tokens == {TOKEN}
    assert [call.ok for call in api.calls("getMe")] == [True, True]


async def test_send_message_returns_telegram_like_messages(api: BotApi, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Mute", callback_data="mute:01810")]])
    first = await bot.send_message(42, "<b>Alert</b> &amp; more", parse_mode="HTML", reply_markup=keyboard)
    second = await bot.send_message(42, "plain")
    group = await bot.send_message(-100123, "to the supergroup")
    small = await bot.send_message(-5, "to the group")
    assert (first.message_id, second.message_id, group.message_id) == (1, 2, 1)
    assert first.text == "Alert & more"
    assert first.entities == ()
    assert first.reply_markup == keyboard
    assert first.from_user is not None and first.from_user.username == "positioning_test_bot"
    assert (first.chat.type, group.chat.type, small.chat.type) == ("private", "supergroup", "group")
    assert abs(first.date.timestamp() - time.time()) < 5
    assert [p["text"] for p in api.messages(42)] == ["<b>Alert</b> &amp; more", "plain"]
    assert api.messages(42)[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "Mute", "callback_data": "mute:01810"}]]
    }
    assert len(api.messages()) == 4


@pytest.mark.parametrize(
    ("html", "plain"),
    [
        ("<b>up <i>12%</i></b>", "up 12%"),
        ('<a href="https://www.hkexnews.hk/?a=1&amp;b=2">HKEX</a>', "HKEX"),
        ("<code>01810</code> &lt;5%&gt;", "01810 <5%>"),
        ('<tg-emoji emoji-id="5368324170671202286">📈</tg-emoji> rising', "📈 rising"),
    ],
)
async def test_valid_html_is_accepted(bot: Bot, html: str, plain: str) -> None:
    message = await bot.send_message(7, html, parse_mode="HTML")
    assert message.text == plain


@pytest.mark.parametrize(
    ("html", "raw", "ptb"),
    [
        (
            "Hello world <script>",
            'Bad Request: can\'t parse entities: Unsupported start tag "script" at byte offset 12',
            'Can\'t parse entities: unsupported start tag "script" at byte offset 12',
        ),
        (
            "<b>short <i>ratio</b></i>",
            'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 17, expected "</i>", found "</b>"',
            'Can\'t parse entities: unmatched end tag at byte offset 17, expected "</i>", found "</b>"',
        ),
        (
            "<b>open",
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
            "Can't parse entities: can't find end tag corresponding to start tag \"b\"",
        ),
        (
            "P&L",
            "Bad Request: can't parse entities: Unsupported HTML entity at byte offset 1",
            "Can't parse entities: unsupported html entity at byte offset 1",
        ),
    ],
)
async def test_invalid_html_raises_bad_request(api: BotApi, bot: Bot, html: str, raw: str, ptb: str) -> None:
    with pytest.raises(BadRequest) as info:
        await bot.send_message(7, html, parse_mode="HTML")
    assert description(api) == raw
    assert info.value.message == ptb  # PTB drops "Bad Request: " and str.capitalize()s the rest
    assert api.messages() == []


@pytest.mark.parametrize("text", ["", "   \n ", "<b></b>"])
async def test_empty_text_is_refused(api: BotApi, bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match="^Message text is empty$"):
        await bot.send_message(7, text, parse_mode="HTML")
    assert description(api) == "Bad Request: message text is empty"


async def test_length_counts_after_entity_parsing(api: BotApi, bot: Bot) -> None:
    await bot.send_message(7, "x" * 4096)
    await bot.send_message(7, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")  # tags do not count
    await bot.send_message(7, "📈" * 4096)  # code points, not bytes
    with pytest.raises(BadRequest, match="^Message is too long$"):
        await bot.send_message(7, "x" * 4097)
    with pytest.raises(BadRequest, match="^Message is too long$"):
        await bot.send_message(7, "&amp;" * 4097, parse_mode="HTML")
    assert description(api) == "Bad Request: message is too long"
    assert len(api.messages(7)) == 3


async def test_markdown_v2_reserved_character(api: BotApi, bot: Bot) -> None:
    with pytest.raises(BadRequest) as info:
        await bot.send_message(7, "Short ratio 12.5%", parse_mode="MarkdownV2")
    assert description(api) == (
        "Bad Request: can't parse entities: Character '.' is reserved and must be "
        "escaped with the preceding '\\'"
    )
    assert info.value.message == (
        "Can't parse entities: character '.' is reserved and must be escaped with the preceding '\\'"
    )
    ok = await bot.send_message(
        7, "*Short ratio* " + escape_markdown("12.5% (+3pp)", version=2), parse_mode="MarkdownV2"
    )
    assert ok.text == "Short ratio 12.5% (+3pp)"


async def test_unknown_parse_mode(api: BotApi, bot: Bot) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(7, "x", parse_mode="BBCode")
    assert description(api) == "Bad Request: unsupported parse_mode"


async def test_callback_data_over_64_bytes_is_refused(api: BotApi, bot: Bot) -> None:
    def keyboard(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data=data)]])

    await bot.send_message(7, "ok", reply_markup=keyboard("x" * 64))
    for data in ("x" * 65, "é" * 33):  # 66 bytes in UTF-8
        with pytest.raises(BadRequest) as info:
            await bot.send_message(7, "too long", reply_markup=keyboard(data))
        assert info.value.message == "Button_data_invalid"
        assert description(api) == "Bad Request: BUTTON_DATA_INVALID"
    assert len(api.messages(7)) == 1


async def test_text_only_inline_button_is_refused(api: BotApi, bot: Bot) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(
            7, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("no action")]])
        )
    assert description(api) == (
        "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
    )


async def test_blocked_user_raises_forbidden(api: BotApi, bot: Bot) -> None:
    api.block(42)
    api.block(-7)
    with pytest.raises(Forbidden) as info:
        await bot.send_message(42, "hello")
    assert info.value.message == "Forbidden: bot was blocked by the user"
    assert api.calls("sendMessage")[-1].status == 403
    with pytest.raises(Forbidden, match="kicked from the group chat"):
        await bot.send_chat_action(-7, "typing")
    assert await bot.send_message(43, "others still work")
    api.unblock(42)
    assert await bot.send_message(42, "back")
    assert [p["text"] for p in api.messages()] == ["others still work", "back"]


async def test_migrated_group_raises_chat_migrated(api: BotApi, bot: Bot) -> None:
    api.migrate(-555, -1001234567890)
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(-555, "alert")
    assert info.value.new_chat_id == -1001234567890
    assert (
        api.calls("sendMessage")[-1].description
        == "Bad Request: group chat was upgraded to a supergroup chat"
    )
    moved = await bot.send_message(info.value.new_chat_id, "alert")
    assert moved.chat.type == "supergroup"
    assert api.messages(-555) == [] and len(api.messages(-1001234567890)) == 1


async def test_429_raises_retry_after(api: BotApi, bot: Bot, timedelta_mode: None) -> None:
    api.fail_next("sendMessage", 429, retry_after=7, chat_id=42)
    assert await bot.send_message(41, "other chat is unaffected")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(42, "x")
    assert info.value.retry_after == dtm.timedelta(seconds=7)
    assert description(api) == "Too Many Requests: retry after 7"
    assert api.too_many == 1
    assert await bot.send_message(42, "x")  # times=1: the next one passes


async def test_429_in_int_mode_is_a_deprecation_error_under_strict_warnings(
    api: BotApi, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PTB 22.x builds RetryAfter by reading its own deprecated int property: set PTB_TIMEDELTA=1 in tests."""
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    api.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(PTBDeprecationWarning):
        await bot.send_message(42, "x")


async def test_server_errors_raise_network_error(api: BotApi, bot: Bot) -> None:
    api.fail_next("sendMessage", 500)
    api.fail_next("sendMessage", 502)
    with pytest.raises(NetworkError) as first:
        await bot.send_message(42, "x")
    with pytest.raises(NetworkError) as second:
        await bot.send_message(42, "x")
    assert type(first.value) is NetworkError and first.value.message == "Internal Server Error"
    assert type(second.value) is NetworkError and second.value.message.startswith(
        "Bad Gateway (502). Parsing"
    )
    assert [call.status for call in api.calls("sendMessage")] == [500, 502]
    assert api.messages() == []


async def test_hang_raises_timed_out_but_the_message_still_lands(api: BotApi, bot: Bot) -> None:
    api.delay("sendMessage", 0.6)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.send_message(42, "slow", read_timeout=0.15)
    assert time.monotonic() - started < 0.5
    sent = await api.await_sent(1, chat_id=42, timeout=3)  # Telegram may deliver what the client gave up on
    assert sent[0]["text"] == "slow"


async def test_flood_limits_answer_429_with_retry_after(api: BotApi, bot: Bot, timedelta_mode: None) -> None:
    api.limits(global_per_sec=None, per_chat_per_sec=1, group_per_min=20)
    await bot.send_message(42, "first")
    with pytest.raises(RetryAfter) as private:
        await bot.send_message(42, "second within a second")
    assert private.value.retry_after == dtm.timedelta(seconds=1)
    api.limits(global_per_sec=None, per_chat_per_sec=None, group_per_min=20)
    for n in range(20):
        await bot.send_message(-100777, f"group {n}")
    with pytest.raises(RetryAfter) as group:
        await bot.send_message(-100777, "21st in a minute")
    assert group.value.retry_after in (dtm.timedelta(seconds=59), dtm.timedelta(seconds=60))
    assert await bot.send_message(-100778, "another group has its own window")
    assert api.too_many == 2
    assert len(api.messages(-100777)) == 20


async def test_global_limit(api: BotApi, bot: Bot, timedelta_mode: None) -> None:
    api.limits(global_per_sec=3, per_chat_per_sec=None, group_per_min=None)
    for chat in (1, 2, 3):
        await bot.send_message(chat, "x")
    with pytest.raises(RetryAfter):
        await bot.send_message(4, "x")
    assert [call.status for call in api.calls("sendMessage")] == [200, 200, 200, 429]


async def test_send_photo_multipart_caption_and_file_reuse(api: BotApi, bot: Bot) -> None:
    image = png(30, 20)
    message = await bot.send_photo(42, image, caption="<b>01810</b> short ratio", parse_mode="HTML")
    assert message.caption == "01810 short ratio"
    assert (message.photo[-1].width, message.photo[-1].height, message.photo[-1].file_size) == (
        30,
        20,
        len(image),
    )
    upload = api.messages(42)[0]["photo"]
    assert isinstance(upload, Upload) and upload.size == len(image) and upload.data == image
    again = await bot.send_photo(42, message.photo[-1].file_id)  # reuse file_id
    assert again.photo[-1].file_id == message.photo[-1].file_id
    downloaded = await (await bot.get_file(message.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == image
    with pytest.raises(BadRequest, match="^Message caption is too long$"):
        await bot.send_photo(42, image, caption="x" * 1025)
    with pytest.raises(BadRequest, match="^Wrong file identifier/http url specified$"):
        await bot.send_photo(42, "no-such-file-id")
    assert len(api.messages(42)) == 2


async def test_edits_and_not_modified(api: BotApi, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more")]])
    sent = await bot.send_message(42, "v1", reply_markup=keyboard)
    edited = await bot.edit_message_text(
        "<i>v2</i>", chat_id=42, message_id=sent.message_id, parse_mode="HTML"
    )
    assert isinstance(edited, Message)
    assert edited.text == "v2" and edited.edit_date is not None and edited.reply_markup is None
    with pytest.raises(BadRequest, match="^Message is not modified"):
        await bot.edit_message_text("<i>v2</i>", chat_id=42, message_id=sent.message_id, parse_mode="HTML")
    changed = await bot.edit_message_reply_markup(
        chat_id=42, message_id=sent.message_id, reply_markup=keyboard
    )
    assert isinstance(changed, Message) and changed.reply_markup == keyboard
    with pytest.raises(BadRequest, match="^Message to edit not found$"):
        await bot.edit_message_text("x", chat_id=42, message_id=999)
    assert (api.message(42, sent.message_id) or {})["text"] == "v2"


async def test_commands_chat_and_misc_methods(api: BotApi, bot: Bot) -> None:
    assert await bot.set_my_commands([("ping", "Check the bot"), ("watch", "Watch a stock")])
    assert [(c.command, c.description) for c in await bot.get_my_commands()] == [
        ("ping", "Check the bot"),
        ("watch", "Watch a stock"),
    ]
    assert await bot.get_my_commands(language_code="zh") == ()
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("Bad-Name", "x")])
    chat = await bot.get_chat(-100123)
    assert (chat.id, chat.type) == (-100123, "supergroup")
    assert await bot.send_chat_action(42, "typing")
    info = await bot.get_webhook_info()
    assert info.url == "" and info.pending_update_count == 0
    assert await bot.set_webhook("https://example.com/hook")
    with pytest.raises(Conflict):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert await bot.log_out() and await bot.close()
    with pytest.raises(BadRequest):
        await bot.answer_callback_query("123")
    assert description(api, "answerCallbackQuery") == (
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    )


async def test_get_updates_long_poll_and_offset_confirmation(api: BotApi, bot: Bot) -> None:
    first = api.push_message(42, "/start", language_code="zh-hant")
    updates = await bot.get_updates(timeout=1)
    assert [u.update_id for u in updates] == [first["update_id"]]
    message = updates[0].message
    assert message is not None and message.text == "/start"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6
    assert message.from_user is not None and message.from_user.language_code == "zh-hant"
    assert len(await bot.get_updates(timeout=0)) == 1  # not confirmed yet: delivered again
    started = time.monotonic()
    assert await bot.get_updates(offset=first["update_id"] + 1, timeout=1) == ()
    assert 0.9 < time.monotonic() - started < 2.0  # waited min(timeout, 1 s)
    assert api.pending_updates == []

    poll = asyncio.create_task(bot.get_updates(offset=first["update_id"] + 1, timeout=1))
    await api.until(lambda: api.long_polls)
    started = time.monotonic()
    second = api.push_message(-100123, "/ping@positioning_test_bot", user_id=99)
    got = await poll
    assert time.monotonic() - started < 0.5  # answered as soon as the update arrived
    assert [u.update_id for u in got] == [second["update_id"]] == [first["update_id"] + 1]
    assert got[0].effective_chat is not None and got[0].effective_chat.type == "supergroup"
    assert got[0].effective_user is not None and got[0].effective_user.id == 99


async def test_pushed_update_kinds_parse_in_ptb(api: BotApi, bot: Bot) -> None:
    api.push_channel_post(-100999, "channel news")
    api.push_edited_message(42, 5, "edited text")
    api.push_callback(42, "mute:01810", message_id=3)
    api.push_raw(
        {
            "message_reaction": {
                "chat": {"id": 42, "type": "private"},
                "message_id": 1,
                "date": 0,
                "old_reaction": [],
                "new_reaction": [],
            }
        }
    )
    updates = await bot.get_updates(timeout=0)
    assert [type_of(u) for u in updates] == [
        "channel_post",
        "edited_message",
        "callback_query",
    ]  # reactions opt-in
    assert updates[0].channel_post is not None and updates[0].channel_post.chat.type == "channel"
    assert updates[2].callback_query is not None and updates[2].callback_query.data == "mute:01810"
    query_message = updates[2].callback_query.message
    assert query_message is not None and query_message.message_id == 3
    ids = [u.update_id for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == 3


def type_of(update: Update) -> str:
    """Which field of the update is set."""
    return next(
        name
        for name in ("message", "edited_message", "channel_post", "callback_query")
        if getattr(update, name) is not None
    )


async def test_two_pollers_conflict(api: BotApi, bot: Bot) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=1))
    await api.until(lambda: api.long_polls)
    async with Bot(TOKEN, base_url=api.base_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await waiting


async def test_wrong_token_is_invalid_token() -> None:
    with BotApi(token=TOKEN) as strict:
        with pytest.raises(InvalidToken):
            async with Bot("654321:another-token", base_url=strict.base_url):
                pass
        assert strict.calls("getMe")[0].status == 401


# ------------------------------------------------------------------ raw HTTP: encodings, 404, sync helper


def test_form_json_and_unknown_method(api: BotApi) -> None:
    url = f"{api.base_url}{TOKEN}"
    markup = '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}'
    form = httpx.post(
        f"{url}/sendMessage",
        data={"chat_id": "42", "text": "hi", "reply_markup": markup, "disable_notification": "true"},
    )
    as_json = httpx.post(
        f"{url}/sendmessage", json={"chat_id": "@hk_alerts", "text": "hi", "reply_markup": markup}
    )
    missing = httpx.post(f"{url}/sendSticker", data={"chat_id": "42"})
    assert form.json()["ok"] is True and as_json.json()["result"]["chat"]["type"] == "channel"
    params = api.messages(42)[0]
    assert params["chat_id"] == 42 and params["disable_notification"] is True
    assert params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    assert api.messages("@hk_alerts")[0]["text"] == "hi"
    assert missing.status_code == 404
    assert missing.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


def test_wait_for_sees_requests_from_other_threads(api: BotApi) -> None:
    def send_later() -> None:
        time.sleep(0.05)
        httpx.post(f"{api.base_url}{TOKEN}/sendMessage", data={"chat_id": "9", "text": "from a thread"})

    worker = threading.Thread(target=send_later)
    worker.start()
    found = api.wait_for(lambda: api.messages(9), timeout=3)
    worker.join()
    assert found[0]["text"] == "from a thread"
    with pytest.raises(AssertionError, match="condition not met"):
        api.wait_for(lambda: api.messages(10), timeout=0.05)


# ------------------------------------------------------------------ a real Application polling the stand-in


async def test_application_answers_ping_over_polling(api: BotApi) -> None:
    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("pong")

    app = ApplicationBuilder().token(TOKEN).base_url(api.base_url).base_file_url(api.base_file_url).build()
    app.add_handler(CommandHandler("ping", ping))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)  # type: ignore[union-attr]
    try:
        api.push_message(42, "/ping")
        api.push_message(-100123, "/ping@positioning_test_bot", user_id=7)
        sent = await api.await_sent(2, timeout=5)
    finally:
        await app.updater.stop()  # type: ignore[union-attr]
        await app.stop()
        await app.shutdown()
    assert sorted((p["chat_id"], p["text"]) for p in sent) == [(-100123, "pong"), (42, "pong")]
    assert api.pending_updates == []  # the updater confirmed what it handled on the way out
    assert api.calls("deleteWebhook")[0].ok


async def test_application_callback_query_flow(api: BotApi) -> None:
    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Muted")
        await query.edit_message_text(f"Muted {query.data}")

    app = ApplicationBuilder().token(TOKEN).base_url(api.base_url).build()
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        sent = await app.bot.send_message(
            42,
            "Alert",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Mute", callback_data="01810")]]),
        )
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=1)  # type: ignore[union-attr]
        try:
            update = api.push_callback(42, "01810")
            await api.until(lambda: (api.message(42, sent.message_id) or {}).get("text") == "Muted 01810")
        finally:
            await app.updater.stop()  # type: ignore[union-attr]
            await app.stop()
    assert api.answered[update["callback_query"]["id"]]["text"] == "Muted"
    assert update["callback_query"]["message"]["message_id"] == sent.message_id
