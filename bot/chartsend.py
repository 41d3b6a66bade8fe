"""Chart photos to Telegram: captions, the Redis cache, file_id reuse with an upload fallback.

Used by `/chart`, the Chart button (bot/handlers.py) and the delivery worker for important alerts
(bot/delivery.py). A chart is drawn once per stock, kind, language and data day; the first upload's file_id is
kept and later sends pass it instead of the bytes. A file_id Telegram refuses (400) is dropped and the PNG is
uploaded once instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd
from redis.asyncio import Redis
from telegram import Bot, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from alerts.model import Alert
from alerts.rules import kind as alert_kind
from bot import charts
from bot.chartcache import ChartCache, ChartKey
from bot.charts import KINDS, ChartData, NoChartData
from bot.html import MAX_CAPTION, esc
from bot.i18n import day, money, pct, price, shares, t
from bot.view import DataView

log = logging.getLogger(__name__)

IMPORTANT = ("warning", "critical")
_HK_CODE = re.compile(r"^\d{5}$")
_SEVERITY_EMOJI = {"critical": "🚨", "warning": "⚠️"}


def kind_title(lang: str, kind: str) -> str:
    """The chart kind's name in `lang`, escaped for HTML."""
    return esc(t(lang, f"chart.kind.{kind}"))


def fit(lines: list[str], limit: int = MAX_CAPTION) -> str:
    """Join caption lines, dropping lines from the end (never the first) until the caption fits."""
    kept = list(lines)
    while len(kept) > 1 and len("\n".join(kept)) > limit:
        kept.pop(-2 if len(kept) > 2 else -1)  # keep the range / sources footer as long as possible
    text = "\n".join(kept)
    return text if len(text) <= limit else re.sub(r"<[^>]+>", "", text)[: limit - 1] + "…"


def caption(data: ChartData, name: str, lang: str) -> str:
    """HTML caption: code, name, chart kind, the latest figures with their dates, range and sources."""
    lines = [
        t(lang, "chart_caption_title", code=esc(data.code), name=esc(name), chart=kind_title(lang, data.kind))
    ]
    lines += {"short": _short_lines, "position": _position_lines, "southbound": _southbound_lines}[data.kind](
        data, lang
    )
    lines.append(
        t(
            lang,
            "chart_caption_range",
            start=day(lang, data.start),
            end=day(lang, data.end),
            sources=esc(t(lang, f"chart_sources_{data.kind}")),
        )
    )
    return fit(lines)


def _short_lines(data: ChartData, lang: str) -> list[str]:
    rows = data.main.dropna(subset=["short_ratio"])
    lines = []
    if not rows.empty:
        last = rows.iloc[-1]
        close = price(lang, float(last["close"])) if pd.notna(last["close"]) else "–"
        lines.append(
            t(
                lang,
                "chart_caption_short",
                ratio=pct(lang, float(last["short_ratio"]) * 100, 2),
                day=day(lang, last["date"]),
                close=close,
            )
        )
    lines.append(t(lang, "chart_caption_marks", buybacks=len(data.buybacks), buys=len(data.buys)))
    return lines


def _position_lines(data: ChartData, lang: str) -> list[str]:
    last = data.main.iloc[-1]
    lines = [
        t(
            lang,
            "chart_caption_position",
            shares=shares(lang, float(last["short_shares"])),
            value=money(lang, float(last["short_value_hkd"])),
            day=day(lang, last["date"]),
        )
    ]
    extra = []
    if data.issued:
        extra.append(
            t(
                lang,
                "chart_caption_pct_issued",
                pct=pct(lang, float(last["short_shares"]) / data.issued * 100, 2),
            )
        )
    if len(data.main) >= 2 and float(data.main.iloc[-2]["short_shares"]) > 0:
        change = (float(last["short_shares"]) / float(data.main.iloc[-2]["short_shares"]) - 1) * 100
        extra.append(t(lang, "chart_caption_wow", change=pct(lang, change, 1, signed=True)))
    return lines + ([" · ".join(extra)] if extra else [])


def _southbound_lines(data: ChartData, lang: str) -> list[str]:
    rows = data.main
    last = rows.iloc[-1]
    lines = [
        t(
            lang,
            "chart_caption_southbound",
            pct=pct(lang, float(last["pct_of_issued"]), 2),
            day=day(lang, last["date"]),
        )
    ]
    if len(rows) >= 6:
        change = float(last["pct_of_issued"]) - float(rows.iloc[-6]["pct_of_issued"])
        lines.append(t(lang, "chart_caption_change", change=f"{change:+.2f}"))
    return lines


def alert_chart(alert: Alert) -> str | None:
    """The chart kind an alert carries: important (warning/critical) HK single-stock alerts only."""
    if alert.severity not in IMPORTANT or alert.market != "HK" or not _HK_CODE.match(alert.code):
        return None
    # Which chart tells the story is the alert kind's (its rule's spec); market-wide alerts have none.
    found = alert_kind(alert.rule)
    return found.chart if found is not None else None


def alert_caption(alert: Alert, kind: str, name: str, lang: str) -> str:
    """A short headline under an alert's chart."""
    return fit(
        [
            t(
                lang,
                "chart_alert_caption",
                emoji=_SEVERITY_EMOJI.get(alert.severity, "📊"),
                code=esc(alert.code),
                name=esc(name or alert.name),
                chart=kind_title(lang, kind),
                day=day(lang, alert.trade_date),
            )
        ]
    )


def largest_file_id(message: Message) -> str | None:
    """file_id of the largest size Telegram made of the photo."""
    if not message.photo:
        return None
    return max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0)).file_id


class ChartService:
    """Draws, caches and sends chart photos."""

    def __init__(self, redis: Redis, view: Callable[[], Awaitable[DataView]]) -> None:
        self.cache = ChartCache(redis)
        self.view = view

    @staticmethod
    def _prepared(view: DataView, code: str, kind: str, lang: str) -> tuple[ChartData, str, str]:
        """The chart's data, the stock's name and the caption, once per view (DataView.memo).

        So a cached send costs a dict lookup, a Redis read and the file_id send: slicing the history and
        formatting the caption take tens of ms.
        """

        def prepare() -> tuple[ChartData, str, str]:
            data = charts.prepare(kind, view.history.frames, code, view.today)
            name = view.names(lang).get(code, "")
            return data, name, caption(data, name, lang)

        return view.memo(("chart", code, kind, lang), prepare)

    async def send(
        self,
        bot: Bot,
        chat_id: int,
        code: str,
        kind: str,
        lang: str,
        *,
        alert: Alert | None = None,
        **options: Any,
    ) -> Message:
        """Send chart `kind` of `code` to `chat_id`; NoChartData when the data hold nothing for it."""
        if kind not in KINDS:
            raise ValueError(f"unknown chart kind {kind!r}")
        view = await self.view()
        data, name, text = self._prepared(view, code, kind, lang)
        if alert is not None:
            text = alert_caption(alert, kind, name, lang)
        key = ChartKey(code, kind, lang, data.known_on or view.today)
        return await self._send(bot, chat_id, key, data, name, text, options)

    async def cached_photo(self, code: str, kind: str, lang: str) -> tuple[str, str] | None:
        """(file_id, caption) of a chart Telegram already holds for today's data, else None (nothing is drawn)."""
        if not _HK_CODE.match(code):
            return None
        view = await self.view()
        try:
            data, _name, text = self._prepared(view, code, kind, lang)
        except NoChartData:
            return None
        cached = await self.cache.get(ChartKey(code, kind, lang, data.known_on or view.today))
        return (cached.file_id, text) if cached.file_id else None

    async def _send(
        self,
        bot: Bot,
        chat_id: int,
        key: ChartKey,
        data: ChartData,
        name: str,
        text: str,
        options: dict[str, Any],
    ) -> Message:
        cached = await self.cache.get(key)
        if cached.file_id:
            try:
                return await bot.send_photo(
                    chat_id, cached.file_id, caption=text, parse_mode=ParseMode.HTML, **options
                )
            except BadRequest as exc:  # expired or foreign file_id: upload the bytes once instead
                log.info("file_id of chart %s refused (%s); uploading", key.redis_key, exc.message)
                await self.cache.forget_file_id(key)
        png = cached.png
        if png is None:
            # Drawing takes a few hundred ms of CPU: off the event loop, so other chats are served meanwhile.
            png = await asyncio.to_thread(charts.render, data, name, key.lang)
            await self.cache.put_png(key, png)
        message = await bot.send_photo(
            chat_id,
            png,
            caption=text,
            parse_mode=ParseMode.HTML,
            filename=f"{key.code}-{key.kind}.png",
            **options,
        )
        file_id = largest_file_id(message)
        if file_id:
            await self.cache.put_file_id(key, file_id)
        return message

    async def reply(self, bot: Bot, chat_id: int, code: str, kind: str, lang: str) -> str:
        """Send the chart for a command or button: '' when sent, else the text to answer with instead."""
        try:
            await self.send(bot, chat_id, code, kind, lang)
        except NoChartData:
            name = (await self.view()).names(lang).get(code, "")
            return t(lang, "chart_no_data", chart=kind_title(lang, kind), code=esc(code), name=esc(name))
        except TelegramError:
            raise  # Telegram's answer (429, 403…) is the handlers' business, not a drawing failure
        except Exception:  # noqa: BLE001 - a chart that cannot be drawn gets a reply, never silence
            log.exception("chart %s/%s could not be drawn", code, kind)
            return t(lang, "chart_failed")
        return ""
