"""buyback_filed: share repurchases in the daily report printed on `day` (hkex-buybacks).

One alert per (stock, trade date, line) of the report printed today, all its rows aggregated. The line is the
Hong Kong-listed class (identity "", with overseas purchases of the same shares, e.g. HSBC in London) or the
issuer's mainland A shares (identity "A SHARES"): an A-share repurchase in Shanghai or Shenzhen is not a Hong
Kong buyback and never counts as one. The trade date is in the fingerprint, so a trade re-listed on a later
report does not alert twice. Severity compares the HK$ equivalent of the total (fixed rates in
config/rules.toml) with the threshold (A shares: always "notice"); the text keeps the issuer's own currency,
names the market where it is not the Exchange, and says whether the shares are cancelled or held in treasury
(treasury shares can be sold again; the 2017 report does not say).
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
    first_text,
    floats,
    money,
    plain,
    price,
    published,
    quiet,
    rounded,
    strings,
    to_date,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec, supportive


@dataclass(frozen=True)
class BuybackParams:
    """buyback_filed thresholds; `fx_to_hkd` holds (currency, rate) pairs."""

    warning_total_hkd: float
    fx_to_hkd: tuple[tuple[str, float], ...]

    def rate(self, currency: str | None) -> float | None:
        """HK$ per unit of `currency` (a missing currency is HK$); None when the table has no rate."""
        wanted = (currency or "HKD").upper()
        return next((rate for name, rate in self.fx_to_hkd if name.upper() == wanted), None)


RULE = "buyback_filed"
SOURCE = "hkex-buybacks"
A_SHARES = "A SHARES"
HOME_METHOD = "Exchange"  # on the Stock Exchange of Hong Kong


class _Row(NamedTuple):
    """One report row, plain values (missing numbers NaN, missing text None)."""

    name: str | None
    shares: float
    high: float
    low: float
    currency: str
    paid: float
    method: str | None
    pct: float
    cancelled: float  # this row's share of its group's "for cancellation" aggregate (NaN: not reported)
    treasury: float


@quiet
def evaluate_buyback_filed(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """One alert per stock and trade date of today's share repurchase report."""
    p = params.get(RULE, BuybackParams)
    frame = ctx.buybacks
    rows = frame.loc[days64(frame["report_date"]) == as64(ctx.day)]
    codes = strings(rows["code"])
    trade_dates = days64(rows["trade_date"])
    keep = allowed(ctx, codes) & ~np.isnat(trade_dates)
    columns = zip(
        codes[keep],
        trade_dates[keep],
        strings(rows["name"])[keep],
        floats(rows["shares"])[keep],
        floats(rows["price_high"])[keep],
        floats(rows["price_low"])[keep],
        strings(rows["currency"])[keep],
        floats(rows["total_paid"])[keep],
        strings(rows["method"])[keep],
        floats(rows["pct_of_issued"])[keep],
        _share_of_group(rows, "for_cancellation")[keep],
        _share_of_group(rows, "for_treasury")[keep],
        strings(rows["sec_type"])[keep],
        strict=True,
    )
    groups: dict[tuple[str, date, str], list[_Row]] = {}
    for (
        code,
        trade_date,
        name,
        shares,
        high,
        low,
        currency,
        paid,
        method,
        pct,
        cancelled,
        treasury,
        sec,
    ) in columns:
        row = _Row(
            name, shares, high, low, (currency or "HKD").upper(), paid, method, pct, cancelled, treasury
        )
        line = A_SHARES if str(sec or "").upper() == A_SHARES else ""
        groups.setdefault((str(code), to_date(trade_date), line), []).append(row)
    return [
        _alert(ctx, p, code, trade_date, line, group)
        for (code, trade_date, line), group in sorted(groups.items())
    ], []


def _share_of_group(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Each row's part of its group's aggregate (carried to every row): shares × aggregate / group total."""
    return floats(rows["shares"]) * floats(rows[column]) / floats(rows["group_shares"])


def _max(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return max(finite) if finite else np.nan


def _min(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return min(finite) if finite else np.nan


def _destination(group: list[_Row]) -> tuple[float, float]:
    """Shares for cancellation and held as treasury (NaN where the report does not say: 2017 files)."""
    cancelled, treasury = [r.cancelled for r in group], [r.treasury for r in group]
    if not all(np.isfinite(cancelled + treasury)):
        return np.nan, np.nan
    return float(round(sum(cancelled))), float(round(sum(treasury)))


def _alert(
    ctx: RuleContext, p: BuybackParams, code: str, trade_date: date, line: str, group: list[_Row]
) -> Alert:
    """Aggregate one stock's rows of one line for one trade date into an alert."""
    currencies = list(dict.fromkeys(r.currency for r in group))
    single = len(currencies) == 1
    currency = currencies[0] if single else "HKD"
    shares = float(np.nansum([r.shares for r in group]))
    high, low = _max([r.high for r in group]), _min([r.low for r in group])
    rates = [p.rate(r.currency) for r in group]
    known = [rate for rate in rates if rate is not None]
    paid_hkd = (  # the HK$ total only when every row's currency has a rate
        float(sum(r.paid * rate for r, rate in zip(group, known, strict=True)))
        if len(known) == len(rates)
        else np.nan
    )
    paid = float(np.nansum([r.paid for r in group])) if single else paid_hkd
    methods = "; ".join(dict.fromkeys(r.method for r in group if r.method))
    markets = "; ".join(dict.fromkeys(r.method for r in group if r.method and r.method != HOME_METHOD))
    cancelled, treasury = _destination(group)
    ytd_pct = _max([r.pct for r in group])
    if single:
        prices = (
            price(high, currency)
            if high == low or not np.isfinite(low)
            else (f"{price(low, currency)}–{plain(high)}")
        )
        paid_text = money(paid, currency)
    else:
        prices, paid_text = "prices in " + "/".join(currencies), f"≈{money(paid_hkd)}"
    why = f"bought back {count(shares)} shares on {trade_date} at {prices}, {paid_text} in total"
    if methods:
        why += f" ({methods})"
    if line == A_SHARES:
        why += "; A shares on the mainland: not a Hong Kong buyback"
    if np.isfinite(cancelled):
        why += "; " + _destination_text(cancelled, treasury)
    if np.isfinite(ytd_pct):
        why += f"; {ytd_pct:g}% of issued shares bought under the mandate"
    large = np.isfinite(paid_hkd) and paid_hkd >= p.warning_total_hkd and line != A_SHARES
    return Alert(
        rule=RULE,
        code=code,
        name=first_text(r.name for r in group),
        trade_date=trade_date,
        severity="warning" if large else "notice",
        why=why,
        facts=(
            Fact("shares", int(shares) if np.isfinite(shares) else "n/a", "shares"),
            # Prices in several currencies have no common range.
            Fact("price_high", rounded(high, 4) if single else "n/a", currency),
            Fact("price_low", rounded(low, 4) if single else "n/a", currency),
            Fact("total_paid", rounded(paid), currency),
            Fact("total_paid_hkd", rounded(paid_hkd, 0), "HKD"),
            Fact("rows", len(group), "rows"),
            Fact("method", methods, ""),
            Fact("ytd_pct_of_issued", rounded(ytd_pct, 3), "%"),
            Fact("for_cancellation", int(cancelled) if np.isfinite(cancelled) else "n/a", "shares"),
            Fact("for_treasury", int(treasury) if np.isfinite(treasury) else "n/a", "shares"),
            Fact("currency", currency if single else "/".join(currencies), ""),
            Fact("market", markets, ""),
            Fact("line", line, ""),
        ),
        links=ctx.link(SOURCE, ctx.day),
        published_at=published(SOURCE, ctx.day),
        identity=line,
    )


def _destination_text(cancelled: float, treasury: float) -> str:
    """Cancelled or kept in treasury (treasury shares can be sold again)."""
    if treasury == 0:
        return "all for cancellation"
    if cancelled == 0:
        return "all held as treasury shares (which can be sold again)"
    return (
        f"{count(cancelled)} for cancellation, {count(treasury)} held as treasury shares (can be sold again)"
    )


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "💰", ("shares", "total_paid", "ytd_pct_of_issued"), supportive, chart="short"),),
    markets=("HK",),
    params={RULE: BuybackParams},
    signal=evaluate_buyback_filed,
    feeds=("buybacks",),
)
