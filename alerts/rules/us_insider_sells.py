"""US `insider_sell_cluster`: three or more insiders of one issuer selling on the open market within a few sessions.

A sale is a non-derivative Form 4 transaction with code S and disposed (D) shares. Sales the filing flags as made
under a 10b5-1 plan (``aff10b5One``) were scheduled months before, so they are not counted; the alert reports them
apart ("plus 2 plan sales for $3.1m, not counted"). A filing without the flag (schemas before X0508) counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from alerts.calendar import previous_sessions
from alerts.model import Alert, Fact
from alerts.rules.context import RuleContext, RuleResult, quiet
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec
from alerts.rules.us_insiders import SEC_INDEX

RULE = "insider_sell_cluster"
SOURCE = "sec-form4"


@dataclass(frozen=True)
class SellClusterParams:
    """insider_sell_cluster thresholds (the `[insider_sell_cluster]` table of config/rules.toml)."""

    sessions: int = (
        5  # XNYS sessions (ending on the filing day) in which distinct insiders' sales count together
    )
    min_insiders: int = 3
    min_total_usd: float = 1_000_000.0


def sales(form4: pd.DataFrame) -> pd.DataFrame:
    """Open-market sales: code S, disposed, with shares (10b5-1 plan sales included; see `plan_mask`)."""
    if form4.empty:
        return form4
    mask = (form4["code"] == "S") & (form4["acquired_disposed"] == "D") & (form4["shares"].fillna(0) > 0)
    return form4[mask.fillna(False)]


def plan_mask(frame: pd.DataFrame) -> pd.Series:
    """True for rows the filing flags as 10b5-1 plan trades (<NA>: the filing predates the flag, not a plan)."""
    return frame["is_10b5_1"].fillna(False).astype(bool)


def _value(rows: pd.DataFrame) -> float:
    """US$ value of the rows (a price given only in a footnote counts as nothing)."""
    price = pd.to_numeric(rows["price"], errors="coerce").where(lambda p: p > 0, 0).fillna(0)
    return float((rows["shares"].astype(float) * price).sum())


def _insider(rows: pd.DataFrame) -> pd.Series:
    """Who sold: the owner's CIK when the filing has it (names are spelt differently across filings)."""
    return rows["owner_cik"].astype("string").fillna(rows["owner_name"].astype("string")).fillna("?")


def evaluate_insider_sell_cluster(
    form4_history: pd.DataFrame,
    form4_today: pd.DataFrame,
    day: date,
    params: SellClusterParams,
) -> list[Alert]:
    """3+ distinct insiders selling one ticker within `params.sessions` XNYS sessions for `min_total_usd` together.

    Fires only on a filing day that adds a counted (non-plan) sale to the cluster, so a standing cluster is not
    repeated on quiet days; the identity is the sorted insiders.
    """
    today = sales(form4_today)
    fresh = set(today.loc[~plan_mask(today), "ticker"].dropna()) if not today.empty else set()
    history = sales(pd.concat([form4_history, form4_today], ignore_index=True))
    if history.empty or not fresh:
        return []
    history = history.drop_duplicates(
        subset=["accession", "owner_name", "transaction_date", "shares", "price", "shares_after"]
    )
    start = pd.Timestamp(previous_sessions(day, params.sessions, calendar="XNYS")[0])
    dates = pd.to_datetime(history["transaction_date"])
    window = history[(dates >= start) & (dates <= pd.Timestamp(day)) & history["ticker"].isin(fresh)]
    alerts = []
    for ticker, rows in window.groupby("ticker"):
        plan = plan_mask(rows)
        counted, planned = rows[~plan], rows[plan]
        alert = _cluster_alert(str(ticker), counted, planned, day, params)
        if alert is not None:
            alerts.append(alert)
    return alerts


def _cluster_alert(
    ticker: str, counted: pd.DataFrame, planned: pd.DataFrame, day: date, params: SellClusterParams
) -> Alert | None:
    """The alert for one ticker's sales in the window, None below the thresholds."""
    if counted.empty:
        return None
    names = dict(zip(_insider(counted), counted["owner_name"].astype("string").fillna("?"), strict=True))
    total = _value(counted)
    if len(names) < params.min_insiders or total < params.min_total_usd:
        return None
    insiders = sorted(set(names.values()))
    plan_total = _value(planned)
    plan_text = (
        f"; plus {len(planned)} plan sale{'s' if len(planned) != 1 else ''} for ${plan_total:,.0f}, not counted"
        if len(planned)
        else ""
    )
    return Alert(
        rule=RULE,
        code=ticker,
        market="US",
        name=str(counted["issuer_name"].iloc[-1]),
        trade_date=day,
        severity="warning" if len(names) >= params.min_insiders + 1 else "notice",
        why=f"{len(names)} insiders sold ${total:,.0f} of {ticker} in {params.sessions} sessions: "
        + ", ".join(insiders[:5])
        + plan_text,
        facts=(
            Fact("insiders", len(names), "people"),
            Fact("total", round(total, 2), "USD"),
            Fact("sales", len(counted), "transactions"),
            Fact("sessions", params.sessions, "sessions"),
            Fact("plan_sales", len(planned), "transactions"),
            Fact("plan_total", round(plan_total, 2), "USD"),
        ),
        links=(SEC_INDEX.format(cik=counted["issuer_cik"].iloc[-1]),),
        identity="+".join(insiders),
    )


@quiet
def _signal(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """The sell cluster over the day's Form 4 filings ("form4_day") and the last days' ("form4")."""
    alerts = evaluate_insider_sell_cluster(
        ctx.feed("form4"), ctx.feed("form4_day"), ctx.day, params.get(RULE, SellClusterParams)
    )
    if ctx.codes is not None:
        alerts = [a for a in alerts if a.code in ctx.codes]
    return alerts, []


def selling(alert: Alert) -> int | None:
    """Insiders selling together: read as pressure on the price."""
    return -1


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "📤", ("insiders", "total", "plan_sales"), selling),),
    markets=("US",),
    params={RULE: SellClusterParams},
    signal=_signal,
    feeds=("form4", "form4_day"),
    triggers=(SOURCE,),
)
