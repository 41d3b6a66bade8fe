"""Charts: rendering from the demo data, /chart and the Chart button through the bot, cached sends by file_id,
and important alerts delivered through the outbox with their chart photo exactly once."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from redis.asyncio import Redis
from telegram.ext import Application

from alerts.model import Alert, Fact
from alerts.routing import route
from alerts.rules import KINDS
from alerts.store import keys
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot import charts
from bot.chartsend import alert_chart, caption
from bot.delivery import CHART_PART, DeliveryWorker, RateLimiter
from bot.i18n import has
from tests.support.botapi import BotApi, Upload, parse_text
from tests.support.bothelpers import DEMO_NOW, app_deps, demo_history, running_bot, seed_demo

USER = 2001
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEN_MB = 10 * 1024 * 1024
TODAY = DEMO_NOW.date()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _photos(api: BotApi, chat: int) -> list[dict[str, Any]]:
    return [c.params for c in api.calls("sendPhoto") if c.ok and c.chat_id == chat]


async def _command(api: BotApi, chat: int, text: str, n: int, **kw: Any) -> dict[str, Any]:
    """Send a command and return the bot's n-th message (photo or text) in the chat."""
    api.push_message(chat, text, **kw)
    return (await api.await_sent(n, chat_id=chat, timeout=20))[n - 1]


async def _file_id(redis: Redis, key: str, timeout: float = 10.0) -> bytes | None:  # noqa: ASYNC109
    """The file_id recorded for a chart, waiting a moment: Redis is written after Telegram's answer arrives."""
    for _ in range(int(timeout / 0.02)):
        value = await redis.hget(key, "file_id")
        if value is not None:
            return bytes(value)
        await asyncio.sleep(0.02)
    return None


def _check_caption(params: dict[str, Any]) -> str:
    text = str(params["caption"])
    plain, _ = parse_text(text, "HTML")  # raises on markup Telegram would refuse
    assert 0 < len(plain) <= 1024 and len(text) <= 1024
    return text


# ------------------------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("kind", charts.KINDS)
def test_every_kind_renders_a_phone_sized_png(kind: str, lang: str) -> None:
    data = charts.prepare(kind, demo_history().frames, "01810", TODAY)
    assert data.end == TODAY and data.start < TODAY
    assert data.sessions <= charts.SESSIONS
    png = charts.render(data, "XIAOMI-W", lang)
    assert _png_size(png) == (1200, 800)
    assert 10_000 < len(png) < TEN_MB


def test_short_chart_marks_buyback_days_and_director_buys() -> None:
    data = charts.prepare("short", demo_history().frames, "01810", TODAY)
    assert sorted(data.buybacks["trade_date"].dt.date) == [date(2025, 11, 20), date(2025, 11, 21)]
    assert list(data.buys["holder"]) == ["Lei Jun"]
    assert data.sessions >= 60  # the demo holds Aug–Nov: every session of it is drawn
    text = caption(data, "XIAOMI-W", "en")
    assert "2 buyback day(s), 1 director" in text and "01810" in text


def test_window_is_the_last_120_sessions() -> None:
    data = charts.prepare("southbound", demo_history().frames, "01810", date(2025, 12, 31))
    assert data.sessions <= charts.SESSIONS
    assert data.end <= date(2025, 12, 31)


def test_missing_data_and_unknown_kind() -> None:
    frames = demo_history().frames
    with pytest.raises(charts.NoChartData):
        charts.prepare("southbound", frames, "00001", TODAY)  # not a Stock Connect stock in the demo
    with pytest.raises(charts.NoChartData):
        charts.prepare("short", frames, "99999", TODAY)
    with pytest.raises(ValueError, match="unknown chart kind"):
        charts.prepare("volume", frames, "01810", TODAY)


def test_every_kind_and_charted_rule_has_its_messages() -> None:
    for kind in charts.KINDS:
        for key in (f"chart.kind.{kind}", f"chart.source.{kind}", f"chart_sources_{kind}"):
            assert has(key), key
    assert {k.chart for k in KINDS.values() if k.chart} <= set(charts.KINDS)


def test_chinese_labels_need_a_cjk_font() -> None:
    family = charts.cjk_family()
    if family is None:
        pytest.skip(
            "no CJK font installed (apt-get install -y fonts-wqy-microhei): Chinese labels not checked"
        )
    assert charts.label_lang("zh") == "zh"
    assert set("沽空淡倉") <= charts._charmap(family)


def test_without_a_cjk_font_charts_fall_back_to_english_once_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from matplotlib import font_manager

    charts.cjk_family.cache_clear()
    try:
        monkeypatch.setattr(
            font_manager.fontManager,
            "ttflist",
            [f for f in font_manager.fontManager.ttflist if f.name not in charts.CJK_FAMILIES],
        )
        monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
        with caplog.at_level(logging.WARNING, logger="bot.charts"):
            assert charts.cjk_family() is None
            assert charts.label_lang("zh") == "en"
            data = charts.prepare("short", demo_history().frames, "01810", TODAY)
            png = charts.render(data, "小米集團-W", "zh")  # a Chinese name is dropped, not drawn as boxes
        assert _png_size(png) == (1200, 800)
        assert [r.message for r in caplog.records].count(
            "no CJK font found: Chinese charts use English labels (install fonts-wqy-microhei)"
        ) == 1
        assert charts.drawable("小米集團-W", None) == "-W"
    finally:
        charts.cjk_family.cache_clear()


# ------------------------------------------------------------------------------------------------ /chart


async def test_chart_command_sends_a_png_then_reuses_the_file_id(
    app: Application, api: BotApi, redis: Redis
) -> None:
    first = await _command(api, USER, "/chart 1810", 1)
    upload = first["photo"]
    assert isinstance(upload, Upload)
    assert _png_size(upload.data) == (1200, 800) and upload.size < TEN_MB
    text = _check_caption(first)
    assert "<b>01810</b>" in text and "Short-selling ratio vs close" in text and "Short ratio" in text
    file_id = api.calls("sendPhoto")[-1].result["photo"][-1]["file_id"]
    key = keys.chart("01810", "short", "en", TODAY)
    assert await _file_id(redis, key) == file_id.encode()
    assert 0 < await redis.ttl(key) <= keys.CHART_TTL_SECONDS
    second = await _command(api, USER, "/chart 01810 short", 2)
    assert second["photo"] == file_id  # no second upload
    assert _check_caption(second) == text
    assert len(api.calls("sendPhoto")) == 2


async def test_each_kind_and_bad_arguments(app: Application, api: BotApi) -> None:
    position = await _command(api, USER, "/chart 1810 position", 1)
    assert isinstance(position["photo"], Upload)
    assert "SFC short position" in _check_caption(position) and "of issued shares" in position["caption"]
    southbound = await _command(api, USER, "/chart xiaomi southbound", 2)
    assert isinstance(southbound["photo"], Upload)
    assert "Southbound holds" in _check_caption(southbound)
    assert position["photo"].data != southbound["photo"].data
    assert "Usage" in (await _command(api, USER, "/chart", 3))["text"]
    assert "no chart called" in (await _command(api, USER, "/chart 1810 volume", 4))["text"]
    assert "I don't know" in (await _command(api, USER, "/chart 99999", 5))["text"]
    assert "No data for a chart" in (await _command(api, USER, "/chart 1 southbound", 6))["text"]
    assert len(_photos(api, USER)) == 2


async def test_chart_button_answers_and_sends_the_photo(app: Application, api: BotApi) -> None:
    await _command(api, USER, "/card 1810", 1)
    api.push_callback(USER, "chart:01810")
    photo = (await api.await_sent(2, chat_id=USER, timeout=20))[1]
    assert isinstance(photo["photo"], Upload) and "<b>01810</b>" in _check_caption(photo)
    await api.until(lambda: len(api.answered) >= 1, timeout=10)


async def test_chinese_chat_gets_a_chinese_caption_and_its_own_picture(app: Application, api: BotApi) -> None:
    english = await _command(api, USER, "/chart 1810", 1)
    await _command(api, USER, "/lang zh", 2)
    chinese = await _command(api, USER, "/chart 1810", 3)
    text = _check_caption(chinese)
    assert "沽空比率" in text and "回購日" in text
    assert isinstance(chinese["photo"], Upload)  # another language, another picture (its labels differ)
    assert chinese["photo"].data != english["photo"].data


async def test_refused_file_id_falls_back_to_one_upload(app: Application, api: BotApi, redis: Redis) -> None:
    key = keys.chart("01810", "short", "en", TODAY)
    await redis.hset(key, "file_id", "AgACAgUAAxk-gone")
    await _command(api, USER, "/chart 1810", 1)
    calls = [c for c in api.calls("sendPhoto") if c.chat_id == USER]
    assert [c.status for c in calls] == [400, 200]
    assert calls[0].params["photo"] == "AgACAgUAAxk-gone" and isinstance(calls[1].params["photo"], Upload)
    assert await _file_id(redis, key) == calls[1].result["photo"][-1]["file_id"].encode()


# ------------------------------------------------------------------------------------------------ alerts


def _alert(severity: str = "warning", rule: str = "short_ratio_spike", code: str = "01810") -> Alert:
    return Alert(
        rule=rule,
        code=code,
        trade_date=TODAY,
        severity=severity,
        name="XIAOMI-W",
        why="short ratio 34.4% is 4.1σ above its 60-session mean",
        facts=(Fact("z", 4.1, "σ"),),
    )


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the worker may swallow it)."""


class _Bot:
    """The application's bot, with a crash scripted before the n-th photo or message reaches Telegram."""

    def __init__(self, bot: Any, crash_photo: bool = False) -> None:
        self.bot, self.crash_photo = bot, crash_photo

    async def send_message(self, *args: Any, **kwargs: Any) -> Any:
        return await self.bot.send_message(*args, **kwargs)

    async def send_photo(self, *args: Any, **kwargs: Any) -> Any:
        if self.crash_photo:
            raise Crash
        return await self.bot.send_photo(*args, **kwargs)


@pytest.fixture
async def quiet_app(api: BotApi, redis: Redis, redis_url: str) -> AsyncIterator[Application]:
    """The bot with its own drain job idle, so each test drives delivery workers itself."""
    await seed_demo(redis)
    async with running_bot(api, redis_url, drain_interval=3600) as application:
        yield application


def _worker(app: Application, redis: Redis, now: datetime, bot: Any = None) -> DeliveryWorker:
    worker = DeliveryWorker(
        bot or app.bot,
        Outbox(redis),
        SubscriptionStore(redis),
        limiter=RateLimiter(chat_interval=0.0),
        now=lambda: now,
    )
    worker.charts = app_deps(app).charts()
    return worker


async def _route(app: Application, redis: Redis, alerts: list[Alert]) -> datetime:
    subs = SubscriptionStore(redis)
    await subs.touch(USER)
    await subs.watch(USER, ["01810"])
    now = app_deps(app).clock()
    report = await route(alerts, subs, Outbox(redis), now)
    assert report.enqueued == 1
    return now


async def test_important_alert_carries_its_chart_once_across_a_restart(
    quiet_app: Application, api: BotApi, redis: Redis
) -> None:
    now = await _route(quiet_app, redis, [_alert()])
    first = _worker(quiet_app, redis, now, _Bot(quiet_app.bot, crash_photo=True))
    with pytest.raises(Crash):
        await first.drain()  # the text went out and was recorded; the process died before the photo
    assert len(api.messages(USER)) == 1 and _photos(api, USER) == []
    later = now + timedelta(seconds=keys.CLAIM_SECONDS + 1)
    report = await _worker(quiet_app, redis, later).drain()
    assert report.sent == 1  # only the photo
    messages = api.messages(USER)
    assert len(messages) == 2 and "photo" in messages[1] and "text" in messages[0]
    photo = messages[1]
    assert isinstance(photo["photo"], Upload) and photo["disable_notification"] is True
    text = _check_caption(photo)
    assert text.startswith("⚠️ <b>01810</b>") and "Short-selling ratio vs close" in text
    assert await Outbox(redis).pending() == 0
    again = await _worker(quiet_app, redis, later + timedelta(minutes=5)).drain()
    assert again.sent == 0 and len(api.messages(USER)) == 2


async def test_photo_recorded_before_a_crash_is_not_sent_again(
    quiet_app: Application, api: BotApi, redis: Redis
) -> None:
    now = await _route(quiet_app, redis, [_alert(severity="critical", rule="short_position_jump")])
    outbox = Outbox(redis)
    first = _worker(quiet_app, redis, now)

    async def die(item_id: str) -> None:
        raise Crash  # every part is recorded as sent; the process dies before removing the item

    first.outbox = outbox
    object.__setattr__(outbox, "done", die)
    with pytest.raises(Crash):
        await first.drain()
    item_ids = [i.decode() for i in await redis.zrange(keys.OUTBOX_DUE, 0, -1)]
    assert len(item_ids) == 1 and await outbox.is_part_sent(item_ids[0], CHART_PART)
    assert len(_photos(api, USER)) == 1 and "🚨" in _photos(api, USER)[0]["caption"]
    later = now + timedelta(seconds=keys.CLAIM_SECONDS + 1)
    report = await _worker(quiet_app, redis, later).drain()
    assert report.sent == 0 and len(api.messages(USER)) == 2
    assert await Outbox(redis).pending() == 0


async def test_a_chart_that_cannot_be_drawn_never_blocks_the_text(
    quiet_app: Application, api: BotApi, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(charts, "render", broken)
    now = await _route(quiet_app, redis, [_alert()])
    report = await _worker(quiet_app, redis, now).drain()
    assert report.sent == 1 and report.dead == 0
    messages = api.messages(USER)
    assert len(messages) == 1 and "text" in messages[0] and "01810" in messages[0]["text"]
    assert await Outbox(redis).pending() == 0


async def test_notices_and_market_alerts_carry_no_chart(
    quiet_app: Application, api: BotApi, redis: Redis
) -> None:
    assert alert_chart(_alert(severity="notice")) is None
    assert alert_chart(_alert(rule="market_short_swing")) is None
    assert alert_chart(_alert(code="AAPL")) is None
    assert alert_chart(_alert(rule="southbound_level")) == "southbound"
    now = await _route(quiet_app, redis, [_alert(severity="notice")])
    report = await _worker(quiet_app, redis, now).drain()
    assert report.sent == 1
    await asyncio.sleep(0.1)
    assert _photos(api, USER) == [] and len(api.messages(USER)) == 1


def test_southbound_chart_marks_the_days_in_a_southbound_top_10() -> None:
    from alerts.sources.common import conform
    from alerts.sources.hkex_stock_connect_daily import SCHEMA

    def top10(day: date, channel: str, net: float) -> dict[str, object]:
        buy, sell = 1e9 + max(net, 0), 1e9 - min(net, 0)
        return {
            "date": pd.Timestamp(day),
            "channel": channel,
            "rank": 1,
            "code": "01810",
            "name": "XIAOMI-W",
            "buy_hkd": buy,
            "sell_hkd": sell,
            "total_hkd": buy + sell,
            "net_hkd": buy - sell,
        }

    rows = [
        top10(date(2025, 11, 26), "SSE Southbound", 3e8),
        top10(date(2025, 11, 26), "SZSE Southbound", -1e8),  # both channels summed: +2e8
        top10(date(2025, 11, 27), "SSE Southbound", -4e8),
        top10(date(2025, 11, 27), "SSE Northbound", 9e9),  # not southbound: left out
    ]
    # Without the demo's own Stock Connect files (its top 10s hold 01810 every day): these rows only.
    frames = {name: frame for name, frame in demo_history().frames.items() if name != "southbound_flow"}
    plain = charts.prepare("southbound", frames, "01810", date(2025, 11, 28))
    frames["southbound_flow"] = conform(pd.DataFrame(rows), SCHEMA)
    marked = charts.prepare("southbound", frames, "01810", date(2025, 11, 28))
    assert plain.flows.empty
    assert [(d.date(), n) for d, n in zip(marked.flows["date"], marked.flows["net"], strict=True)] == [
        (date(2025, 11, 26), 2e8),
        (date(2025, 11, 27), -4e8),
    ]
    assert charts.render(marked, "XIAOMI-W", "en") != charts.render(plain, "XIAOMI-W", "en")
    assert charts.render(marked, "小米集團-W", "zh").startswith(b"\x89PNG")


def test_demo_southbound_chart_marks_01810s_top_10_days() -> None:
    marked = charts.prepare("southbound", dict(demo_history().frames), "01810", date(2025, 11, 28))
    nets = dict(zip((d.date() for d in marked.flows["date"]), marked.flows["net"], strict=True))
    assert nets[date(2025, 11, 25)] == 1_520_000_000 and max(nets.values()) == 1_520_000_000
