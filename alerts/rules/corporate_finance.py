"""corporate_finance_event: a watched stock published a placing, rights issue, buyback return… (hkexnews-announcements).

Reads the announcements released on `ctx.day` and known at `ctx.moment` (`released_at` <= moment). One alert per
announcement and stock code (identity = the HKEXnews news id, so a re-poll of the same day never alerts twice),
on the announcement's publication day. Announcements are published on any day, so the rule runs on days without
a session too (`RuleSpec.any_day`): a placing announced on a Sunday evening reaches its watchers that evening.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import RuleContext, RuleResult, allowed, as64, days64, quiet, strings
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec
from alerts.sources.hkexnews_announcements import CATEGORIES

RULE = "corporate_finance_event"
SOURCE = "hkexnews-announcements"
FEED = "announcements"

# "AT A DISCOUNT OF APPROXIMATELY 9.8%" / "discount of about 12 per cent" / "DISCOUNT OF 15.2 PER CENT."
_DISCOUNT_RE = re.compile(
    r"discount\s+of\s+(?:approximately\s+|approx\.\s+|about\s+|around\s+)?(\d{1,2}(?:\.\d+)?)\s*(?:%|per\s*cent)",
    re.I,
)
# Categories that raise money by issuing shares below the market: the title may state the discount.
_DISCOUNTED = frozenset({"placing", "rights_issue", "open_offer"})
_DILUTIVE = frozenset({"placing", "rights_issue", "open_offer", "convertible"})
_WHAT = {
    "placing": "a placing of shares",
    "rights_issue": "a rights issue",
    "open_offer": "an open offer",
    "convertible": "an issue of convertible securities",
    "consolidation": "a share consolidation",
    "repurchase_mandate": "a share buyback announcement",
    "next_day_disclosure": "a Next Day Disclosure Return reporting a buyback",
    "high_concentration": "a high shareholding concentration notice",
}
_TITLE_CHARS = 160


@dataclass(frozen=True)
class CorporateFinanceParams:
    """corporate_finance_event thresholds."""

    # Every category the source recognises but "other" (alerts/sources/hkexnews_announcements.py).
    categories: tuple[str, ...] = tuple(c for c in CATEGORIES if c != "other")
    warning_categories: tuple[str, ...] = ("high_concentration",)
    warning_discount_pct: float = 15.0


def discount_pct(title: str) -> float | None:
    """The discount a title states ("at a discount of approximately 9.8%") in %, None when it states none."""
    match = _DISCOUNT_RE.search(title)
    return float(match.group(1)) if match else None


@quiet
def evaluate_corporate_finance_event(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Announcements of the watched categories released on `ctx.day`, one alert per announcement and code."""
    p = params.get(RULE, CorporateFinanceParams)
    frame = ctx.feeds.get(FEED)
    if frame is None or not len(frame):
        return [], []
    codes = strings(frame["code"])
    keep = (
        (days64(frame["date"]) == as64(ctx.day))
        & frame["category"].isin(p.categories).fillna(False).to_numpy(dtype=bool)
        & allowed(ctx, codes)
    )
    if ctx.moment is not None:
        # Point in time: a row released after the evaluated moment is not known yet.
        moment = pd.Timestamp(ctx.moment)
        keep &= (frame["released_at"] <= moment).fillna(False).to_numpy(dtype=bool)
    alerts = [_alert(frame.iloc[i], p) for i in np.flatnonzero(keep)]
    return alerts, []


def _text(value: object) -> str:
    return (
        ""
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
        else str(value)
    )


def _alert(row: pd.Series, p: CorporateFinanceParams) -> Alert:
    """Build one alert from an announcement row."""
    category = _text(row["category"])
    title = _text(row["title"])
    released = pd.Timestamp(row["released_at"]).tz_convert("Asia/Hong_Kong")
    discount = discount_pct(title) if category in _DISCOUNTED else None
    severity = "warning" if category in p.warning_categories else "notice"
    if discount is not None and discount >= p.warning_discount_pct:
        severity = "warning"
    short = title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1].rstrip() + "…"
    why = f"{_WHAT.get(category, category)} released {released:%Y-%m-%d %H:%M} HKT: {short}"
    if category in _DISCOUNTED:
        why += (
            f"; discount to the last close {discount:g}% (as the title states)"
            if discount is not None
            else "; the title does not state the discount (see the announcement)"
        )
    if category == "next_day_disclosure":
        why += (
            "; the earliest buyback signal: filed the evening of the trade, before the next morning's report"
        )
    if category == "high_concentration":
        why += "; the price may fluctuate substantially even on small trades"
    facts = [
        Fact("category", category, ""),
        Fact("title", short, ""),
        Fact("released_at", f"{released:%Y-%m-%d %H:%M}", ""),  # Hong Kong time
        Fact("news_id", _text(row["news_id"]), ""),
    ]
    if category in _DISCOUNTED:
        facts.append(Fact("discount", discount if discount is not None else "n/a", "%"))  # n/a: not stated
    return Alert(
        rule=RULE,
        code=_text(row["code"]),
        name=_text(row["name"]),
        trade_date=released.date(),
        severity=severity,
        why=why,
        facts=tuple(facts),
        links=(_text(row["url"]),),
        published_at=released.to_pydatetime(),
        identity=_text(row["news_id"]),
    )


def direction(alert: Alert) -> int | None:
    """Dilution (placing, rights, open offer, convertible) −1; a buyback +1; anything else says no direction."""
    fact = alert.fact("category")
    category = str(fact.value) if fact is not None else ""
    if category in _DILUTIVE:
        return -1
    if category in ("repurchase_mandate", "next_day_disclosure"):
        return 1
    return None


KIND = AlertKind(RULE, "🏦", ("category", "title", "discount", "released_at"), direction)
SPEC = RuleSpec(
    name=RULE,
    kinds=(KIND,),
    markets=("HK",),
    params={RULE: CorporateFinanceParams},
    signal=evaluate_corporate_finance_event,
    feeds=(FEED,),
    triggers=(SOURCE,),
    any_day=True,
)
