"""/card, /flows, /history and the other read-only answers through the real bot, in English and 繁體中文.

The demo data are seeded in a private Redis and the demo replay's alerts recorded in the alert log; expected
figures come from alerts.positioning / alerts.replay on the same demo history, cut at the bot's "today".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from functools import cache

import pandas as pd
import pytest
from redis.asyncio import Redis
from telegram.ext import Application

from alerts import positioning as pos
from alerts.history import History
from alerts.localdata import local_path
from alerts.replay import HORIZONS, ReplayResult, outcome_of, replay, summarize
from alerts.rules import RULE_IDS, load_params
from alerts.sources import get_source
from alerts.sources.hkex_shortable import parse as parse_shortable
from alerts.store.alertlog import AlertLog
from bot.answers import READ_ONLY, answer, catalogue_keys, parse_day
from bot.demo import DEMO_END, DEMO_START, demo_root
from bot.handlers import MENU
from bot.html import MAX_TEXT
from bot.i18n import LANGS, catalogue, day, money, pct, shares
from bot.view import DataView
from tests.support.botapi import BotApi, parse_html
from tests.support.bothelpers import DEMO_NOW, app_deps, demo_history, running_bot, seed_demo
from tests.support.paths import FIXTURES

USER, ZH_CHAT, HANS_USER = 2001, 2002, 2003
TODAY = DEMO_NOW.date()


@cache
def demo_replay() -> ReplayResult:
    """The demo period's alerts, as `positioning-bot demo` replays them."""
    return replay(demo_history(), DEMO_START, DEMO_END, load_params())


@cache
def expected_view() -> DataView:
    """What the bot should see on the demo evening: history cut at today, outcomes from closes up to today."""
    history = demo_history()
    closes = history.closes()
    closes = closes[closes.index <= str(TODAY)]
    alerts = [a for _, a in demo_replay().alerts]
    return DataView(history, TODAY, alerts, {a.fingerprint: outcome_of(closes, a) for a in alerts})


@pytest.fixture
async def app(api: BotApi, redis: Redis, redis_url: str) -> AsyncIterator[Application]:
    await seed_demo(redis)
    await AlertLog(redis).record(a for _, a in demo_replay().alerts)
    async with running_bot(api, redis_url) as application:
        await app_deps(application).view()  # load the history once, before the first command (slow machines)
        yield application
    assert application.bot_data.get("handler_errors", []) == []


async def _ask(api: BotApi, chat: int, text: str, n: int, **kw: object) -> str:
    """Send `text` as a user and return the bot's `n`-th message in that chat (HTML as sent)."""
    api.push_message(chat, text, **kw)  # type: ignore[arg-type]
    await api.await_sent(n, chat_id=chat, timeout=30)
    return api.texts(chat)[n - 1]


def _plain(html_text: str) -> str:
    return parse_html(html_text)[0]  # raises on markup Telegram would refuse


def _section_marks(lang: str) -> list[str]:
    """Source and date of every card section of 01810, from the pure figures."""
    frames = expected_view().frames()
    figures = {
        "quotes": pos.short_figures(frames, "01810"),
        "short": pos.session_short(frames, "01810"),
        "sfc": pos.sfc_figures(frames, "01810"),
        "southbound": pos.southbound_figures(frames, "01810"),
    }
    marks = []
    for key, found in figures.items():
        assert found is not None, key
        marks.append(_src(lang, key, found.day))
    bought = pos.buyback_figures(frames, "01810", _sessions())
    assert bought is not None
    marks.append(_src(lang, "buybacks", bought.last_report))
    dealt = pos.dealings(frames, "01810", TODAY)
    marks.append(_src(lang, "di", max(d.filed_date for d in dealt)))
    marks.append(_src(lang, "flows", pos.flow_days(frames, "01810")[-1]))
    return marks


def _sessions() -> list[date]:
    from alerts.calendar import previous_sessions

    return previous_sessions(TODAY, pos.BUYBACK_SESSIONS)


def _page_short_value(source: str, code: str) -> float:
    """`code`'s short value in the demo's Main Board page of `source` for today, read from the file itself."""
    pages = get_source(source)
    path = local_path(demo_root(), source, TODAY, pages.paths(TODAY)[0])
    rows = pages.parse(path.read_bytes())
    (value,) = rows.loc[rows["code"] == code, "short_value"]
    return float(value)


def _src(lang: str, source: str, when: date) -> str:
    return _plain(
        catalogue(lang)["ans.src"].format(source=catalogue(lang)[f"ans.src.{source}"], day=day(lang, when))
    )


async def test_card_in_english_is_one_message_with_every_section_dated_and_sourced(
    app: Application, api: BotApi
) -> None:
    text = await _ask(api, USER, "/card 1810", 1)
    assert len(text) <= MAX_TEXT and len(api.messages(USER)) == 1
    card = _plain(text)
    for mark in _section_marks("en"):
        assert mark in card, mark
    sfc = pos.sfc_figures(expected_view().frames(), "01810")
    assert sfc is not None and sfc.pct_of_issued is not None
    assert f"as of {day('en', sfc.day)}, published T+7" in card
    assert pct("en", sfc.pct_of_issued, 2) + " of issued shares" in card
    assert "Lei Jun (director) bought 2,600,000 sh at avg HK$38.58" in card
    # Midday vs close: the figures of today's MSHTMAIN (hkex-short-midday) and ASHTMAIN (hkex-short) pages.
    midday, close = _page_short_value("hkex-short-midday", "01810"), _page_short_value("hkex-short", "01810")
    assert 0 < midday < close
    assert pos.session_short(expected_view().frames(), "01810") == pos.SessionShort(TODAY, midday, close)
    session = catalogue("en")["ans.card.session"].format(
        midday=money("en", midday), close=money("en", close), share=pct("en", midday / close * 100, 1)
    )
    assert _plain(session) in card
    price = pos.price_figures(expected_view().frames(), "01810")
    assert price is not None and f"nearest round levels HK${price.below:.2f} / HK${price.above:.2f}" in card
    buttons = api.messages(USER)[0]["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == ["chart:01810", "mute:01810:1d"]


async def test_card_in_chinese_for_a_zh_chat_and_a_zh_hans_user(app: Application, api: BotApi) -> None:
    await _ask(api, ZH_CHAT, "/lang zh", 1)
    chat_card = _plain(await _ask(api, ZH_CHAT, "/card 1810", 2))
    user_card = _plain(await _ask(api, HANS_USER, "/card 小米", 1, language_code="zh-hans"))
    for card in (chat_card, user_card):
        assert card.startswith("🪪 01810 小米集團-W · 持倉概覽")
        for mark in _section_marks("zh"):
            assert mark in card, mark
        assert "證監會淡倉" in card and "南向資金" in card and "回購" in card and "董事" in card
        assert "Short ratio" not in card and "positioning card" not in card
    assert len(api.messages(ZH_CHAT)) == 2 and len(api.messages(HANS_USER)) == 1
    buttons = api.messages(ZH_CHAT)[1]["reply_markup"]["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        (catalogue("zh")["button.chart"], "chart:01810"),
        (catalogue("zh")["button.mute_1d"], "mute:01810:1d"),
    ]


async def test_card_of_every_demo_code_fits_one_message_in_both_languages(
    app: Application, api: BotApi
) -> None:
    quotes = expected_view().frames()["quotes"]
    # The demo's filler rows (there only so each file's rows add up to its totals) are not the demo's stocks.
    codes = sorted(set(quotes.loc[~quotes["name"].astype(str).str.startswith("FILLER "), "code"].astype(str)))
    assert 10 <= len(codes) <= 20
    chats = {}
    for index, code in enumerate(codes):
        for lang, hint in (("en", "en"), ("zh", "zh-hans")):
            chat = 3000 + index * 2 + (lang == "zh")
            chats[chat] = (code, lang)
            api.push_message(chat, f"/card {code}", language_code=hint)
    await api.until(lambda: all(len(api.messages(c)) >= 1 for c in chats), timeout=60)
    for chat, (code, lang) in chats.items():
        (message,) = api.messages(chat)
        assert message.get("parse_mode") == "HTML" and len(message["text"]) <= MAX_TEXT
        card = _plain(message["text"])
        assert code in card and ("持倉概覽" in card) == (lang == "zh")


async def test_flows_shows_the_pure_functions_figures(app: Application, api: BotApi) -> None:
    frames = expected_view().frames()
    latest = pos.flow_days(frames, "01810")[-1]
    # The holdings of Fri 28/11 are not out on the demo evening (Saturday 06:00), but the day's Stock Connect
    # file is (17:30): 01810 is in its southbound top 10s, so the net is the day's turnover figure.
    friday = pos.flows(frames, "01810", latest)
    assert latest == date(2025, 11, 28)
    assert (friday.southbound_kind, friday.southbound_net) == ("turnover", 590_000_000.0)
    assert "Southbound net buying: +HK$590.0m = +11.5% (same-day turnover in the southbound top 10" in _plain(
        await _ask(api, USER, "/flows 1810", 1)
    )
    for n, (args, when) in enumerate(
        [
            ("1810 27/11", date(2025, 11, 27)),
            ("xiaomi 21/11", date(2025, 11, 21)),
            ("01810 2025-11-21", date(2025, 11, 21)),
        ],
        start=2,
    ):
        text = _plain(await _ask(api, USER, f"/flows {args}", n))
        flows = pos.flows(frames, "01810", when)
        assert flows.turnover and flows.short_value and flows.southbound_net and flows.remainder is not None
        assert f"flows on {day('en', when)}" in text
        assert f"Turnover: {money('en', flows.turnover)}" in text
        assert (
            f"Short selling: {money('en', flows.short_value)} = {pct('en', flows.share(flows.short_value) or 0)}"
            in text
        )
        sign = "+" if flows.southbound_net > 0 else "−"
        # The demo has the day's Stock Connect file with 01810 in its top 10s: the same-day turnover figure.
        assert flows.southbound_kind == "turnover"
        assert (
            f"Southbound net buying: {sign}{money('en', abs(flows.southbound_net))} = "
            f"{pct('en', flows.share(flows.southbound_net) or 0, signed=True)} (same-day turnover" in text
        )
        assert f"{shares('en', abs(flows.southbound_shares_change or 0))} × " not in text
        assert f"Buybacks paid: {money('en', flows.buyback)}" in text
        assert (
            f"Remainder: {money('en', flows.remainder)} = {pct('en', flows.share(flows.remainder) or 0)}"
            in text
        )
        assert 'not "retail"' in text and "turnover, not positions" in text
    assert (
        pos.flows(frames, "01810", date(2025, 11, 21)).buyback > 0
    )  # the demo's buyback day shows its amount
    await _ask(api, ZH_CHAT, "/lang zh", 1)
    text = _plain(await _ask(api, ZH_CHAT, "/flows 1810", 2))
    flows = pos.flows(frames, "01810", latest)
    assert f"成交額：{money('zh', flows.turnover or 0)}" in text and "散戶" in text


async def test_history_lists_alerts_newest_first_with_moves_and_hit_rates(
    app: Application, api: BotApi
) -> None:
    view = expected_view()
    mine = sorted((a for a in view.alerts if a.code == "01810"), key=lambda a: a.trade_date, reverse=True)
    assert len(mine) >= 3
    text = _plain(await _ask(api, USER, "/history 1810", 1))
    lines = text.split("\n")
    assert lines[0].startswith("🕰 01810 XIAOMI-W") and f"({min(len(mine), 15)} of {len(mine)})" in lines[0]
    dated = [line for line in lines[1:] if line[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri")]
    assert [line.split(" ", 2)[:2] for line in dated] == [
        day("en", a.trade_date).split(" ") for a in mine[:15]
    ]
    oldest = mine[-1]
    moves = view.outcomes[oldest.fingerprint].moves
    assert moves[1] is not None and moves[20] is None  # 20 sessions after the demo's alerts are not known yet
    assert f"1d {pct('en', moves[1] * 100, signed=True)}" in dated[-1] and "20d n/a" in dated[-1]
    assert "a hit = the 5-session move went the rule's expected direction" in text
    result = ReplayResult(alerts=[(a.trade_date, a) for a in mine], outcomes=view.outcomes)
    for row in summarize(result):
        if row.hit_rate is not None:
            hits = round(row.hit_rate * row.hits_counted)
            assert f"{hits} of {row.hits_counted} judged alerts" in text, row.rule
    # Each hit rate sits beside the stock's base rate, with its count: 60% of 5 alerts reads as what it is.
    assert "vs a base rate of" in text and "5-session moves of this stock from every session since" in text
    assert len(HORIZONS) == 3
    zh = _plain(await _ask(api, HANS_USER, "/history 1810", 1, language_code="zh-hans"))
    assert "命中率" in zh and "20日 不適用" in zh


async def test_bad_input_gets_a_helpful_reply_in_the_chat_language(app: Application, api: BotApi) -> None:
    asks = [
        ("/card xiaomo", "I don't know the stock xiaomo. Did you mean: 01810 XIAOMI-W?"),
        ("/flows 1810 31/02", "I can't read the date 31/02"),
        ("/flows 1810 2025-11-22", "No quotations for 01810 on Sat 22/11"),
        ("/flows", "Which stock? Usage: /flows 1810"),
        ("/history 941", "No past alerts on 00941"),
        ("/card 99999", "I don't know the stock 99999"),
    ]
    for n, (text, expected) in enumerate(asks, start=1):
        assert expected in _plain(await _ask(api, USER, text, n)), text
    zh = _plain(await _ask(api, HANS_USER, "/card xiaomo", 1, language_code="zh-hans"))
    assert "找不到股票 xiaomo" in zh and "01810 小米集團-W" in zh
    zh = _plain(await _ask(api, HANS_USER, "/flows 1810 99/99", 2, language_code="zh-hans"))
    assert "無法讀取日期 99/99" in zh


def test_every_read_only_answer_is_valid_html_for_every_code_in_both_languages() -> None:
    view = expected_view()
    quotes = view.frames()["quotes"]
    # Every demo stock; the filler rows (there so each file's rows add up to its totals) are one more code.
    real = ~quotes["name"].astype(str).str.startswith("FILLER ")
    codes = sorted(set(quotes.loc[real, "code"].astype(str))) + [str(quotes.loc[~real, "code"].iloc[0])]
    for lang in LANGS:
        for command in READ_ONLY:
            for args in ([], ["1810"], *([code] for code in codes)):
                reply = answer(view, command, list(args), lang)
                assert len(reply.text) <= MAX_TEXT, (command, args, lang)
                _plain(reply.text)


def test_dynamic_message_ids_exist_and_every_rule_is_explained() -> None:
    families = catalogue_keys()
    for keys in families.values():
        for key in keys:
            assert all(key in catalogue(lang) for lang in LANGS), key
    assert {f"ans.why.{rule}.text" for rule in RULE_IDS} <= set(families["why"])
    assert "flows" in MENU and all(f"menu.{name}" in catalogue("zh") for name in MENU)
    assert {"card", "flows", "history"} <= set(READ_ONLY)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-21", date(2025, 11, 21)),
        ("21/11", date(2025, 11, 21)),
        ("31/12", date(2024, 12, 31)),
        ("21/11/2024", date(2024, 11, 21)),
        ("31/02", None),
        ("2025-13-01", None),
        ("yesterday", None),
    ],
)
def test_parse_day(text: str, expected: date | None) -> None:
    assert parse_day(text, TODAY) == expected


def _with_shortable_lists() -> DataView:
    """The demo history plus revisions of the real short-selling list: 01810 joins on 3 November 2025."""
    real = parse_shortable((FIXTURES / "hkex-shortable-list" / "ds_list20230518.csv").read_bytes())
    before = real[real["code"] != "01810"].assign(effective_date=pd.Timestamp("2025-09-08"))
    latest = real.assign(effective_date=pd.Timestamp("2025-11-03"))
    later = real.assign(effective_date=pd.Timestamp("2025-12-08"))  # not yet in effect on the demo evening
    frames = {**demo_history().frames, "shortable": pd.concat([before, latest, later], ignore_index=True)}
    return DataView(History(frames), TODAY)


@pytest.mark.parametrize(
    ("lang", "code", "line"),
    [
        ("en", "1810", "On HKEX's short-selling list since Mon 03/11"),
        ("en", "700", "On HKEX's short-selling list (list of Mon 03/11)"),
        ("en", "80016", "Not on HKEX's short-selling list (list of Mon 03/11)"),
        ("zh", "1810", "自11月3日(週一)起列入港交所可沽空名單"),
        ("zh", "80016", "不在港交所可沽空名單內（11月3日(週一)名單）"),
    ],
)
def test_card_says_whether_the_stock_is_on_the_short_selling_list(lang: str, code: str, line: str) -> None:
    view = _with_shortable_lists()
    lines = _plain(answer(view, "/card", [code], lang).text).splitlines()
    assert line in lines
    assert sum("short-selling list" in x or "可沽空名單" in x for x in lines) == 1


def without(feed: str) -> DataView:
    """The demo evening's view without one feed's frame (as a deployment without that source would see it)."""
    frames = {name: frame for name, frame in demo_history().frames.items() if name != feed}
    return DataView(History(frames), TODAY)


def test_card_says_nothing_about_the_list_without_one() -> None:
    text = _plain(answer(without("shortable"), "/card", ["700"], "en").text)
    assert "short-selling list" not in text


def test_demo_card_shows_the_demo_lists() -> None:
    # The demo's lists: 08/09 (every stock shorted in the demo) and 24/11 (adds the RMB counter 80016).
    assert "On HKEX's short-selling list since Mon 24/11" in _plain(
        answer(expected_view(), "/card", ["80016"], "en").text
    )
    assert "On HKEX's short-selling list (list of Mon 24/11)" in _plain(
        answer(expected_view(), "/card", ["1810"], "en").text
    )


# --- same-day southbound turnover (hkex-stock-connect-daily) in /flows and /card ------------------------------


def _flow_view(rows: list[dict[str, object]]) -> DataView:
    """The demo evening's view with these southbound top-10 rows (the demo itself has no same-day files)."""
    from alerts.history import History
    from alerts.sources.common import conform
    from alerts.sources.hkex_stock_connect_daily import SCHEMA

    frames = dict(demo_history().frames)
    frames["southbound_flow"] = conform(pd.DataFrame(rows, columns=list(SCHEMA)), SCHEMA)
    return DataView(History(frames), TODAY)


def _top10(when: date, channel: str, code: str, buy: float, sell: float) -> dict[str, object]:
    return {
        "date": pd.Timestamp(when),
        "channel": channel,
        "rank": 1,
        "code": code,
        "name": "XIAOMI-W",
        "buy_hkd": buy,
        "sell_hkd": sell,
        "total_hkd": buy + sell,
        "net_hkd": buy - sell,
    }


THURSDAY = date(2025, 11, 27)
XIAOMI_ROWS = [
    _top10(THURSDAY, "SSE Southbound", "01810", 1_234_000_000, 900_000_000),
    _top10(THURSDAY, "SZSE Southbound", "01810", 300_000_000, 100_000_000),
]


def test_flows_use_the_same_day_southbound_turnover_when_in_the_top_10() -> None:
    view = _flow_view(XIAOMI_ROWS)
    flows = pos.flows(view.frames(), "01810", THURSDAY)
    # Both channels summed: bought 1.534bn, sold 1.0bn; the holdings estimate (+HK$593.5m) is not used.
    assert (flows.southbound_kind, flows.southbound_buy, flows.southbound_sell) == (
        "turnover",
        1_534_000_000.0,
        1_000_000_000.0,
    )
    assert flows.southbound_net == 534_000_000.0 and flows.turnover == 5_522_944_368.0
    assert flows.remainder == 5_522_944_368.0 - 908_285_515.0 - 534_000_000.0
    text = _plain(answer(view, "flows", ["1810", "27/11"], "en").text)
    assert (
        "Southbound net buying: +HK$534.0m = +9.7% (same-day turnover in the southbound top 10: "
        "bought HK$1.53bn, sold HK$1.00bn)"
    ) in text
    assert "Remainder: HK$4.08bn = 73.9%" in text
    assert "holdings estimate" not in text.split("ℹ️")[0] and "≈" not in text
    zh = _plain(answer(view, "flows", ["1810", "27/11"], "zh").text)
    assert (
        "南向淨買入：+5.34億港元，佔 +9.7%（南向十大成交股的當日成交：買入 15.34億港元，賣出 10.00億港元）"
        in zh
    )


def test_flows_say_plainly_when_they_fall_back_to_the_holdings_estimate() -> None:
    # A same-day file is on hand for 27/11 but 01810 is not in it: the estimate from holdings, and why.
    view = _flow_view([_top10(THURSDAY, "SSE Southbound", "00700", 2_000_000_000, 1_000_000_000)])
    text = _plain(answer(view, "flows", ["1810", "27/11"], "en").text)
    assert "Southbound net buying ≈ +15,570,000 sh × HK$38.12 = +HK$593.5m" in text
    assert (
        "Not in the southbound top 10 on Thu 27/11, so HKEX gives no same-day buy and sell figures: "
        "southbound falls back to the next-morning holdings estimate."
    ) in text
    # No same-day file at all (the demo without its Stock Connect files): said as such.
    demo = _plain(answer(without("southbound_flow"), "flows", ["1810", "27/11"], "en").text)
    assert (
        "No same-day Stock Connect turnover file on hand for Thu 27/11: southbound falls back to the "
        "next-morning holdings estimate."
    ) in demo
    zh = _plain(answer(view, "flows", ["1810", "27/11"], "zh").text)
    assert "此股11月27日(週四)不在南向十大成交股之列" in zh


def test_card_shows_the_latest_southbound_net_buy_with_its_date() -> None:
    view = _flow_view(XIAOMI_ROWS)
    card = _plain(answer(view, "card", ["1810"], "en").text)
    line = (
        "🌊 Southbound turnover Thu 27/11 (in the day's top 10): net +HK$534.0m, bought HK$1.53bn, sold HK$1.00bn"
        + " "
        + _src("en", "southbound_flow", THURSDAY)
    )
    assert line in card
    zh = _plain(answer(view, "card", ["1810"], "zh").text)
    assert (
        "🌊 南向成交 11月27日(週四)（當日十大成交股）：淨額 +5.34億港元，買入 15.34億港元，賣出 10.00億港元"
        in zh
    )
    # A stock never in a top 10 gets no line: the RMB counter in the demo, or any stock without the files.
    assert "Southbound turnover" not in _plain(answer(expected_view(), "card", ["80016"], "en").text)
    assert "Southbound turnover" not in _plain(
        answer(without("southbound_flow"), "card", ["1810"], "en").text
    )


@pytest.mark.parametrize("lang", LANGS)
def test_card_line_of_the_last_corporate_finance_announcement(lang: str) -> None:
    from bot.answers import _card_announcement
    from tests.support.paths import fixture_bytes

    frame = get_source("hkexnews-announcements").parse(
        fixture_bytes("hkexnews-announcements", "titleSearchServlet_20260909_constructed.json")
    )
    (line,) = _card_announcement({"announcements": frame}, "01234", lang)
    parse_html(line)
    assert day(lang, date(2026, 9, 9)) in line
    assert ("placing" if lang == "en" else "配售") in line
    assert 'href="https://www1.hkexnews.hk/listedco/listconews/sehk/2026/0909/2026090902101.pdf"' in line
    assert "PLACING OF NEW SHARES UNDER GENERAL MANDATE AT A DISCOUNT OF APPROXIMATELY 9.8%" in line
    # "other" announcements, or none at all: no line.
    assert _card_announcement({"announcements": frame}, "00005", lang) == []
    assert _card_announcement({}, "01234", lang) == []
