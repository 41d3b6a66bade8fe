"""insider_buy_near_round_number: a director / substantial shareholder bought near a round price (hkex-di).

Reads the DI summary rows filed on `day` (filed_date == day): purchases (direction "buy"), long position "L",
with an average price and shares > 0. One alert per notice (identity = serial); trade_date = the event date.
"Near" is defined in alerts.rules.levels.nearest_round_level (a % of the level OR a fraction of the step).
"""

from __future__ import annotations

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
    price,
    published,
    quiet,
    rounded,
    strings,
    to_date,
)
from alerts.rules.levels import InsiderParams, nearest_round_level, step_for
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec, supportive

RULE = "insider_buy_near_round_number"
SOURCE = "hkex-di"
_ROLE_TEXT = {"director": "director", "substantial_shareholder": "substantial shareholder"}
# Summary C1 lists substantial shareholders (Forms 1/2), C2 directors (Form 3A): default_links gives [C1, C2].
_DIRECTOR_FORMS = ("DA", "DB", "DC", "DD")


@quiet
def evaluate_insider_buy_near_round_number(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Insider purchases filed today whose average price sits near a round level."""
    p = params.get(RULE, InsiderParams)
    di = ctx.di
    shares = floats(di["shares"])
    avg_price = floats(di["avg_price"])
    codes = strings(di["code"])
    keep = (
        (days64(di["filed_date"]) == as64(ctx.day))
        & (di["direction"] == "buy").fillna(False).to_numpy(dtype=bool)
        & (di["position"] == "L").fillna(False).to_numpy(dtype=bool)
        & np.isfinite(avg_price)
        & (avg_price > 0)
        & np.isfinite(shares)
        & (shares > 0)
        & allowed(ctx, codes)
    )
    alerts = []
    for i in np.flatnonzero(keep):
        row = di.iloc[i]
        near = nearest_round_level(float(avg_price[i]), p)
        if near is not None:
            alerts.append(_alert(ctx, p, row, float(shares[i]), float(avg_price[i]), near))
    return alerts, []


def _text(value: object) -> str:
    return (
        ""
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        else str(value)
    )


def _alert(
    ctx: RuleContext,
    p: InsiderParams,
    row: pd.Series,
    shares: float,
    avg_price: float,
    near: tuple[float, float, str],
) -> Alert:
    """Build one alert from a DI row."""
    level, distance, side = near
    currency = _text(row["currency"]) or "HKD"
    role = _text(row["role"])
    holder = _text(row["holder"]) or "a holder"
    serial = _text(row["serial"])
    event = row["event_date"]
    trade_date = to_date(event) if not pd.isna(event) else ctx.day
    pct_after = float(row["pct_after"]) if not pd.isna(row["pct_after"]) else np.nan
    where = (
        f"at {price(level, currency)}"
        if distance == 0
        else f"{distance:.1f}% {side} {price(level, currency)}"
    )
    why = (
        f"{holder} ({_ROLE_TEXT.get(role, role or 'holder')}) bought {count(shares)} shares at "
        f"{price(avg_price, currency)} on {trade_date}, {where}"
    )
    if np.isfinite(pct_after):
        why += f"; stake now {pct_after:g}%"
    links = ctx.link(SOURCE, ctx.day)
    if len(links) == 2:
        links = (links[1],) if serial[:2].upper() in _DIRECTOR_FORMS or role == "director" else (links[0],)
    return Alert(
        rule=RULE,
        code=_text(row["code"]),
        name=_text(row["name"]),
        trade_date=trade_date,
        severity="warning" if role in p.warning_roles else "notice",
        why=why,
        facts=(
            Fact("level", level, currency),
            Fact("distance", rounded(distance), "%"),
            Fact("side", side, ""),
            Fact("step", step_for(avg_price, p), currency),
            Fact("shares", int(shares), "shares"),
            Fact("avg_price", rounded(avg_price, 4), currency),
            Fact("holder", holder, ""),
            Fact("role", role, ""),
            Fact("pct_after", rounded(pct_after, 4), "%"),
        ),
        links=links,
        published_at=published(SOURCE, ctx.day),
        identity=serial,
    )


KIND = AlertKind(RULE, "👤", ("avg_price", "level", "pct_after"), supportive, chart="short")
SPEC = RuleSpec(
    name=RULE,
    kinds=(KIND,),
    markets=("HK",),
    params={RULE: InsiderParams},
    signal=evaluate_insider_buy_near_round_number,
    feeds=("di",),
)
