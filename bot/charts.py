"""Charts of a stock's positioning, rendered to PNG bytes in memory (matplotlib Agg, object API, no pyplot).

Three kinds, over the last 120 sessions the data allow: ``short`` (daily short-selling ratio against the close, with
buyback days and director / substantial-shareholder buys marked), ``position`` (SFC reported short position) and
``southbound`` (Stock Connect holding as % of issued shares). `prepare` slices the history frames for one stock
(pure pandas), `render` draws them. Labels follow the chat's language when a CJK font is installed; without one
Chinese charts fall back to English labels (logged once), so matplotlib never meets a glyph it cannot draw.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before any other matplotlib import: never a GUI backend in a server

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.ft2font import FT2Font  # noqa: E402

from alerts.calendar import previous_sessions  # noqa: E402
from alerts.sources.hkex_stock_connect_daily import SOUTHBOUND as SOUTHBOUND_CHANNELS  # noqa: E402
from bot.i18n import t  # noqa: E402

log = logging.getLogger(__name__)

KINDS = ("short", "position", "southbound")
SESSIONS = 120
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 16 / 3, 150  # 1200 × 800 px: sharp on a phone, ~100 kB
BASE_FAMILY = "DejaVu Sans"  # ships with matplotlib: Latin, digits and punctuation always render
# Traditional-Chinese-capable families, best first; the smallest Debian package is fonts-wqy-microhei.
CJK_FAMILIES = (
    "Noto Sans CJK TC",
    "Noto Sans CJK HK",
    "Noto Sans TC",
    "WenQuanYi Micro Hei",
    "AR PL UMing TW",
    "AR PL UMing HK",
    "Noto Sans CJK SC",
    "WenQuanYi Zen Hei",
    "AR PL UMing CN",
)
_CJK_FILE_HINTS = ("wqy-microhei", "wqy-zenhei", "notosanscjk", "notoserifcjk", "uming")
_CJK_PROBE = "沽空淡倉回購港元"
SOUTHBOUND_LEVELS = (5, 10, 15, 20, 25, 30)  # the levels the southbound rule watches
# Serialise drawing: matplotlib's font and text caches are not documented as thread-safe, and renders run in a
# worker thread so the event loop keeps serving other chats.
_RENDER_LOCK = threading.Lock()

COLORS = {
    "bars": "#9db7d5",
    "close": "#1d2b3a",
    "buyback": "#1f8a4c",
    "sell": "#c0392b",
    "insider": "#e07b00",
    "line": "#6b3fa0",
    "fill": "#e9e1f3",
    "level": "#b0b0b0",
    "text": "#333333",
    "muted": "#666666",
}


class NoChartData(LookupError):
    """The stock has no rows for this chart kind in the data held."""


@dataclass(frozen=True)
class ChartData:
    """What one chart shows: the stock's rows of the feeds the kind reads, cut to the window."""

    kind: str
    code: str
    main: pd.DataFrame  # sorted by date: quotes (short), SFC rows (position) or southbound rows (southbound)
    buybacks: pd.DataFrame = field(
        default_factory=pd.DataFrame
    )  # trade_date, shares, total_paid (one row a day)
    buys: pd.DataFrame = field(default_factory=pd.DataFrame)  # event_date, holder, shares, avg_price
    issued: float | None = None  # issued shares (position), derived from the southbound holding
    # Southbound: the days the stock was in a southbound top 10 (date, net = buy − sell in HK$, both channels).
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    known_on: date | None = None  # the latest date any of its rows became known: a new day means a new chart

    @property
    def start(self) -> date:
        """First date shown."""
        return pd.Timestamp(self.main["date"].iloc[0]).date()

    @property
    def end(self) -> date:
        """Last date shown."""
        return pd.Timestamp(self.main["date"].iloc[-1]).date()

    @property
    def sessions(self) -> int:
        """Rows on the main series (sessions for daily feeds, weeks for SFC)."""
        return len(self.main)


# ------------------------------------------------------------------------------------------------ data


def prepare(kind: str, frames: Mapping[str, pd.DataFrame], code: str, today: date) -> ChartData:
    """Slice the history frames to what chart `kind` of `code` shows; NoChartData when there is nothing."""
    if kind not in KINDS:
        raise ValueError(f"unknown chart kind {kind!r}")
    since = pd.Timestamp(previous_sessions(today, SESSIONS)[0])
    until = pd.Timestamp(today)
    if kind == "short":
        return _prepare_short(frames, code, since, until)
    if kind == "position":
        return _prepare_position(frames, code, since, until)
    return _prepare_southbound(frames, code, since, until)


def _rows(
    frame: pd.DataFrame, code: str, column: str, since: pd.Timestamp, until: pd.Timestamp
) -> pd.DataFrame:
    if frame.empty:
        return frame
    rows = frame[(frame["code"] == code) & (frame[column] >= since) & (frame[column] <= until)]
    return rows.sort_values(column, kind="stable").reset_index(drop=True)


def _last_day(*values: object) -> date | None:
    days = [pd.Timestamp(v).date() for v in values if v is not None and not pd.isna(v)]
    return max(days) if days else None


def _prepare_short(
    frames: Mapping[str, pd.DataFrame], code: str, since: pd.Timestamp, until: pd.Timestamp
) -> ChartData:
    quotes = _rows(frames["quotes"], code, "date", since, until)
    quotes = quotes[quotes["close"].notna() | quotes["short_ratio"].notna()]
    quotes = quotes.drop_duplicates("date", keep="last").reset_index(drop=True)
    if quotes.empty:
        raise NoChartData(f"no quotes for {code}")
    first = quotes["date"].iloc[0]
    buybacks = _rows(frames["buybacks"], code, "trade_date", first, until)
    daily = (
        buybacks.groupby("trade_date", as_index=False)[["shares", "total_paid"]].sum()
        if not buybacks.empty
        else pd.DataFrame(columns=["trade_date", "shares", "total_paid"])
    )
    di = _rows(frames["di"], code, "event_date", first, until)
    if not di.empty:
        buy = (di["direction"] == "buy").fillna(False) & (di["position"] == "L").fillna(
            False
        )  # as the insider rule
        di = di[buy.to_numpy(dtype=bool)]
    known = _last_day(
        quotes["date"].max(),
        buybacks["report_date"].max() if not buybacks.empty else None,
        di["filed_date"].max() if not di.empty else None,
    )
    return ChartData("short", code, quotes, daily, di.reset_index(drop=True), known_on=known)


def issued_shares(frames: Mapping[str, pd.DataFrame], code: str) -> float | None:
    """Issued shares implied by the latest southbound holding (shares ÷ % of issued), when it is known."""
    southbound = frames["southbound"]
    rows = southbound[
        (southbound["code"] == code) & (southbound["pct_of_issued"] > 0) & southbound["shares"].notna()
    ]
    if rows.empty:
        return None
    last = rows.sort_values("date", kind="stable").iloc[-1]
    return float(last["shares"]) / (float(last["pct_of_issued"]) / 100)


def _prepare_position(
    frames: Mapping[str, pd.DataFrame], code: str, since: pd.Timestamp, until: pd.Timestamp
) -> ChartData:
    sfc = _rows(frames["sfc"], code, "date", since, until).dropna(subset=["short_shares"])
    if sfc.empty:
        raise NoChartData(f"no SFC positions for {code}")
    sfc = sfc.drop_duplicates("date", keep="last").reset_index(drop=True)
    issued = issued_shares(frames, code)
    return ChartData("position", code, sfc, issued=issued, known_on=_last_day(sfc["date"].max()))


def _prepare_southbound(
    frames: Mapping[str, pd.DataFrame], code: str, since: pd.Timestamp, until: pd.Timestamp
) -> ChartData:
    rows = _rows(frames["southbound"], code, "date", since, until).dropna(subset=["pct_of_issued"])
    if rows.empty:
        raise NoChartData(f"no southbound holding for {code}")
    rows = rows.drop_duplicates("date", keep="last").reset_index(drop=True)
    flows = _top10_days(frames.get("southbound_flow"), code, rows["date"].iloc[0], until)
    known = _last_day(rows["date"].max(), flows["date"].max() if not flows.empty else None)
    return ChartData("southbound", code, rows, flows=flows, known_on=known)


def _top10_days(
    frame: pd.DataFrame | None, code: str, since: pd.Timestamp, until: pd.Timestamp
) -> pd.DataFrame:
    """Net southbound buying (HK$) on each day `code` was in a southbound top 10 (hkex-stock-connect-daily)."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=["date", "net"])
    rows = _rows(frame, code, "date", since, until)
    rows = rows[rows["channel"].isin(SOUTHBOUND_CHANNELS).fillna(False) & rows["net_hkd"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["date", "net"])
    return rows.groupby("date", as_index=False).agg(net=("net_hkd", "sum"))


# ------------------------------------------------------------------------------------------------ fonts


@cache
def cjk_family() -> str | None:
    """A font family that draws Traditional Chinese, or None (logged once) when none is installed."""
    family = _find_cjk()
    if family is None:
        # matplotlib's font list is cached on disk: a font installed after that cache was built is not in it.
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name.lower() for hint in _CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError) as exc:
                    log.info("font %s not usable: %s", path, exc)
        family = _find_cjk()
    if family is None:
        log.warning("no CJK font found: Chinese charts use English labels (install fonts-wqy-microhei)")
    else:
        log.info("charts draw Chinese with %s", family)
    return family


def _find_cjk() -> str | None:
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in names and set(_CJK_PROBE) <= _charmap(family):
            return family
    return None


@cache
def _charmap(family: str) -> frozenset[str]:
    """Characters the font of `family` has glyphs for."""
    path = font_manager.findfont(FontProperties(family=family), fallback_to_default=False)
    return frozenset(chr(code) for code in FT2Font(path).get_charmap())


@cache
def _glyphs(cjk: str | None) -> frozenset[str]:
    return _charmap(BASE_FAMILY) | (_charmap(cjk) if cjk else frozenset())


def drawable(text: str, cjk: str | None) -> str:
    """`text` without characters no chosen font can draw (so matplotlib never warns of a missing glyph)."""
    glyphs = _glyphs(cjk)
    kept = "".join(char for char in text if char in glyphs or char in " \n")
    return re.sub(r" {2,}", " ", kept).strip() if kept != text else text


def label_lang(lang: str) -> str:
    """The language chart labels are drawn in: Chinese only when a CJK font is installed."""
    return "zh" if lang == "zh" and cjk_family() is not None else "en"


# ------------------------------------------------------------------------------------------------ drawing


@dataclass(frozen=True)
class _Style:
    lang: str
    cjk: str | None

    @property
    def families(self) -> list[str]:
        # DejaVu first (digits, Latin), the CJK font as matplotlib's per-glyph fallback.
        return [BASE_FAMILY, self.cjk] if self.cjk else [BASE_FAMILY]

    def font(self, size: float, weight: str = "normal") -> FontProperties:
        # The CJK fonts we look for have no bold face: asking for one makes matplotlib log a warning per text.
        return FontProperties(family=self.families, size=size, weight="normal" if self.cjk else weight)

    def text(self, key: str, **values: object) -> str:
        """A catalogue label made safe for matplotlib: drawable and with '$' not starting math mode."""
        return self.safe(t(self.lang, key, **values))

    def safe(self, text: str) -> str:
        return drawable(text, self.cjk).replace("$", r"\$")


def render(data: ChartData, name: str, lang: str) -> bytes:
    """Draw `data` as a PNG (1200 × 800 px) with labels in `lang` (English without a CJK font)."""
    shown = label_lang(lang)
    style = _Style(shown, cjk_family() if shown == "zh" else None)
    with _RENDER_LOCK:
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
        ax = fig.add_axes((0.085, 0.16, 0.82, 0.63))
        draw = {"short": _draw_short, "position": _draw_position, "southbound": _draw_southbound}[data.kind]
        draw(ax, data, style)
        _frame(fig, ax, data, name, style)
        buffer = io.BytesIO()
        # zlib level 3: about half the encoding time of the default 6 for a few per cent more bytes.
        fig.savefig(
            buffer, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 3}
        )
    return buffer.getvalue()


def _frame(fig: Figure, ax: Axes, data: ChartData, name: str, style: _Style) -> None:
    """Title (code, name), kind and date range, the sources footer, tick fonts."""
    title = f"{data.code} {style.safe(name)}".strip()
    fig.text(0.085, 0.935, title, fontproperties=style.font(14, "bold"), color=COLORS["text"])
    count = style.text(
        "chart.count.weeks" if data.kind == "position" else "chart.count.sessions", n=data.sessions
    )
    subtitle = style.text(
        "chart.range",
        chart=t(style.lang, f"chart.kind.{data.kind}"),
        start=f"{data.start:%d/%m/%Y}",
        end=f"{data.end:%d/%m/%Y}",
        count=count,
    )
    fig.text(0.085, 0.885, subtitle, fontproperties=style.font(9.5), color=COLORS["muted"])
    fig.text(
        0.085,
        0.025,
        style.text(f"chart.source.{data.kind}"),
        fontproperties=style.font(7.5),
        color=COLORS["muted"],
        verticalalignment="bottom",
        linespacing=1.5,
    )
    for axes in fig.axes:
        # tick_params styles ticks as they are made; touching get_ticklabels() would build every tick twice.
        axes.tick_params(labelsize=8.5, labelfontfamily=style.families)
        axes.spines["top"].set_visible(False)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def _dates_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=8))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d/%m"))


def _legend(ax: Axes, handles: list[Any], style: _Style) -> None:
    """Legend above the plot, so it never hides a line or a marker."""
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        prop=style.font(8.5),
        frameon=False,
        ncol=2,
        borderaxespad=0.0,
        handletextpad=0.5,
        columnspacing=1.5,
    )


def _draw_short(ax: Axes, data: ChartData, style: _Style) -> None:
    """Bars of the daily short ratio, the close on a second axis, buyback days and insider buys on the close."""
    quotes = data.main
    # Sessions side by side (no weekend gaps): x is the session index, ticks are labelled with dates.
    days = pd.DatetimeIndex(quotes["date"])
    x = np.arange(len(days))
    ratio = quotes["short_ratio"].to_numpy(dtype=float) * 100
    close = quotes["close"].to_numpy(dtype=float)
    # One PolyCollection instead of ax.bar's artist per session: a third of the drawing time.
    heights = np.nan_to_num(ratio)
    left, right_edge = x - 0.375, x + 0.375
    verts = np.stack(
        [
            np.column_stack([left, np.zeros_like(heights)]),
            np.column_stack([left, heights]),
            np.column_stack([right_edge, heights]),
            np.column_stack([right_edge, np.zeros_like(heights)]),
        ],
        axis=1,
    )
    bars = PolyCollection(
        verts,  # type: ignore[arg-type]  # documented as a list of (M, 2) arrays or one (N, M, 2) array; stub: list only
        facecolors=COLORS["bars"],
        edgecolors="none",
        label=style.text("chart.label.ratio"),
    )
    ax.add_collection(bars)
    ax.set_ylabel(style.text("chart.label.ratio"), fontproperties=style.font(9))
    top = float(np.nanmax(ratio)) if np.isfinite(ratio).any() else 1.0
    ax.set_ylim(0, max(top, 1.0) * 1.15)
    ax.set_xlim(-0.8, len(x) - 0.2)
    right = ax.twinx()
    (line,) = right.plot(
        x, close, color=COLORS["close"], linewidth=1.6, label=style.text("chart.label.close")
    )
    right.set_ylabel(style.text("chart.label.close"), fontproperties=style.font(9))
    handles: list[Any] = [bars, line]
    if not data.buybacks.empty:
        at = _positions(days, pd.DatetimeIndex(data.buybacks["trade_date"]))
        handles.append(
            right.scatter(
                at,
                _value_at(close, at),
                marker="^",
                s=70,
                color=COLORS["buyback"],
                zorder=5,
                label=style.text("chart.label.buyback"),
            )
        )
    if not data.buys.empty:
        at = _positions(days, pd.DatetimeIndex(data.buys["event_date"]))
        prices = data.buys["avg_price"].to_numpy(dtype=float)
        prices = np.where(np.isfinite(prices) & (prices > 0), prices, _value_at(close, at))
        handles.append(
            right.scatter(
                at,
                prices,
                marker="*",
                s=170,
                color=COLORS["insider"],
                edgecolors="white",
                linewidths=0.6,
                zorder=6,
                label=style.text("chart.label.insider"),
            )
        )
    ticks = np.unique(np.linspace(0, len(x) - 1, num=min(len(x), 7)).round().astype(int))
    ax.set_xticks(ticks, [f"{days[i]:%d/%m}" for i in ticks])
    _legend(ax, handles, style)


def _positions(days: pd.DatetimeIndex, events: pd.DatetimeIndex) -> np.ndarray:
    """Session index of each event day (a day without a quote goes to the session before it)."""
    return np.clip(days.searchsorted(events, side="right") - 1, 0, len(days) - 1)


def _value_at(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """values[at], or the last finite value before it (a suspended day has no close)."""
    filled = pd.Series(values).ffill().bfill().to_numpy(dtype=float)
    return filled[at]


def _draw_position(ax: Axes, data: ChartData, style: _Style) -> None:
    """The weekly reported short position in million shares, with % of issued shares on the right when known."""
    sfc = data.main
    dates = sfc["date"].to_numpy(dtype="datetime64[ns]")
    millions = sfc["short_shares"].to_numpy(dtype=float) / 1e6
    (line,) = ax.plot(
        dates,
        millions,
        color=COLORS["line"],
        linewidth=1.8,
        marker="o",
        markersize=4,
        label=style.text("chart.label.position"),
    )
    ax.fill_between(dates, millions, color=COLORS["fill"], zorder=0)
    ax.set_ylabel(style.text("chart.label.position"), fontproperties=style.font(9))
    top = float(np.nanmax(millions)) if np.isfinite(millions).any() else 1.0
    ax.set_ylim(0, max(top, 1e-6) * 1.2)
    ax.annotate(
        style.text("chart.value.million", value=f"{millions[-1]:,.1f}"),
        (dates[-1], millions[-1]),
        textcoords="offset points",
        xytext=(-4, 8),
        ha="right",
        fontproperties=style.font(8.5, "bold"),
        color=COLORS["line"],
    )
    if data.issued:
        scale = 1e6 / data.issued * 100  # million shares → % of issued shares
        secondary = ax.secondary_yaxis(
            "right", functions=(lambda m: np.asarray(m) * scale, lambda p: np.asarray(p) / scale)
        )
        secondary.set_ylabel(style.text("chart.label.pct_issued"), fontproperties=style.font(9))
        secondary.tick_params(labelsize=8.5, labelfontfamily=style.families)
    _dates_axis(ax)
    _legend(ax, [line], style)


def _draw_southbound(ax: Axes, data: ChartData, style: _Style) -> None:
    """Southbound holding as % of issued shares, with the levels the southbound rule watches."""
    rows = data.main
    dates = rows["date"].to_numpy(dtype="datetime64[ns]")
    pct = rows["pct_of_issued"].to_numpy(dtype=float)
    (line,) = ax.plot(
        dates, pct, color=COLORS["line"], linewidth=1.8, label=style.text("chart.label.southbound")
    )
    low, high = float(np.nanmin(pct)), float(np.nanmax(pct))
    pad = max((high - low) * 0.2, 0.5)
    bottom, top = max(low - pad, 0.0), high + pad
    ax.fill_between(dates, pct, bottom, color=COLORS["fill"], zorder=0)
    ax.set_ylim(bottom, top)
    for level in SOUTHBOUND_LEVELS:
        if bottom < level < top:
            ax.axhline(level, color=COLORS["level"], linestyle="--", linewidth=1.0, zorder=1)
            ax.annotate(
                f"{level}%",
                (dates[0], level),
                textcoords="offset points",
                xytext=(2, 3),
                fontproperties=style.font(8),
                color=COLORS["muted"],
            )
    ax.annotate(
        f"{pct[-1]:.2f}%",
        (dates[-1], pct[-1]),
        textcoords="offset points",
        xytext=(-4, 8),
        ha="right",
        fontproperties=style.font(8.5, "bold"),
        color=COLORS["line"],
    )
    ax.set_ylabel(style.text("chart.label.southbound"), fontproperties=style.font(9))
    handles: list[Any] = [line]
    if not data.flows.empty:
        # Days in a southbound top 10 marked on the holding line: up for net buying, down for net selling.
        held = pd.Series(pct, index=pd.DatetimeIndex(dates))
        at = pd.DatetimeIndex(data.flows["date"])
        level = held.reindex(held.index.union(at)).ffill().bfill().reindex(at).to_numpy(dtype=float)
        net = data.flows["net"].to_numpy(dtype=float)
        for mask, marker, color, key in (
            (net > 0, "^", COLORS["buyback"], "chart.label.flow_buy"),
            (net < 0, "v", COLORS["sell"], "chart.label.flow_sell"),
        ):
            if mask.any():
                handles.append(
                    ax.scatter(
                        at[mask],
                        level[mask],
                        marker=marker,
                        s=60,
                        color=color,
                        zorder=5,
                        label=style.text(key),
                    )
                )
    _dates_axis(ax)
    _legend(ax, handles, style)
