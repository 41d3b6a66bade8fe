"""US insider rules from SEC Form 4: open-market purchases near round numbers, and clusters of buying insiders.

Only non-derivative code-P transactions with acquired (A) shares count as buys; 10b5-1 plan trades and every other
code (awards, option exercises, gifts, tax withholding) are not "buys".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import RuleContext, RuleResult
from alerts.rules.insiders import KIND as ROUND_NUMBER
from alerts.rules.levels import nearest_round_level
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec

SEC_INDEX = "https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&type=4&CIK={cik}"


@dataclass(frozen=True)
class ClusterParams:
    """insider_cluster thresholds (the `[insider_cluster]` table of config/rules.toml)."""

    days: int = 10  # calendar days in which distinct insiders' purchases count together
    min_insiders: int = 2
    min_total_usd: float = 100_000.0


def buys(form4: pd.DataFrame) -> pd.DataFrame:
    """Open-market purchases: code P, acquired, not under a 10b5-1 plan, with shares and a price."""
    if form4.empty:
        return form4
    plan = form4["is_10b5_1"].fillna(False).astype(bool)
    mask = (form4["code"] == "P") & (form4["acquired_disposed"] == "A") & ~plan
    mask &= form4["shares"].fillna(0) > 0
    return form4[mask.fillna(False)]


def insider_role(row: pd.Series) -> str:
    """The first role the filing gives the owner: director, the officer title, 10% owner, else insider."""
    if bool(row["is_director"]):
        return "director"
    if bool(row["is_officer"]):
        title = row["officer_title"]
        return str(title) if isinstance(title, str) and title else "officer"
    return "10% owner" if bool(row["is_ten_percent_owner"]) else "insider"


def evaluate_us_round_number(
    form4_today: pd.DataFrame, params: RuleParams, published_at: datetime | None = None
) -> list[Alert]:
    """A buy whose price is near a round USD level (same step bands as HK: $40 for $38.58…)."""
    alerts = []
    for _, row in buys(form4_today).iterrows():
        price = float(row["price"]) if pd.notna(row["price"]) else math.nan
        near = nearest_round_level(price, params) if math.isfinite(price) else None
        if near is None:
            continue
        level, distance, side = near
        who, role = str(row["owner_name"]), insider_role(row)
        shares = float(row["shares"])
        alerts.append(
            Alert(
                rule="insider_buy_near_round_number",
                code=str(row["ticker"]),
                market="US",
                name=str(row["issuer_name"]),
                trade_date=pd.Timestamp(row["transaction_date"]).date(),
                severity="warning" if role == "director" else "notice",
                why=f"{who} ({role}) bought {shares:,.0f} shares at ${price:,.2f} on "
                f"{pd.Timestamp(row['transaction_date']).date().isoformat()}, {distance:.1f}% {side} ${level:g} "
                f"(open-market purchase, code P)",
                facts=(
                    Fact("level", level, "USD"),
                    Fact("distance", round(distance, 2), "%"),
                    Fact("side", side),
                    Fact("shares", shares, "shares"),
                    Fact("avg_price", price, "USD"),
                    Fact("holder", who),
                    Fact("role", role),
                    Fact("value", round(shares * price, 2), "USD"),
                ),
                links=(SEC_INDEX.format(cik=row["issuer_cik"]),),
                published_at=published_at,
                identity=f"{row['accession']}:{who}:{shares:g}@{price:g}",
            )
        )
    return alerts


def evaluate_insider_cluster(
    form4_history: pd.DataFrame,
    form4_today: pd.DataFrame,
    day: date,
    cluster: ClusterParams,
    published_at: datetime | None = None,
) -> list[Alert]:
    """2+ distinct insiders buying the same ticker within `cluster.days`, for at least `min_total_usd` together.

    Fires only on a filing day that adds a purchase to the cluster, so a standing cluster is not repeated daily.
    """
    purchases = buys(form4_history)
    fresh = set(buys(form4_today)["ticker"]) if not form4_today.empty else set()
    if purchases.empty or not fresh:
        return []
    start = pd.Timestamp(day - timedelta(days=cluster.days - 1))
    window = purchases[
        (purchases["transaction_date"] >= start) & (purchases["transaction_date"] <= pd.Timestamp(day))
    ]
    alerts = []
    for ticker, rows in window[window["ticker"].isin(fresh)].groupby("ticker"):
        insiders = sorted(set(rows["owner_name"]))
        total = float((rows["shares"] * rows["price"].fillna(0)).sum())
        if len(insiders) < cluster.min_insiders or total < cluster.min_total_usd:
            continue
        alerts.append(
            Alert(
                rule="insider_cluster",
                code=str(ticker),
                market="US",
                name=str(rows["issuer_name"].iloc[-1]),
                trade_date=day,
                severity="warning" if len(insiders) >= 3 else "notice",
                why=f"{len(insiders)} insiders bought ${total:,.0f} of {ticker} in {cluster.days} days: "
                + ", ".join(insiders[:5]),
                facts=(
                    Fact("insiders", len(insiders), "people"),
                    Fact("total", round(total, 2), "USD"),
                    Fact("purchases", len(rows), "transactions"),
                    Fact("days", cluster.days, "days"),
                ),
                links=(SEC_INDEX.format(cik=rows["issuer_cik"].iloc[-1]),),
                published_at=published_at,
                identity="+".join(insiders),
            )
        )
    return alerts


CLUSTER = "insider_cluster"
SOURCE = "sec-form4"


def _signal(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Both US insider rules over the day's Form 4 filings ("form4_day") and the last days' ("form4")."""
    today = ctx.feed("form4_day")
    alerts = evaluate_us_round_number(today, params)
    alerts += evaluate_insider_cluster(ctx.feed("form4"), today, ctx.day, params.get(CLUSTER, ClusterParams))
    if ctx.codes is not None:
        alerts = [a for a in alerts if a.code in ctx.codes]
    return alerts, []


SPEC = RuleSpec(
    name="us_insiders",
    kinds=(ROUND_NUMBER, AlertKind(CLUSTER, "👥", ("insiders", "total"))),
    markets=("US",),
    params={CLUSTER: ClusterParams},
    signal=_signal,
    feeds=("form4", "form4_day"),
    triggers=(SOURCE,),
)
