"""US `first_time_insider_buy`: an insider buys the issuer's shares on the open market for the first time on record.

A buy is a non-derivative Form 4 transaction with code P and acquired (A) shares, not flagged as a 10b5-1 plan
trade, in an original Form 4 (a 4/A re-reports an old trade). "First" means the stored history of purchases
("form4_buys", a year of code-P rows, kept apart from the full Form 4 rows so loading it stays cheap) holds no
earlier purchase of that issuer by that insider (plan trades included: an insider who bought under a plan has
bought before).

Point in time: the history holds the filings of days up to the evaluated day, each stored under its filing day, so
nothing filed after the evaluation is seen; the day's own filings are the candidates, not the history. The stored
history must reach back `min_history_days` (the feed's ``since``): on a new deployment every buy would otherwise
look like a first one, so the rule stays silent, with a note, until the history is long enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import Note, RuleContext, RuleResult, quiet
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec, supportive
from alerts.rules.us_insiders import SEC_INDEX, buys, insider_role

RULE = "first_time_insider_buy"
SOURCE = "sec-form4"


@dataclass(frozen=True)
class FirstBuyParams:
    """first_time_insider_buy thresholds (the `[first_time_insider_buy]` table of config/rules.toml)."""

    min_history_days: int = 350  # the stored purchases must reach back this many calendar days
    min_value_usd: float = 50_000.0


def _owner_key(rows: pd.DataFrame) -> pd.Series:
    """Who bought: the owner's CIK when the filing has it, else the name (names vary across filings)."""
    return rows["owner_cik"].astype("string").fillna(rows["owner_name"].astype("string")).fillna("?")


def _value(rows: pd.DataFrame) -> float:
    price = pd.to_numeric(rows["price"], errors="coerce").where(lambda p: p > 0, 0).fillna(0)
    return float((rows["shares"].astype(float) * price).sum())


def history_days(history: pd.DataFrame, day: date) -> int | None:
    """Calendar days the stored history reaches back from `day` (its ``since`` attr); None when unknown."""
    since = history.attrs.get("since")
    return (day - since).days if isinstance(since, date) else None


def evaluate_first_time_insider_buy(
    buys_history: pd.DataFrame, form4_today: pd.DataFrame, day: date, params: FirstBuyParams
) -> RuleResult:
    """The day's buys by insiders with no earlier purchase of the same issuer in `buys_history`."""
    today = buys(form4_today)
    if not today.empty:
        today = today[(today["form_type"] != "4/A").fillna(True) & today["issuer_cik"].notna()]
    if today.empty:
        return [], []
    reach = history_days(buys_history, day)
    if reach is None or reach < params.min_history_days:
        note = Note(
            RULE,
            "US",
            f"stored Form 4 purchases reach back {reach or 0} days, {params.min_history_days} needed",
        )
        return [], [note]
    fresh_accessions = set(today["accession"].dropna())
    earlier = (
        buys_history[~buys_history["accession"].isin(fresh_accessions)]
        if not buys_history.empty
        else buys_history
    )
    before = (
        set(zip(earlier["issuer_cik"].astype("string"), _owner_key(earlier), strict=True))
        if not earlier.empty
        else set()
    )
    alerts = []
    for (cik, owner), rows in today.groupby([today["issuer_cik"].astype("string"), _owner_key(today)]):
        if (cik, owner) in before or rows["ticker"].isna().all():
            continue
        value = _value(rows)
        if value < params.min_value_usd:
            continue
        alerts.append(_alert(rows, str(cik), str(owner), value, reach, day))
    return alerts, []


def _alert(rows: pd.DataFrame, cik: str, owner: str, value: float, reach: int, day: date) -> Alert:
    first = rows.iloc[0]
    shares = float(rows["shares"].astype(float).sum())
    price = value / shares if shares > 0 else float("nan")
    who, role = str(first["owner_name"]), insider_role(first)
    ticker = str(rows["ticker"].dropna().iloc[0])
    bought_on = pd.Timestamp(rows["transaction_date"].min()).date()
    return Alert(
        rule=RULE,
        code=ticker,
        market="US",
        name=str(first["issuer_name"]),
        trade_date=day,
        severity="warning" if role == "director" or bool(first["is_officer"]) else "notice",
        why=f"{who} ({role}) bought {ticker} on the open market for the first time in {reach} days of filings: "
        f"{shares:,.0f} shares for ${value:,.0f} on {bought_on.isoformat()}",
        facts=(
            Fact("holder", who),
            Fact("role", role),
            Fact("value", round(value, 2), "USD"),
            Fact("shares", shares, "shares"),
            Fact("avg_price", round(price, 4), "USD"),
            Fact("date", bought_on.isoformat(), "date"),
            Fact("lookback", reach, "days"),
        ),
        links=(SEC_INDEX.format(cik=cik),),
        identity=f"{cik}:{owner}",
    )


@quiet
def _signal(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """First buys among the day's Form 4 filings ("form4_day") against a year of purchases ("form4_buys")."""
    alerts, notes = evaluate_first_time_insider_buy(
        ctx.feed("form4_buys"), ctx.feed("form4_day"), ctx.day, params.get(RULE, FirstBuyParams)
    )
    if ctx.codes is not None:
        alerts = [a for a in alerts if a.code in ctx.codes]
    return alerts, notes


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🆕", ("value", "shares", "avg_price", "lookback"), supportive),),
    markets=("US",),
    params={RULE: FirstBuyParams},
    signal=_signal,
    feeds=("form4_buys", "form4_day"),
    triggers=(SOURCE,),
)
