"""southbound_level: Stock Connect southbound holding (% of issued shares) crossing a level or moving fast.

Compares today's pct_of_issued with the stock's latest holding on one of the previous `previous_within` dates
of the southbound history (not the calendar: the page has its own dates). Crossing levels fires once per stock, identity "up:<level>" (the highest level
crossed upward) or "down:<level>" (the lowest level crossed downward — the level now broken). A move of at
least `change_pp` points vs `change_sessions` southbound dates ago fires identity "change<N>". A stock absent
from those earlier dates (newly eligible) or from today's file is not an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import (
    RuleContext,
    RuleResult,
    allowed,
    as64,
    count,
    days64,
    floats,
    keys,
    published,
    quiet,
    rounded,
    strings,
    to_date,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec


@dataclass(frozen=True)
class SouthboundParams:
    """southbound_level thresholds."""

    levels: tuple[float, ...]
    previous_within: int
    change_sessions: int
    change_pp: float
    warning_change_pp: float


RULE = "southbound_level"
SOURCE = "hkex-southbound"


@quiet
def evaluate_southbound_level(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Level crossings and fast moves of southbound holdings today."""
    p = params.get(RULE, SouthboundParams)
    frame = ctx.southbound
    dates = days64(frame["date"])
    day = as64(ctx.day)
    today = dates == day
    if not today.any():
        return [], []
    earlier = np.unique(dates[(dates < day) & ~np.isnat(dates)])
    if earlier.size == 0:
        return [], []
    rows = frame.loc[today]
    codes = strings(rows["code"])
    pct = floats(rows["pct_of_issued"])
    keep = allowed(ctx, codes) & np.isfinite(pct) & ~pd.Series(codes).duplicated(keep="last").to_numpy()
    codes, pct = codes[keep], pct[keep]
    names, shares = strings(rows["name"])[keep], floats(rows["shares"])[keep]
    previous, previous_day = _latest_before(frame, dates, earlier[-max(p.previous_within, 1) :], codes)

    alerts = []
    levels = np.asarray(p.levels, dtype="float64")
    up = (previous[:, None] < levels) & (pct[:, None] >= levels)
    down = (previous[:, None] >= levels) & (pct[:, None] < levels)
    for i in np.flatnonzero(up.any(axis=1) | down.any(axis=1)):
        rising = bool(up[i].any())
        level = float(levels[up[i]].max()) if rising else float(levels[down[i]].min())
        identity = f"{'up' if rising else 'down'}:{level:g}"
        what = f"rose above {level:g}%" if rising else f"fell below {level:g}%"
        alerts.append(
            _alert(
                ctx,
                p,
                _row(codes, names, pct, shares, int(i)),
                identity,
                f"southbound holding {what} of issued shares",
                previous[i],
                to_date(previous_day[i]),
            )
        )
    if p.change_sessions > 0 and earlier.size >= p.change_sessions:
        reference_day = earlier[-p.change_sessions]
        reference = _pct_on(frame, dates, reference_day, codes)
        moved = np.abs(pct - reference) >= p.change_pp  # NaN reference → False
        for i in np.flatnonzero(moved):
            what = f"southbound holding {pct[i] - reference[i]:+.2f}pp in {p.change_sessions} sessions"
            alerts.append(
                _alert(
                    ctx,
                    p,
                    _row(codes, names, pct, shares, int(i)),
                    f"change{p.change_sessions}",
                    what,
                    reference[i],
                    to_date(reference_day),
                )
            )
    return alerts, []


def _latest_before(
    frame: pd.DataFrame, dates: np.ndarray, span: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each code's latest finite pct_of_issued on the dates of `span`, and that date (NaN / NaT where none)."""
    pct = np.full(len(codes), np.nan)
    when = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[ns]")
    inside = np.flatnonzero((dates >= span[0]) & (dates <= span[-1]))
    column = pd.Index(codes, dtype=object).get_indexer(keys(frame["code"])[inside])
    values = floats(frame["pct_of_issued"])[inside]
    hit = (column >= 0) & np.isfinite(values)
    order = np.argsort(dates[inside][hit], kind="stable")  # later rows overwrite earlier ones
    pct[column[hit][order]] = values[hit][order]
    when[column[hit][order]] = dates[inside][hit][order]
    return pct, when


def _pct_on(frame: pd.DataFrame, dates: np.ndarray, when: np.datetime64, codes: np.ndarray) -> np.ndarray:
    """pct_of_issued of `codes` on date `when` (NaN where absent)."""
    rows = frame.loc[dates == when]
    index = pd.Index(strings(rows["code"]), dtype=object)
    last = ~index.duplicated(keep="last")
    found = index[last].get_indexer(codes)
    out = np.full(len(codes), np.nan)
    out[found >= 0] = floats(rows["pct_of_issued"])[last][found[found >= 0]]
    return out


class _Row(NamedTuple):
    """Today's figures of one stock."""

    code: str
    name: str
    pct: float
    shares: float


def _row(codes: np.ndarray, names: np.ndarray, pct: np.ndarray, shares: np.ndarray, i: int) -> _Row:
    return _Row(str(codes[i]), str(names[i] or ""), float(pct[i]), float(shares[i]))


def _alert(
    ctx: RuleContext,
    p: SouthboundParams,
    row: _Row,
    identity: str,
    what: str,
    before: float,
    before_day: date,
) -> Alert:
    """Build one alert comparing today's holding with `before` on `before_day`."""
    change = row.pct - before
    why = f"{what}: {row.pct:.2f}% on {ctx.day} vs {before:.2f}% on {before_day} ({change:+.2f}pp)"
    if np.isfinite(row.shares):
        why += f", {count(row.shares)} shares"
    return Alert(
        rule=RULE,
        code=row.code,
        name=row.name,
        trade_date=ctx.day,
        severity="warning" if abs(change) >= p.warning_change_pp else "notice",
        why=why,
        facts=(
            Fact("pct_of_issued", rounded(row.pct), "%"),
            Fact("compared_pct", rounded(before), "%"),
            Fact("change", rounded(change), "pp"),
            Fact("compared_date", before_day.isoformat(), "date"),
            Fact("shares", int(row.shares) if np.isfinite(row.shares) else "n/a", "shares"),
        ),
        links=ctx.link(SOURCE, ctx.day),
        published_at=published(SOURCE, ctx.day),
        identity=identity,
    )


def _direction(alert: Alert) -> int | None:
    """A level crossed upwards reads as support, downwards as pressure; a change over sessions says neither."""
    return 1 if alert.identity.startswith("up") else -1 if alert.identity.startswith("down") else None


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🧭", ("pct_of_issued", "change"), _direction, chart="southbound"),),
    markets=("HK",),
    params={RULE: SouthboundParams},
    signal=evaluate_southbound_level,
    feeds=("southbound",),
)
