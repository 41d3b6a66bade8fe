"""Telegram reach through the real Application and the Bot API stand-in: deep links and Watch buttons, forum topics
(/here), scoped command menus, inline mode, /export and /import."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date
from typing import Any

from redis.asyncio import Redis
from telegram.ext import Application

from alerts.model import Alert, Fact
from alerts.routing import route
from alerts.store.alertlog import AlertLog
from alerts.store.subscriptions import SubscriptionStore
from bot.exports import COLUMNS, MAX_IMPORT_BYTES
from bot.handlers import GROUP_ADMIN_MENU, GROUP_MENU, MENU, OPERATOR_MENU
from bot.i18n import t
from tests.support.botapi import BOT_USERNAME, BotApi, parse_html
from tests.support.bothelpers import ADMIN, app_deps

USER, OTHER = 1001, 1002
GROUP = -1001234567890
MEMBER = 5150
WATCH_URL = f"https://t.me/{BOT_USERNAME}?start=watch_01810"


def _alert(
    identity: str, code: str = "01810", day: date = date(2025, 11, 21), rule: str = "buyback_filed"
) -> Alert:
    return Alert(
        rule=rule,
        code=code,
        trade_date=day,
        severity="notice",
        name="XIAOMI-W",
        why=f"{rule} on {code}",
        facts=(Fact("shares", 10400000, "shares"),),
        identity=identity,
        links=("https://www3.hkexnews.hk/reports/sharerepur/documents/SRRPT20251121.xls",),
    )


async def _say(api: BotApi, chat: int, text: str, n: int, **kw: Any) -> list[str]:
    api.push_message(chat, text, **kw)
    await api.await_sent(n, chat_id=chat, timeout=15)
    return api.texts(chat)


def _rows(markup: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    return list((markup or {}).get("inline_keyboard", []))


# --- deep links -------------------------------------------------------------------------------------------------


async def test_start_payloads_watch_card_and_language(app: Application, api: BotApi, redis: Redis) -> None:
    texts = await _say(api, USER, "/start watch_01810", 1)
    assert "Watching" in texts[0] and "01810" in texts[0]
    assert await SubscriptionStore(redis).watchlist(USER) == ["01810"]
    texts = await _say(api, USER, "/start card_01810", 2)
    assert "Short ratio" in parse_html(texts[1])[0]
    rows = _rows(api.messages(USER)[1]["reply_markup"])
    assert [b["callback_data"] for b in rows[0]] == ["chart:01810", "mute:01810:1d"]
    assert rows[1] == [{"text": "Watch", "url": WATCH_URL}]
    texts = await _say(api, USER, "/start lang_zh", 3)
    assert (
        texts[2].startswith("語言：繁體中文。")
        and (await SubscriptionStore(redis).settings(USER)).lang == "zh"
    )


async def test_bad_payloads_get_the_normal_welcome(app: Application, api: BotApi, redis: Redis) -> None:
    payloads = [
        "watch_99999",
        "a" * 65,
        "watch_01810<b>",
        "foo_bar",
        "lang_fr",
        "watch_",
        "card_小米",
        "watch_1_2",
    ]
    for n, payload in enumerate(payloads, start=1):
        texts = await _say(api, OTHER, f"/start {payload}", n)
        assert texts[-1] == t("en", "welcome"), payload
    assert await SubscriptionStore(redis).watchlist(OTHER) == []


async def test_alert_carries_a_watch_deep_link(app: Application, api: BotApi) -> None:
    await _say(api, USER, "/watch 1810", 1)
    d = app_deps(app)
    await route([_alert("W1")], d.subs, d.outbox, d.clock())
    sent = await api.await_sent(2, chat_id=USER, timeout=15)
    rows = _rows(sent[1]["reply_markup"])
    assert [b["callback_data"] for b in rows[0]] == ["card:01810", "chart:01810", "mute:01810:1d"]
    assert rows[1] == [{"text": "Watch", "url": WATCH_URL}]


# --- forum topics -------------------------------------------------------------------------------------------------


async def test_here_routes_alerts_to_the_topic_and_a_deleted_topic_falls_back_once(
    app: Application, api: BotApi, redis: Redis
) -> None:
    topic = api.create_topic(GROUP)
    await _say(api, GROUP, "/watch 1810", 1)
    texts = await _say(api, GROUP, "/here", 2, thread_id=topic)
    assert "this topic" in texts[1]
    assert api.messages(GROUP)[1]["message_thread_id"] == topic  # the reply went to the topic too
    subs = SubscriptionStore(redis)
    assert (await subs.settings(GROUP)).thread_id == topic
    d = app_deps(app)
    await route([_alert("T1")], d.subs, d.outbox, d.clock())
    sent = await api.await_sent(3, chat_id=GROUP, timeout=15)
    assert sent[2]["message_thread_id"] == topic and "Buyback" in sent[2]["text"]
    assert _rows(sent[2]["reply_markup"])[1][0]["url"] == WATCH_URL

    api.delete_topic(GROUP, topic)
    await route([_alert("T2")], d.subs, d.outbox, d.clock())
    sent = await api.await_sent(5, chat_id=GROUP, timeout=20)
    refused = [c for c in api.calls("sendMessage") if c.chat_id == GROUP and not c.ok]
    assert [c.description for c in refused] == ["Bad Request: message thread not found"]
    alert_msg, notice = sent[3], sent[4]
    assert "message_thread_id" not in alert_msg and "Buyback" in alert_msg["text"]
    assert "no longer exists" in notice["text"] and "message_thread_id" not in notice
    assert (await subs.settings(GROUP)).thread_id is None
    assert await d.outbox.dead() == []
    await route([_alert("T3")], d.subs, d.outbox, d.clock())
    await api.await_sent(6, chat_id=GROUP, timeout=15)
    await asyncio.sleep(0.5)
    assert sum("no longer exists" in text for text in api.texts(GROUP)) == 1  # told once


async def test_here_needs_a_group_admin_and_a_forum(app: Application, api: BotApi, redis: Redis) -> None:
    topic = api.create_topic(GROUP)
    api.set_member(GROUP, MEMBER, "member")
    texts = await _say(api, GROUP, "/here", 1, thread_id=topic, user_id=MEMBER)
    assert texts[0] == t("en", "group_admins_only")
    assert (await SubscriptionStore(redis).settings(GROUP)).thread_id is None
    texts = await _say(api, GROUP, "/here", 2)  # General topic: the chat itself
    assert "General" in texts[1]
    texts = await _say(api, USER, "/here", 1)
    assert texts[0] == t("en", "here_not_forum")


# --- scoped menus -------------------------------------------------------------------------------------------------


async def test_menus_are_scoped_and_in_both_languages(app: Application, api: BotApi) -> None:
    await _say(api, USER, "/start", 1)
    scopes = {
        json.dumps({"type": "default"}): MENU,
        json.dumps({"type": "all_group_chats"}): GROUP_MENU,
        json.dumps({"type": "all_chat_administrators"}): GROUP_ADMIN_MENU,
        json.dumps({"chat_id": ADMIN, "type": "chat"}): OPERATOR_MENU,
    }
    assert set(api.commands) == {(scope, lang) for scope in scopes for lang in ("", "zh")}
    for scope, names in scopes.items():
        for lang, code in (("en", ""), ("zh", "zh")):
            registered = api.commands[(scope, code)]
            assert [c["command"] for c in registered] == list(names), (scope, lang)
            assert [c["description"] for c in registered] == [t(lang, f"menu.{n}") for n in names]
    assert "stats" not in MENU and "here" not in MENU and "watch" not in GROUP_MENU
    assert {"stats", "broadcast"} <= set(OPERATOR_MENU) and {"here", "watch", "import"} <= set(
        GROUP_ADMIN_MENU
    )


# --- inline mode ------------------------------------------------------------------------------------------------


async def _inline(api: BotApi, user: int, query: str, **kw: Any) -> dict[str, Any]:
    query_id = api.push_inline_query(user, query, **kw)["inline_query"]["id"]
    answered: dict[str, Any] = await api.until(lambda: api.inline_answers.get(query_id), timeout=15)
    return answered


async def test_inline_queries_offer_the_card_and_the_cached_chart(app: Application, api: BotApi) -> None:
    for query in ("1810", "小米", "XIAOMI"):
        answered = await _inline(api, USER, query)
        assert answered["is_personal"] is True and answered["cache_time"] == 300
        (article,) = answered["results"]
        assert article["type"] == "article" and article["id"] == "card:01810:en"
        assert "Short ratio" in parse_html(article["input_message_content"]["message_text"])[0]
        assert _rows(article["reply_markup"]) == [[{"text": "Watch", "url": WATCH_URL}]]
    us = await _inline(api, USER, "AAPL")
    assert [r["id"] for r in us["results"]] == ["card:AAPL:en"]
    empty = await _inline(api, USER, "")
    assert [r["id"] for r in empty["results"]] == ["help:en:0"]
    assert f"@{BOT_USERNAME}" in empty["results"][0]["input_message_content"]["message_text"]
    unknown = await _inline(api, USER, "zzqq nothing")
    assert [r["id"] for r in unknown["results"]] == ["help:en:1"]
    zh = await _inline(api, OTHER, "1810", language_code="zh-hant")
    assert zh["results"][0]["id"] == "card:01810:zh" and zh["results"][0]["reply_markup"]["inline_keyboard"][
        0
    ][0]["text"] == t("zh", "button.watch")
    # Once Telegram holds the chart (a /chart sent it), inline offers it as a cached photo.
    await _say(api, USER, "/chart 1810", 1)
    sent_photo = next(c for c in api.calls("sendPhoto") if c.ok)
    photo_file_id = sent_photo.result["photo"][-1]["file_id"]
    answered = await _inline(api, USER, "01810")
    assert [r["type"] for r in answered["results"]] == ["article", "photo"]
    assert answered["results"][1]["photo_file_id"] == photo_file_id
    assert "01810" in answered["results"][1]["caption"]


# --- export and import -------------------------------------------------------------------------------------------


async def _exported(api: BotApi, chat: int, n: int) -> tuple[bytes, list[list[str]]]:
    api.push_message(chat, "/export")
    await api.await_sent(n, chat_id=chat, timeout=15)
    call = [c for c in api.calls("sendDocument") if c.ok and c.chat_id == chat][-1]
    data = api.document(call.result["document"]["file_id"])
    return data, list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


async def test_export_is_a_bom_csv_of_the_watchlist_and_90_days_of_alerts(
    app: Application, api: BotApi, redis: Redis
) -> None:
    await AlertLog(redis).record(
        [
            _alert("E1", day=date(2025, 11, 21)),
            _alert("E2", day=date(2025, 7, 2)),  # older than 90 days before 28/11: left out
            _alert("E3", code="00700", day=date(2025, 11, 20)),  # not watched: left out
        ]
    )
    await _say(api, USER, "/lang zh", 1)
    await _say(api, USER, "/watch 1810 9988", 2)
    data, rows = await _exported(api, USER, 3)
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    assert rows[0] == list(COLUMNS)
    watch = [r for r in rows[1:] if r[0] == "watch"]
    assert [r[1] for r in watch] == ["01810", "09988"] and all(r[3] == "HK" for r in watch)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in watch[0][2])  # the Chinese name
    alerts = [r for r in rows[1:] if r[0] == "alert"]
    assert [(r[1], r[4], r[5], r[6]) for r in alerts] == [("01810", "buyback_filed", "2025-11-21", "notice")]
    assert alerts[0][8].startswith("https://www3.hkexnews.hk/")
    document = next(c for c in api.calls("sendDocument") if c.ok)
    assert "2" in document.params["caption"] and "90" in document.params["caption"]


async def test_import_restores_an_exported_watchlist(app: Application, api: BotApi, redis: Redis) -> None:
    await _say(api, USER, "/watch 1810 700 9988", 1)
    data, _ = await _exported(api, USER, 2)
    api.push_document(OTHER, data, filename="positioning.csv", caption="/import")
    await api.await_sent(1, chat_id=OTHER, timeout=15)
    texts = api.texts(OTHER)
    assert "3 added, 0 already watched, 0 refused" in texts[0]
    assert await SubscriptionStore(redis).watchlist(OTHER) == ["00700", "01810", "09988"]


async def test_import_validates_each_row_and_the_file(app: Application, api: BotApi, redis: Redis) -> None:
    await _say(api, USER, "/watch 700", 1)
    doc = api.push_document(USER, b"code,name\n1810,a\n99999,b\nxiaomo,c\n700,d\n\n", filename="mine.csv")
    texts = await _say(api, USER, "/import", 2, reply_to=doc)
    assert "1 added, 1 already watched, 2 refused" in texts[1]
    assert "Line 3" in texts[1] and "99999" in texts[1] and "Line 4" in texts[1]
    assert await SubscriptionStore(redis).watchlist(USER) == ["00700", "01810"]
    cases = [
        (b"code\n" + b"1810\n" * (MAX_IMPORT_BYTES // 5 + 1), "too big"),
        ("code\n1810\n".encode("utf-16"), "UTF-8"),
        (b"foo,bar\n1810,2\n", "code"),
        (b"code\n", "no stocks"),
    ]
    for n, (body, expected) in enumerate(cases, start=3):
        api.push_document(USER, body, caption="/import")
        await api.await_sent(n, chat_id=USER, timeout=15)
        assert expected in api.texts(USER)[-1], expected
    texts = await _say(api, USER, "/import", len(cases) + 3)
    assert "caption" in texts[-1]


async def test_import_in_a_group_needs_an_admin(app: Application, api: BotApi, redis: Redis) -> None:
    api.set_member(GROUP, MEMBER, "member")
    api.push_document(GROUP, b"code\n1810\n", caption="/import", user_id=MEMBER)
    await api.await_sent(1, chat_id=GROUP, timeout=15)
    assert api.texts(GROUP)[0] == t("en", "group_admins_only")
    assert await SubscriptionStore(redis).watchlist(GROUP) == []
