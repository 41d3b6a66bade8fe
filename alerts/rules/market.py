"""market_short_swing: the whole market's short selling value today vs last week and vs the recent mean.

Reads the market totals table (MARKET_SCHEMA) restricted to one board and session (Main Board, day close, by
default); when a date has several such rows the last one wins (a re-read file). References:
- same weekday last week = the row 7 calendar days earlier if present, else the 5th previous XHKG session;
- the mean of the previous `mean_sessions` XHKG sessions present in the data (at least `mean_min_sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import (
    Note,
    RuleContext,
    RuleResult,
    as64,
    count,
    days64,
    floats,
    money,
    published,
    quiet,
    rounded,
    sessions_back,
    signed_pct,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec


@dataclass(frozen=True)
class MarketParams:
    """market_short_swing thresholds and which market rows to read."""

    source: str
    board: str
    session: str
    change_pct: float
    mean_sessions: int
    mean_min_sessions: int
    warning_change_pct: float


RULE = "market_short_swing"
CODE = "MARKET"
NAME = "Hong Kong market"


@quiet
def evaluate_market_short_swing(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """A ±25% swing of market short selling vs last week or the 5-session mean."""
    p = params.get(RULE, MarketParams)
    if ctx.codes is not None and CODE not in ctx.codes:
        return [], []
    by_day = _by_day(ctx.market, p, ctx.day)
    today = by_day.get(ctx.day)
    if today is None or not np.isfinite(today[0]):
        return [], []
    previous = [s for s in sessions_back(ctx.day, max(p.mean_sessions, 5) + 1) if s < ctx.day]
    week_day = ctx.day - timedelta(days=7)
    if week_day not in by_day and len(previous) >= 5:
        week_day = previous[-5]
    week = by_day.get(week_day)
    window = [by_day[s][0] for s in previous[-p.mean_sessions :] if s in by_day and np.isfinite(by_day[s][0])]
    mean = float(np.mean(window)) if len(window) >= max(p.mean_min_sessions, 1) else np.nan
    notes = []
    if week is None and not np.isfinite(mean):
        notes.append(
            Note(
                RULE,
                CODE,
                f"no market short selling for {week_day} and only {len(window)} of "
                f"{p.mean_sessions} previous sessions",
            )
        )
    week_change = _change(today[0], week[0] if week is not None else np.nan)
    mean_change = _change(today[0], mean)
    fired = [c for c in (week_change, mean_change) if np.isfinite(c) and abs(c) >= p.change_pct]
    if not fired:
        return [], notes
    return [_alert(ctx, p, today, week_day, week, mean, len(window), week_change, mean_change, fired)], notes


def _by_day(market: pd.DataFrame, p: MarketParams, day: date) -> dict[date, tuple[float, float]]:
    """(short_value, stocks_shorted) per recent date of the chosen board and session; a date's last row wins."""
    dates = days64(market["date"])
    # Generous calendar span: 5 sessions back can cross a long holiday (Lunar New Year, Easter).
    recent = (dates >= as64(day - timedelta(days=7 * (p.mean_sessions // 5 + 3)))) & (dates <= as64(day))
    chosen = recent & ((market["board"] == p.board) & (market["session"] == p.session)).fillna(
        False
    ).to_numpy(dtype=bool)
    dates = dates[chosen]
    values = floats(market["short_value"])[chosen]
    stocks = floats(market["stocks_shorted"])[chosen]
    out: dict[date, tuple[float, float]] = {}
    for when, value, shorted in zip(dates, values, stocks, strict=True):
        if not np.isnat(when):
            out[pd.Timestamp(when).date()] = (float(value), float(shorted))
    return out


def _change(now: float, before: float) -> float:
    """Percent change from `before` to `now`; NaN when `before` is missing or not positive."""
    return (now / before - 1) * 100 if np.isfinite(before) and before > 0 else np.nan


def _alert(
    ctx: RuleContext,
    p: MarketParams,
    today: tuple[float, float],
    week_day: date,
    week: tuple[float, float] | None,
    mean: float,
    sessions: int,
    week_change: float,
    mean_change: float,
    fired: list[float],
) -> Alert:
    """Build the market alert; the why gives every comparison that could be made."""
    value, shorted = today
    parts = [f"market short selling {money(value)} on {ctx.day}"]
    if week is not None and np.isfinite(week_change):
        parts.append(f"{signed_pct(week_change)} vs {money(week[0])} on {week_day} ({week_day:%a})")
    if np.isfinite(mean_change):
        parts.append(f"{signed_pct(mean_change)} vs the {sessions}-session mean {money(mean)}")
    why = ", ".join(parts)
    if week is not None and np.isfinite(shorted) and np.isfinite(week[1]):
        why += f"; {count(shorted)} stocks shorted vs {count(week[1])}"
    elif np.isfinite(shorted):
        why += f"; {count(shorted)} stocks shorted"
    return Alert(
        rule=RULE,
        code=CODE,
        name=NAME,
        trade_date=ctx.day,
        severity="warning" if max(abs(c) for c in fired) >= p.warning_change_pct else "notice",
        why=why,
        facts=(
            Fact("short_value", rounded(value, 0), "HKD"),
            Fact("reference_value", rounded(week[0], 0) if week is not None else "n/a", "HKD"),
            Fact("reference_date", week_day.isoformat() if week is not None else "n/a", "date"),
            Fact("change", rounded(week_change, 1), "%"),
            Fact("mean_value", rounded(mean, 0), "HKD"),
            Fact("mean_change", rounded(mean_change, 1), "%"),
            Fact("stocks_shorted", int(shorted) if np.isfinite(shorted) else "n/a", "stocks"),
            Fact(
                "reference_stocks_shorted",
                int(week[1]) if week is not None and np.isfinite(week[1]) else "n/a",
                "stocks",
            ),
        ),
        links=ctx.link(p.source, ctx.day),
        published_at=published(p.source, ctx.day),
    )


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🌊", ("short_value", "change", "stocks_shorted")),),
    markets=("HK",),
    params={RULE: MarketParams},
    signal=evaluate_market_short_swing,
    feeds=("market",),
)
