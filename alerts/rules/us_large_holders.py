"""US `large_holder_filing`: a Schedule 13D or 13G on a stock someone watches (SEC EDGAR, sec-13d-13g).

Fires for a new holder above 5 % (an original 13D or 13G, its largest reporting person at `min_percent` or more) and
for every 13D amendment (an activist's stake or plans changed); 13G amendments are routine yearly updates of passive
holders and do not fire. A filing is one alert (its reporting persons are one group); the headline person is the
one reporting the largest percent of the class. Direction: a 13D (control intent possible) reads as support for
the price; a 13G (passive) says nothing either way.

Point in time: the feed is the day's filings alone, each row carrying its filing date (the index day).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import RuleContext, RuleResult, quiet
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec
from alerts.sources.sec_edgar import accession_folder

RULE = "large_holder_filing"
SOURCE = "sec-13d-13g"
SEC = "https://www.sec.gov"
PURPOSE_CHARS = 300  # of the 13D item 4 text quoted in the English sentence


@dataclass(frozen=True)
class LargeHolderParams:
    """large_holder_filing thresholds (the `[large_holder_filing]` table of config/rules.toml)."""

    min_percent: float = 5.0  # an original filing fires when its largest holder reports at least this


def evaluate_large_holder_filing(filings: pd.DataFrame, params: LargeHolderParams) -> list[Alert]:
    """One alert per original 13D/13G at `min_percent` or more and per 13D amendment, on a stock with a ticker."""
    if filings.empty:
        return []
    rows = filings[filings["ticker"].notna() & filings["accession"].notna()]
    alerts = []
    for _, filing in rows.groupby("accession", sort=True):
        alert = _alert(filing, params)
        if alert is not None:
            alerts.append(alert)
    return alerts


def _alert(filing: pd.DataFrame, params: LargeHolderParams) -> Alert | None:
    """The alert for one filing's rows, None when it does not qualify."""
    first = filing.iloc[0]
    schedule, amended = str(first["schedule"]), bool(first["amendment"])
    percents = pd.to_numeric(filing["percent_of_class"], errors="coerce")
    top = filing.loc[percents.fillna(-1).idxmax()]
    percent = float(top["percent_of_class"]) if pd.notna(top["percent_of_class"]) else float("nan")
    if amended and schedule != "13D":
        return None
    if not amended and not percent >= params.min_percent:
        return None
    form, holder, ticker = str(first["form_type"]), str(top["person_name"]), str(first["ticker"])
    shares = float(top["shares_aggregate"]) if pd.notna(top["shares_aggregate"]) else float("nan")
    filed = pd.Timestamp(first["filed_date"]).date() if pd.notna(first["filed_date"]) else None
    if filed is None:
        return None
    purpose = first["purpose"] if isinstance(first["purpose"], str) else ""
    quoted = (
        f'; purpose: "{purpose[:PURPOSE_CHARS]}{"…" if len(purpose) > PURPOSE_CHARS else ""}"'
        if purpose
        else ""
    )
    event = first["event_date"]
    facts = [
        Fact("holder", holder),
        Fact("form", form),
        Fact("percent", round(percent, 2), "%"),
        Fact("shares", shares, "shares"),
        Fact("persons", int(filing["person_name"].nunique()), "people"),
        Fact("schedule", schedule),
    ]
    if pd.notna(event):
        facts.append(Fact("event_date", pd.Timestamp(event).date().isoformat(), "date"))
    return Alert(
        rule=RULE,
        code=ticker,
        market="US",
        name=str(first["issuer_name"]) if pd.notna(first["issuer_name"]) else ticker,
        trade_date=filed,
        severity="warning" if schedule == "13D" else "notice",
        why=f"{holder} filed {form} on {ticker}: {percent:g}% of the class ({shares:,.0f} shares)" + quoted,
        facts=tuple(facts),
        links=_links(first),
        identity=str(first["accession"]),
    )


def _links(first: pd.Series) -> tuple[str, ...]:
    """The filing's folder on EDGAR (none when the CIK or accession is not one: the parser never gives such)."""
    try:
        return (SEC + accession_folder(str(first["issuer_cik"]), str(first["accession"])),)
    except ValueError:
        return ()


def activist_or_passive(alert: Alert) -> int | None:
    """A 13D (the holder may seek influence) reads as support for the price; a passive 13G says nothing."""
    schedule = alert.fact("schedule")
    return 1 if schedule is not None and schedule.value == "13D" else None


@quiet
def _signal(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """The day's Schedule 13D/13G filings ("holders_13dg")."""
    alerts = evaluate_large_holder_filing(ctx.feed("holders_13dg"), params.get(RULE, LargeHolderParams))
    if ctx.codes is not None:
        alerts = [a for a in alerts if a.code in ctx.codes]
    return alerts, []


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🐋", ("percent", "shares", "form", "persons"), activist_or_passive),),
    markets=("US",),
    params={RULE: LargeHolderParams},
    signal=_signal,
    feeds=("holders_13dg",),
    triggers=(SOURCE,),
)
