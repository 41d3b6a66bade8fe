"""Alerts, settings, status, menus and operator notices in English and 繁體中文, through the real bot and worker."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from redis.asyncio import Redis
from telegram import Bot, Update
from telegram.ext import Application, CommandHandler, ContextTypes

from alerts.calendar import HK_TZ, sessions_between
from alerts.history import FEEDS
from alerts.model import Alert, Fact
from alerts.replay import ReplayResult
from alerts.routing import route
from alerts.rules import KINDS, RULE_IDS, RuleContext, load_params
from alerts.rules.confluence import evaluate_confluence
from alerts.rules.context import CONTEXT_FIELDS
from alerts.rules.corporate_finance import evaluate_corporate_finance_event
from alerts.rules.eligibility import evaluate_eligibility_change
from alerts.rules.southbound_flow import evaluate_southbound_net_flow
from alerts.rules.us_first_buys import FirstBuyParams, evaluate_first_time_insider_buy
from alerts.rules.us_insider_sells import SellClusterParams, evaluate_insider_sell_cluster
from alerts.rules.us_insiders import ClusterParams, evaluate_insider_cluster, evaluate_us_round_number
from alerts.rules.us_large_holders import LargeHolderParams, evaluate_large_holder_filing
from alerts.rules.us_short_volume import evaluate_us_short_volume
from alerts.sources import finra_short_volume, get_source, sec_13d_13g
from alerts.sources.common import conform, empty_frame
from alerts.sources.hkex_shortable import parse as parse_shortable
from alerts.sources.sec_edgar import fill_tickers
from alerts.store import keys
from alerts.store.frames import FrameStore
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore
from bot import render
from bot.delivery import DeliveryWorker, RateLimiter, render_item
from bot.demo import load_demo, print_replay
from bot.handlers import MENU, SEVERITY_STEPS, settings_keyboard
from bot.i18n import has, normalize_lang, t
from bot.render import SOURCE_KEYS, WHY_BUILDERS, render_alert, render_group, why_text
from tests.alerts.rules import frames as rule_frames
from tests.alerts.rules.frames import context as hk_context
from tests.alerts.rules.test_southbound_flow import flow_rows
from tests.alerts.rules.test_us_insiders import frame, row
from tests.support.botapi import BotApi, parse_html
from tests.support.bothelpers import ADMIN, TOKEN, app_deps, running_bot
from tests.support.paths import FIXTURES

NY = ZoneInfo("America/New_York")
USER, OTHER = 2001, 2002
_CJK = re.compile(r"[\u3400-\u9fff]")
ENGLISH_TITLES = [render.rule_title(rule) for rule in KINDS]
US_DAY = date(2025, 11, 24)


# --- realistic alerts, built by the rules themselves ---------------------------------------------------------


def _finra_history() -> pd.DataFrame:
    """60 XNYS sessions of two symbols near 40% / 45% short volume, then a spike (ACME) and a drop (DROPCO)."""
    rng = np.random.default_rng(7)
    rows = []
    sessions = sessions_between(US_DAY - timedelta(days=120), US_DAY - timedelta(days=1), "XNYS")[-60:]
    for day, ratios in [
        (s, {"ACME": 0.40 + rng.normal(0, 0.02), "DROPCO": 0.45 + rng.normal(0, 0.02)}) for s in sessions
    ] + [(US_DAY, {"ACME": 0.75, "DROPCO": 0.10})]:
        rows += [
            {
                "date": pd.Timestamp(day),
                "symbol": s,
                "short_volume": r * 2_000_000,
                "short_exempt_volume": 0.0,
                "total_volume": 2_000_000.0,
                "market": "B,Q,N",
                "short_ratio": r,
            }
            for s, r in ratios.items()
        ]
    return conform(pd.DataFrame(rows), finra_short_volume.SCHEMA)


def _us_alerts() -> list[Alert]:
    params = load_params()
    published = datetime(2025, 11, 24, 21, 30, tzinfo=NY)
    short, _ = evaluate_us_short_volume(_finra_history(), US_DAY, params)
    jane = row(ticker="ACME", transaction_date=pd.Timestamp(US_DAY))
    john = row(
        ticker="ACME",
        owner_name="John Doe",
        is_director=False,
        is_officer=True,
        officer_title="CFO",
        price=39.9,
        accession="0000000000-25-000002",
        transaction_date=pd.Timestamp(US_DAY),
    )
    insiders = evaluate_us_round_number(frame(jane), params, published_at=published)
    cluster = evaluate_insider_cluster(
        frame(jane, john), frame(john), US_DAY, ClusterParams(), published_at=published
    )
    signals = [a for a in short + insiders if a.code == "ACME"]
    feeds = {
        name: empty_frame(get_source(src).tables[table].schema)
        for name, (src, table, _) in FEEDS.items()
        if name in CONTEXT_FIELDS
    }
    # The six HK feeds are RuleContext fields; feeds newer sources declare travel in `feeds`.
    fields = {name: frame for name, frame in feeds.items() if name in CONTEXT_FIELDS}
    others = {name: frame for name, frame in feeds.items() if name not in CONTEXT_FIELDS}
    confluence = evaluate_confluence(
        RuleContext(day=US_DAY, feeds=others, **fields), params, today=tuple(signals)
    )[0]
    return (
        short
        + insiders
        + cluster
        + [replace(a, market="US") for a in confluence]
        + _us_sells_first_buys_and_holders()
    )


def _us_sells_first_buys_and_holders() -> list[Alert]:
    """An insider sell cluster with a plan sale, a first-time buy and a 13D, built by their rules."""
    sellers = [
        row(
            owner_name=name,
            owner_cik=cik,
            code="S",
            acquired_disposed="D",
            shares=12_000.0,
            price=40.0,
            is_10b5_1=plan,
            accession=f"0000000000-25-00010{cik}",
            transaction_date=pd.Timestamp(US_DAY),
        )
        for name, cik, plan in (("Ann Lee", "1", False), ("Bob Roe", "2", False), ("Cat Poe", "3", False))
    ]
    plan = row(owner_name="Dan Moe", owner_cik="4", code="S", acquired_disposed="D", is_10b5_1=True)
    sells = evaluate_insider_sell_cluster(frame(*sellers, plan), frame(*sellers), US_DAY, SellClusterParams())
    year = frame()
    year.attrs["since"] = US_DAY - timedelta(days=364)
    first, _ = evaluate_first_time_insider_buy(
        year, frame(row(transaction_date=pd.Timestamp(US_DAY))), US_DAY, FirstBuyParams()
    )
    data = (FIXTURES / "sec-13d-13g" / "schedule13d.xml").read_bytes()
    filed = fill_tickers(
        sec_13d_13g.parse_filing(data, "0001373604-25-000001", None, US_DAY), {"1422142": "ACME"}
    )
    holders = evaluate_large_holder_filing(filed, LargeHolderParams())
    return sells + first + holders


def _southbound_flow_alerts() -> list[Alert]:
    """southbound_net_flow built from rows: a large net buy and a selling run (the demo has no net selling)."""
    rows = flow_rows("00700", [100, 200] * 10 + [400]) + flow_rows("09988", [10, -10, -10, -10, -10, -10])
    ctx = rule_frames.context(southbound_flow=rule_frames.frame("southbound_flow", rows))
    alerts, _ = evaluate_southbound_net_flow(ctx, load_params())
    assert sorted(a.identity for a in alerts) == ["large:buy", "streak:sell"]
    return alerts


@cache
def _demo() -> ReplayResult:
    return load_demo()[1]


def _eligibility_alerts() -> list[Alert]:
    """eligibility_change on the real 18/05/2023 list against the same list without two stocks, and a review."""
    real = parse_shortable((FIXTURES / "hkex-shortable-list" / "ds_list20230518.csv").read_bytes())
    before = real[~real["code"].isin(["02800", "00700"])].assign(effective_date=pd.Timestamp("2023-03-06"))
    extra = real.iloc[:1].assign(code="09999", name="GONE", effective_date=pd.Timestamp("2023-03-06"))
    shortable = pd.concat([before, extra, real], ignore_index=True)
    reviews = pd.DataFrame(
        {
            "index": ["HSI", "HSTECH"],
            "code": ["00300", "00772"],
            "name": ["MIDEA GROUP", "CHINA LIT"],
            "change": ["add", "delete"],
            "announced": [pd.Timestamp("2023-05-18")] * 2,
            "effective": [pd.Timestamp("2023-06-05")] * 2,
        }
    )
    ctx = hk_context(date(2023, 5, 18), feeds={"shortable": shortable, "index_reviews": reviews})
    return evaluate_eligibility_change(ctx, load_params())[0]


def _announcement_alerts() -> list[Alert]:
    """corporate_finance_event over the constructed market-wide day (the demo data holds no announcements)."""
    data = (FIXTURES / "hkexnews-announcements" / "titleSearchServlet_20260909_constructed.json").read_bytes()
    ctx = hk_context(
        date(2026, 9, 9), feeds={"announcements": get_source("hkexnews-announcements").parse(data)}
    )
    return evaluate_corporate_finance_event(ctx, load_params())[0]


@cache
def realistic_alerts() -> tuple[Alert, ...]:
    """Every alert of the demo replay (all HK rules), eligibility changes, southbound flows, announcements and US
    alerts."""
    demo = tuple(a for _, a in _demo().alerts)
    # The demo has a stock added to the short-selling list and 01810's net buying (large and a run): the built
    # alerts add the events and sides it lacks (index reviews; a net selling run), so all are rendered.
    seen = {(a.rule, _event(a)) for a in demo}
    built = tuple(_eligibility_alerts()) + tuple(_southbound_flow_alerts())
    return (
        demo
        + tuple(a for a in built if (a.rule, _event(a)) not in seen)
        + tuple(_us_alerts())
        + tuple(_announcement_alerts())
    )


def _event(alert: Alert) -> str:
    """What kind of eligibility change or flow an alert is (its `event` fact, else its identity)."""
    event = alert.fact("event")
    return str(event.value) if event is not None else alert.identity


def test_realistic_alerts_cover_every_eligibility_event_and_flow_side() -> None:
    alerts = realistic_alerts()
    events = {_event(a) for a in alerts if a.rule == "eligibility_change"}
    # (The built list change names no removed stock the context watches: a removal is not among them.)
    assert events == {"shortable_added", "index_added", "index_removed"}
    flows = {a.identity for a in alerts if a.rule == "southbound_net_flow"}
    assert flows == {"large:buy", "streak:buy", "streak:sell"}
    assert any(a.rule == "eligibility_change" and a.code == "80016" for a in alerts)  # the demo's own


def _label(alert: Alert) -> str:
    return f"{alert.market}:{alert.rule}"


def test_the_realistic_set_covers_every_rule_and_market() -> None:
    covered = {_label(a) for a in realistic_alerts()}
    assert {f"HK:{rule}" for rule in RULE_IDS} <= covered
    assert {
        "US:short_ratio_spike",
        "US:short_ratio_drop",
        "US:insider_buy_near_round_number",
        "US:insider_cluster",
        "US:confluence",
        "US:insider_sell_cluster",
        "US:first_time_insider_buy",
        "US:large_holder_filing",
    } <= covered


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_rule_renders_valid_html_within_limits(lang: str) -> None:
    seen: set[str] = set()
    for alert in realistic_alerts():
        if _label(alert) in seen:
            continue
        seen.add(_label(alert))
        text = render_alert(alert, lang)
        parse_html(text)  # the stand-in's Telegram HTML parser raises on bad markup
        assert len(text) <= 4096, _label(alert)
        if lang == "zh":
            assert _CJK.search(text), _label(alert)
            assert not [title for title in ENGLISH_TITLES if title in text], _label(alert)
            assert "Trade date" not in text and "published" not in text
        else:
            assert render.rule_title(alert.rule) in text
    assert len(seen) >= len(RULE_IDS) + 5


def test_chinese_why_is_the_full_template_for_every_realistic_alert() -> None:
    for alert in realistic_alerts():
        if alert.rule not in WHY_BUILDERS:  # one catalogue template says it (why.<rule>): every fact it names
            full = render._why_from_catalogue(alert, "zh")
            assert full != t("zh", "why.fallback"), alert.rule
        else:
            full = WHY_BUILDERS[alert.rule][0](
                render._Facts(alert, "zh")
            )  # raises if a fact the rule emits is missing
        assert why_text(alert, "zh") == full and _CJK.search(full)
        assert why_text(alert, "en") == alert.why  # English keeps the rule's own sentence


def test_chinese_why_of_us_alerts_keeps_the_short_volume_warning() -> None:
    us_short = [a for a in realistic_alerts() if a.market == "US" and a.rule.startswith("short_ratio")]
    assert {a.rule for a in us_short} == {"short_ratio_spike", "short_ratio_drop"}
    for alert in us_short:
        text = render_alert(alert, "zh")
        assert "並非未平倉淡倉" in text and "FINRA每日沽空成交量" in text


@pytest.mark.parametrize("rule", sorted(KINDS))
def test_missing_facts_fall_back_to_a_shorter_sentence(rule: str) -> None:
    bare = Alert(
        rule=rule, code="01810", name="XIAOMI-W", trade_date=date(2025, 11, 21), severity="notice", why=""
    )
    for lang in ("en", "zh"):
        text = render_alert(bare, lang)
        parse_html(text)
        assert text.split("\n")[1] == t(lang, "why.fallback")
    some = next(a for a in realistic_alerts() if a.rule == rule)
    full = why_text(some, "zh")
    for dropped in some.facts:  # every fact missing in turn: still a Chinese sentence, valid HTML, no crash
        partial = replace(some, facts=tuple(f for f in some.facts if f is not dropped))
        text = render_alert(partial, "zh")
        parse_html(text)
        assert _CJK.search(text.split("\n")[1])
    assert full != t("zh", "why.fallback")


def test_a_missing_fact_gives_the_shorter_template() -> None:
    spike = _sample("short_ratio_spike")
    without = replace(spike, facts=tuple(f for f in spike.facts if f.name != "turnover"))
    assert why_text(spike, "zh").endswith("成交額 89.47億港元）")
    assert why_text(without, "zh") == "沽空比率 34.4%，較近期平均高 7.4σ"
    buyback = _sample("buyback_filed")
    assert why_text(replace(buyback, facts=buyback.facts[:1]), "zh") == "11月17日(週一)回購 1,050,000股"


def test_a_malformed_fact_does_not_crash() -> None:
    alert = next(a for a in realistic_alerts() if a.rule == "short_position_jump")
    broken = replace(alert, facts=(*alert.facts[:-3], Fact("previous_date", "not a date", "date")))
    assert why_text(broken, "zh") == WHY_BUILDERS["short_position_jump"][1](render._Facts(broken, "zh"))


# --- the catalogue holds every key built at run time ----------------------------------------------------------


def test_dynamic_keys_exist_in_the_catalogue() -> None:
    rules = set(KINDS) | set(RULE_IDS)
    wanted = [f"rule.{r}.title" for r in rules] + [f"rule.{r}.caveat" for r in rules]
    wanted += [
        f"why.{r}" for r in rules if r != "southbound_level"
    ]  # southbound: .up / .down / .change below
    # A shorter sentence where render has a second builder (a rule said by its catalogue template has none).
    wanted += [f"why.{r}.short" for r in rules if len(WHY_BUILDERS.get(r, ())) > 1]
    assert {r for r in rules if r not in WHY_BUILDERS} == set()
    wanted += [
        f"why.us_{r}" for r in ("short_ratio_spike", "short_ratio_drop", "insider_buy_near_round_number")
    ]
    wanted += [f"why.us_{r}.short" for r in ("short_ratio_spike", "short_ratio_drop")]
    wanted += list(SOURCE_KEYS.values()) + [f"fact.{name}" for k in KINDS.values() for name in k.headline]
    wanted += [f"menu.{name}" for name in MENU] + [f"severity.{s}" for s in SEVERITY_STEPS]
    wanted += [
        f"stats.{k}"
        for k in (
            "chats",
            "active_chats",
            "watchlist_entries",
            "market_subscribers",
            "outbox_pending",
            "dead_letters",
        )
    ]
    wanted += [f"why.southbound_level.{d}" for d in ("up", "down", "change")]
    wanted += [f"why.where_{s}" for s in ("below", "above", "at")]
    assert sorted(k for k in wanted if not has(k)) == []
    currencies = {
        "HKD",
        "USD",
        "RMB",
        "CNY",
        "GBP",
        "EUR",
    }  # written by i18n.money / i18n.price, not unit keys
    units = (
        {f.unit for a in realistic_alerts() for f in a.facts}
        - {"", "%", "pp", "σ", "shares", "date"}
        - currencies
    )
    assert sorted(u for u in units if not has(f"unit.{u}")) == []


def test_english_names_by_default() -> None:
    assert (render.rule_emoji("buyback_filed"), render.rule_title("buyback_filed")) == ("💰", "Share buyback")
    assert "not a position" in render.CAVEATS["short_ratio_spike"]
    assert "not short interest" in (render.caveat("short_ratio_spike", market="US") or "")
    assert render.source_label("https://cdn.finra.org/equity/regsho/daily/CNMSshvol20251126.txt") == (
        "FINRA daily short volume"
    )
    assert render.rule_title("buyback_filed", "zh") == "股份回購"
    assert render.rule_title("no_such_rule", "zh") == "no_such_rule"


def test_settings_keyboard_in_chinese() -> None:
    from alerts.store.subscriptions import ChatSettings

    keyboard = settings_keyboard(ChatSettings(chat_id=1, lang="zh", market=True))
    labels = [b.text for row_ in keyboard.inline_keyboard for b in row_]
    assert len(labels) == len(RULE_IDS) + 5
    assert labels[0] == "✅ 🔺 沽空比率急升"
    assert "✅ 大市通知" in labels and "🚫 每日摘要" in labels and "English" in labels
    assert "沽空比率通知：|z| ≥ 2" in labels and "最低嚴重程度：全部" in labels
    assert not [label for label in labels if re.search(r"[a-z]{4,}", label) and label != "English"]


# --- language defaults ------------------------------------------------------------------------------------------


async def test_telegram_language_codes_pick_the_default_language(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    codes = ["zh-hans", "zh-Hans", "zh-hant", "zh-HK", "zh-TW", "zh", "en", "en-GB", None, "ja"]
    for chat, code in enumerate(codes, start=100):
        await subs.touch(chat, "private", code)
    got = [(await subs.settings(chat)).lang for chat in range(100, 100 + len(codes))]
    assert got == ["zh"] * 6 + ["en"] * 4
    assert got == [normalize_lang(c) for c in codes]  # the store and the catalogue agree
    await subs.touch(100, "private", "en")  # a later message does not override the first default
    assert (await subs.settings(100)).lang == "zh"


# --- the delivery worker renders in the recipient's language at send time -------------------------------------


def _sample(rule: str, market: str = "HK") -> Alert:
    return next(a for a in realistic_alerts() if a.rule == rule and a.market == market)


async def test_a_lang_change_applies_to_pending_alerts(api: BotApi, redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    alert = _sample("short_ratio_spike")
    for chat in (USER, OTHER):
        await subs.touch(chat, "private", "en")
        await subs.watch(chat, [alert.code])
    # Routed the evening after the trade date: alerts older than the routed marks are refused.
    now = datetime.combine(alert.trade_date + timedelta(days=1), time(18), tzinfo=HK_TZ)
    assert (await route([alert], subs, outbox, now)).enqueued == 2
    await subs.set_lang(USER, "zh")  # after the alert was queued
    async with Bot(TOKEN, base_url=api.base_url) as bot:
        report = await DeliveryWorker(
            bot, outbox, subs, limiter=RateLimiter(chat_interval=0.0), now=lambda: now
        ).drain()
    assert report.sent == 2
    (zh,), (en,) = api.messages(USER), api.messages(OTHER)
    assert zh["text"].startswith("🔺 <b>沽空比率急升</b>") and "港交所每日報價表" in zh["text"]
    assert (
        en["text"].startswith("🔺 <b>Short-selling ratio spike</b>") and "HKEX daily quotations" in en["text"]
    )
    assert [b["text"] for b in zh["reply_markup"]["inline_keyboard"][0]] == ["概覽", "圖表", "靜音1天"]
    assert [b["text"] for b in en["reply_markup"]["inline_keyboard"][0]] == ["Card", "Chart", "Mute 1d"]


async def test_switching_language_mid_item_skips_and_repeats_nothing(api: BotApi, redis: Redis) -> None:
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(USER, "private", "en")
    base = _sample("buyback_filed")
    alerts = [replace(base, code=f"{i:05d}", why=base.why * (1 + i % 4)) for i in range(1, 61)]
    await subs.watch(USER, [a.code for a in alerts])
    now = datetime.combine(base.trade_date + timedelta(days=1), time(18), tzinfo=HK_TZ)
    await route(alerts, subs, outbox, now)

    class Crash(Exception):
        pass

    async with Bot(TOKEN, base_url=api.base_url) as bot:
        sent = 0

        async def send_once(*args: object, **kwargs: object) -> object:
            nonlocal sent
            if sent == 1:
                raise Crash
            sent += 1
            return await bot.send_message(*args, **kwargs)  # type: ignore[arg-type]

        first = DeliveryWorker(
            type("B", (), {"send_message": staticmethod(send_once)})(),
            outbox,
            subs,  # type: ignore[arg-type]
            limiter=RateLimiter(chat_interval=0.0),
            now=lambda: now,
        )
        with pytest.raises(Crash):
            await first.drain()
        await subs.set_lang(USER, "zh")
        later = now + timedelta(seconds=keys.CLAIM_SECONDS + 1)
        report = await DeliveryWorker(
            bot, outbox, subs, limiter=RateLimiter(chat_interval=0.0), now=lambda: later
        ).drain()
    texts = api.texts(USER)
    assert report.sent == len(texts) - 1 >= 2
    assert texts[0].startswith("<b>60 alerts</b>") and all("股份回購" in x for x in texts[1:])
    joined = "\n".join(texts)
    assert all(joined.count(f"<b>{a.code}</b>") == 1 for a in alerts)  # each alert exactly once
    assert await outbox.pending() == 0


def test_digest_header_and_parts_follow_the_language() -> None:
    alerts = [_sample("buyback_filed"), _sample("southbound_level")]
    item = OutboxItem(id="x", chat_id=1, kind="digest", alerts=[a.as_dict() for a in alerts])
    (zh,), markup = render_item(item, "zh")
    assert (
        zh.startswith("📬 <b>每日摘要</b> · 為你保留了2則通知") and "<b>2則通知</b>" in zh and markup is None
    )
    (en,), _ = render_item(item, "en")
    assert en.startswith("📬 <b>Daily digest</b> · 2 alert(s) held for you")
    assert render_group(alerts, date(2025, 11, 25), "fr") == render_group(alerts, date(2025, 11, 25), "en")


# --- through the running bot -------------------------------------------------------------------------------------


async def _say(api: BotApi, chat: int, text: str, n: int, **kw: object) -> list[str]:
    api.push_message(chat, text, **kw)  # type: ignore[arg-type]
    await api.await_sent(n, chat_id=chat, timeout=10)
    return api.texts(chat)


async def test_menu_is_registered_in_both_languages_from_the_catalogue(app: Application, api: BotApi) -> None:
    await _say(api, USER, "/start", 1)
    default = api.commands[('{"type": "default"}', "")]
    chinese = api.commands[('{"type": "default"}', "zh")]
    assert [c["command"] for c in default] == [c["command"] for c in chinese] == list(MENU)
    assert [c["description"] for c in default] == [t("en", f"menu.{name}") for name in MENU]
    assert [c["description"] for c in chinese] == [t("zh", f"menu.{name}") for name in MENU]
    assert all(_CJK.search(c["description"]) for c in chinese)


async def test_zh_hans_user_gets_traditional_chinese_alerts_settings_and_status(
    app: Application, api: BotApi, redis: Redis
) -> None:
    texts = await _say(api, USER, "/watch 1810", 1, language_code="zh-hans")
    assert "已關注" in texts[0]
    await _say(api, OTHER, "/watch 1810", 1, language_code="en")
    await _say(api, USER, "/settings", 2, language_code="zh-hans")
    keyboard = api.messages(USER)[1]["reply_markup"]["inline_keyboard"]
    labels = [b["text"] for row_ in keyboard for b in row_]
    assert "✅ 🔺 沽空比率急升" in labels and "🚫 大市通知" in labels
    await FrameStore(redis).record_status(
        "hkex-quotes",
        datetime(2025, 11, 28, 18, 40, tzinfo=HK_TZ),
        ok=True,
        detail={"date": "2025-11-28", "rows": "10"},
    )
    await FrameStore(redis).record_status(
        "hkex-quotes",
        datetime(2025, 11, 28, 19, 0, tzinfo=HK_TZ),
        ok=False,
        detail={"date": "2025-12-01", "message": "placeholder <page>"},
    )
    texts = await _say(api, USER, "/status", 3, language_code="zh-hans")
    status = texts[2]
    assert "數據狀態" in status and "未曾取得" in status
    assert "11月28日(週五)，於 28/11 18:40 取得（較預期發布時間" in status
    assert "最近錯誤：placeholder &lt;page&gt;" in status and "fetched" not in status
    d = app_deps(app)
    alert = _sample("short_position_jump")
    await route([alert], d.subs, d.outbox, d.clock())
    zh = (await api.await_sent(4, chat_id=USER, timeout=10))[-1]
    en = (await api.await_sent(2, chat_id=OTHER, timeout=10))[-1]
    assert zh["text"].startswith("📊 <b>申報淡倉變動</b>") and "淡倉 641,319,394股" in zh["text"]
    assert en["text"].startswith("📊 <b>Reported short position change</b>") and alert.why in en["text"]


async def test_admin_stats_and_dead_letter_notice_in_the_admins_language(
    app: Application, api: BotApi
) -> None:
    await _say(api, ADMIN, "/lang zh", 1)
    texts = await _say(api, ADMIN, "/stats", 2)
    assert (
        texts[1].startswith("📈 <b>統計</b>") and "待發訊息" in texts[1] and "outbox_pending" not in texts[1]
    )
    d = app_deps(app)
    await d.subs.touch(USER)
    await d.outbox.put(
        OutboxItem(id=item_id(USER, "text", ["bad"]), chat_id=USER, kind="text", text="<script>x</script>"),
        d.clock(),
    )
    notice = (await api.await_sent(3, chat_id=ADMIN, timeout=10))[-1]
    assert (
        "被拒" in notice["text"]
        and f"<code>{USER}</code>" in notice["text"]
        and "refused" not in notice["text"]
    )


async def test_handler_error_reply_and_admin_notice_follow_each_chat(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    async def boom(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        raise RuntimeError("boom <1>")

    async with running_bot(api, redis_url) as application:
        application.add_handler(CommandHandler("boom", boom), group=-1)  # before the unknown-command handler
        await _say(api, USER, "/lang zh", 1)
        await _say(api, ADMIN, "/start", 1)
        texts = await _say(api, USER, "/boom", 2)
        assert texts[1] == t("zh", "error_generic")
        notice = (await api.await_sent(2, chat_id=ADMIN, timeout=10))[-1]
        assert notice["text"].startswith("⚠️ Handler error:") and "boom &lt;1&gt;" in notice["text"]
        assert any("boom" in e for e in application.bot_data.pop("handler_errors"))


def test_demo_replay_prints_chinese_alerts(capsys: pytest.CaptureFixture[str]) -> None:
    print_replay(_demo(), False, "zh")
    out = capsys.readouterr().out
    assert out.startswith("positioning-bot 示範 — 重播 2025年11月17日(週一) 至 2025年11月28日(週五)")
    assert "👤 內部人士於整數價位附近買入 · 01810" in out and "[ 概覽 ]  [ 圖表 ]  [ 靜音1天 ]" in out
    assert "<b>" not in out and not [title for title in ENGLISH_TITLES if title in out]
