"""short_position_jump: the SFC weekly short position of a stock vs the previous SFC file (sfc-short-positions).

Fires only when `day` is itself an SFC position date in the history (the replay feeds each file on its own date);
the alert's trade_date is that position date. A stock missing from the current file is a list change, not an
event. RMB/USD counters (non_hkd) are skipped: SFC lists them with zero positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import (
    Note,
    RuleContext,
    RuleResult,
    allowed,
    as64,
    count,
    days64,
    floats,
    keys,
    money,
    published,
    quiet,
    rounded,
    signed_pct,
    strings,
    to_date,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec, pressure_unless_falling


@dataclass(frozen=True)
class ShortPositionParams:
    """short_position_jump thresholds."""

    min_change_pct: float
    min_change_value_hkd: float
    high_weeks: int
    high_min_history: int
    high_min_value_hkd: float
    high_min_change_pct: float
    warning_change_pct: float


RULE = "short_position_jump"
SOURCE = "sfc-short-positions"


@quiet
def evaluate_short_position_jump(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Big weekly change, 12-week high, or full cover of an SFC reportable short position."""
    p = params.get(RULE, ShortPositionParams)
    sfc = ctx.sfc
    dates = days64(sfc["date"])
    day = as64(ctx.day)
    current = dates == day
    if not current.any():
        return [], []
    earlier = np.unique(dates[(dates < day) & ~np.isnat(dates)])[-max(p.high_weeks - 1, 1) :]
    if earlier.size == 0:
        return [], [Note(RULE, "", f"no SFC file before {ctx.day} to compare with")]
    rows = sfc.loc[current]
    codes = strings(rows["code"])
    keep = allowed(ctx, codes) & ~rows["non_hkd"].to_numpy(dtype=bool)
    keep &= ~pd.Series(codes).duplicated(keep="last").to_numpy()
    codes, names = codes[keep], strings(rows["name"])[keep]
    shares, value = floats(rows["short_shares"])[keep], floats(rows["short_value_hkd"])[keep]
    past_shares, past_value = _history(sfc, dates, earlier, codes)

    prev_shares, prev_value = past_shares[-1], past_value[-1]
    has_prev = np.isfinite(prev_shares) & np.isfinite(shares)
    with np.errstate(invalid="ignore", divide="ignore"):
        change_pct = np.where(prev_shares > 0, (shares - prev_shares) / prev_shares * 100, np.nan)
    change_value = value - prev_value
    opened = has_prev & (prev_shares == 0) & (shares > 0)
    jump = (
        has_prev
        & (np.abs(change_value) >= p.min_change_value_hkd)
        & ((np.abs(change_pct) >= p.min_change_pct) | opened)
    )
    weeks_known = np.isfinite(past_shares).sum(axis=0)
    past_max = np.where(np.isfinite(past_shares), past_shares, -np.inf).max(axis=0)
    high = (
        (weeks_known >= p.high_min_history)
        & (shares > 0)
        & (shares > past_max)
        & (value >= p.high_min_value_hkd)
        & (change_pct >= p.high_min_change_pct)
    )
    covered = has_prev & (prev_shares > 0) & (shares == 0)

    previous_date = to_date(earlier[-1])
    alerts = []
    for i in np.flatnonzero(jump | high | covered):
        facts = _Facts(shares[i], value[i], prev_shares[i], prev_value[i], change_pct[i], int(weeks_known[i]))
        alerts.append(
            _alert(
                ctx,
                p,
                str(codes[i]),
                str(names[i] or ""),
                facts,
                previous_date,
                bool(jump[i]),
                bool(high[i]),
                bool(covered[i]),
            )
        )
    return alerts, []


def _history(
    sfc: pd.DataFrame, dates: np.ndarray, earlier: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(weeks × codes) matrices of shares and HK$ value on the earlier SFC dates; NaN where a stock is absent."""
    shares = np.full((len(earlier), len(codes)), np.nan)
    value = shares.copy()
    span = np.flatnonzero((dates >= earlier[0]) & (dates <= earlier[-1]))
    row = np.searchsorted(earlier, dates[span])
    column = pd.Index(codes, dtype=object).get_indexer(keys(sfc["code"])[span])
    hit = (column >= 0) & (row < len(earlier))
    hit[hit] = earlier[row[hit]] == dates[span][hit]
    shares[row[hit], column[hit]] = floats(sfc["short_shares"].iloc[span])[hit]
    value[row[hit], column[hit]] = floats(sfc["short_value_hkd"].iloc[span])[hit]
    return shares, value


class _Facts(NamedTuple):
    """The numbers of one stock."""

    shares: float
    value: float
    prev_shares: float
    prev_value: float
    change_pct: float
    weeks: int


def _alert(
    ctx: RuleContext,
    p: ShortPositionParams,
    code: str,
    name: str,
    f: _Facts,
    previous_date: date,
    jump: bool,
    high: bool,
    covered: bool,
) -> Alert:
    """Build one alert; the why names every reason that fired."""
    has_prev = np.isfinite(f.prev_shares)
    delta_shares = f.shares - f.prev_shares if has_prev else np.nan
    delta_value = f.value - f.prev_value if has_prev else np.nan
    if covered:
        why = (
            f"short position fully covered: 0 shares, from {count(f.prev_shares)} shares "
            f"({money(f.prev_value)}) on {previous_date}"
        )
    else:
        why = f"short position {count(f.shares)} shares ({money(f.value)})"
        if has_prev:
            change = "new position" if f.prev_shares == 0 else signed_pct(f.change_pct)
            why += (
                f", {change} vs {count(f.prev_shares)} on {previous_date} "
                f"({delta_shares:+,.0f} shares, {'+' if delta_value >= 0 else ''}{money(delta_value)})"
            )
        if high:
            why += f"; highest of the last {p.high_weeks} weeks"
    reasons = [reason for reason, on in (("jump", jump), ("high", high), ("covered", covered)) if on]
    big = jump and (f.prev_shares == 0 or abs(f.change_pct) >= p.warning_change_pct)
    return Alert(
        rule=RULE,
        code=code,
        name=name,
        trade_date=ctx.day,
        severity="warning" if big else "notice",
        why=why,
        facts=(
            Fact("shares", int(f.shares), "shares"),
            Fact("value", rounded(f.value, 0), "HKD"),
            Fact("previous_shares", int(f.prev_shares) if has_prev else "n/a", "shares"),
            Fact("delta_shares", int(delta_shares) if has_prev else "n/a", "shares"),
            Fact("delta_pct", rounded(f.change_pct) if np.isfinite(f.change_pct) else "n/a", "%"),
            Fact("delta_value", rounded(delta_value, 0) if has_prev else "n/a", "HKD"),
            Fact("previous_date", str(previous_date), "date"),
            Fact("weeks_of_history", f.weeks, "weeks"),
            Fact("reasons", "+".join(reasons), ""),
        ),
        links=ctx.link(SOURCE, ctx.day),
        published_at=published(SOURCE, ctx.day),
    )


SPEC = RuleSpec(
    name=RULE,
    kinds=(
        AlertKind(
            RULE,
            "📊",
            ("shares", "delta_pct", "value"),
            pressure_unless_falling("delta_shares"),
            chart="position",
        ),
    ),
    markets=("HK",),
    params={RULE: ShortPositionParams},
    signal=evaluate_short_position_jump,
    feeds=("sfc",),
)
