"""eligibility_change: a stock joins or leaves HKEX's short-selling list, or an index review adds or drops it.

Short-selling list (hkex-shortable-list): each revision is a whole list with the date it takes effect. On the day a
revision takes effect, the list in effect is compared with the previous list held in history: every stock on one
and not the other fires, with the effective date. The first list ever seen has nothing to compare with: a Note,
never an alert per stock. A stock added can be sold short from that date (more potential selling: direction −1);
a stock removed can no longer be sold short (+1).

Index reviews: read from the feed "index_reviews" (source hsi-index-reviews: frame of index, code, name, change
"add"/"delete", announced, effective), built from Hang Seng Indexes' review workbooks (their layout is built from a
description, no real copy was found: alerts/sources/hsi_index_reviews.py). The rule reads the feed when the context
carries it. An addition fires +1, a deletion −1, on the announcement day, with the effective date. Southbound Stock Connect eligibility follows the Hang Seng Composite LargeCap and MidCap indexes
(and SmallCap stocks of at least HK$5bn), so a review can also change whether mainland investors may buy a stock:
the alert says so as a possibility, not a certainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import (
    Note,
    RuleContext,
    RuleResult,
    allowed,
    days64,
    published,
    quiet,
    strings,
    to_date,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec

RULE = "eligibility_change"
SOURCE = "hkex-shortable-list"
REVIEWS_SOURCE = "hsi-index-reviews"
SHORTABLE = "shortable"
INDEX_REVIEWS = "index_reviews"
# The `event` fact: which list and which way (the renderer's sentences and the hit-rate direction read it).
EVENTS = ("shortable_added", "shortable_removed", "index_added", "index_removed")
_DIRECTION = {"shortable_added": -1, "shortable_removed": 1, "index_added": 1, "index_removed": -1}


@dataclass(frozen=True)
class EligibilityParams:
    """eligibility_change options."""

    shortable_severity: str = "notice"
    index_severity: str = "warning"
    indexes: tuple[str, ...] = ("HSI", "HSCEI", "HSTECH")
    max_previous_age_days: int = 400


def direction(alert: Alert) -> int | None:
    """Added to the short-selling list or dropped from an index: −1; removed from the list or added: +1."""
    event = alert.fact("event")
    return _DIRECTION.get(str(event.value)) if event is not None else None


@quiet
def evaluate_eligibility_change(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Stocks whose short-selling eligibility changes on `ctx.day`, and index review changes announced that day."""
    p = params.get(RULE, EligibilityParams)
    alerts, notes = _shortable(ctx, p)
    if INDEX_REVIEWS in ctx.feeds:
        alerts += _index_reviews(ctx, p, ctx.feeds[INDEX_REVIEWS])
    return alerts, notes


def _shortable(ctx: RuleContext, p: EligibilityParams) -> RuleResult:
    """Compare the revision taking effect today with the previous one in history."""
    frame = ctx.feed(SHORTABLE) if SHORTABLE in ctx.feeds else None
    if frame is None or frame.empty:
        return [], []
    dates = days64(frame["effective_date"])
    known = sorted({to_date(d) for d in dates[~np.isnat(dates)] if to_date(d) <= ctx.day})
    if not known or known[-1] != ctx.day:
        return [], []  # no revision takes effect today
    current = known[-1]
    if len(known) == 1:
        reason = (
            f"first short-selling list seen (effective {current.isoformat()}): no previous list to compare"
        )
        return [], [Note(RULE, "MARKET", reason)]
    previous = known[-2]
    if (current - previous).days > p.max_previous_age_days:
        reason = (
            f"the list before {current.isoformat()} in history took effect {previous.isoformat()}, more than "
            f"{p.max_previous_age_days} days earlier: revisions in between were missed, nothing compared"
        )
        return [], [Note(RULE, "MARKET", reason)]
    now_rows = frame.loc[dates == np.datetime64(current, "ns")]
    before_rows = frame.loc[dates == np.datetime64(previous, "ns")]
    now_names = _names(now_rows)
    before_names = _names(before_rows)
    changes = [(code, "shortable_added", now_names[code]) for code in now_names.keys() - before_names.keys()]
    changes += [
        (code, "shortable_removed", before_names[code]) for code in before_names.keys() - now_names.keys()
    ]
    codes = np.array([code for code, _, _ in changes], dtype=object)
    keep = allowed(ctx, codes) if len(codes) else np.array([], dtype=bool)
    return [
        _shortable_alert(ctx, p, code, event, name, current, previous, len(now_rows))
        for (code, event, name), kept in sorted(zip(changes, keep, strict=True), key=lambda c: c[0][:2])
        if kept
    ], []


def _names(rows: pd.DataFrame) -> dict[str, str]:
    """Code → short name of one list's rows."""
    return {
        code: name
        for code, name in zip(strings(rows["code"]), strings(rows["name"]), strict=True)
        if isinstance(code, str) and code
    }


def _shortable_alert(
    ctx: RuleContext,
    p: EligibilityParams,
    code: str,
    event: str,
    name: str | None,
    current: date,
    previous: date,
    listed: int,
) -> Alert:
    """One stock joining or leaving the designated securities list."""
    if event == "shortable_added":
        why = (
            f"added to HKEX's list of securities eligible for short selling, effective {current.isoformat()} "
            f"(previous list {previous.isoformat()}): it can be sold short from that date"
        )
    else:
        why = (
            f"removed from HKEX's list of securities eligible for short selling, effective {current.isoformat()} "
            f"(previous list {previous.isoformat()}): new short sales are not allowed from that date"
        )
    return Alert(
        rule=RULE,
        code=code,
        name=name or "",
        trade_date=current,
        severity=p.shortable_severity,
        why=why,
        facts=(
            Fact("event", event, ""),
            Fact("effective", current.isoformat(), "date"),
            Fact("previous_list", previous.isoformat(), "date"),
            Fact("listed", listed, "securities"),
        ),
        links=ctx.link(SOURCE, current),
        published_at=published(SOURCE, current),
        identity=event,
    )


def _index_reviews(ctx: RuleContext, p: EligibilityParams, frame: pd.DataFrame) -> list[Alert]:
    """Constituent changes announced on `ctx.day` for the watched indexes."""
    if frame.empty:
        return []
    announced = days64(frame["announced"])
    rows = frame.loc[announced == np.datetime64(ctx.day, "ns")]
    rows = rows.loc[rows["index"].isin(p.indexes) & rows["change"].isin(("add", "delete"))]
    codes = strings(rows["code"])
    keep = allowed(ctx, codes)
    out = []
    for code, name, index, change, effective in zip(
        codes[keep],
        strings(rows["name"])[keep],
        strings(rows["index"])[keep],
        strings(rows["change"])[keep],
        days64(rows["effective"])[keep],
        strict=True,
    ):
        if np.isnat(effective):
            continue
        out.append(_index_alert(ctx, p, str(code), name, str(index), str(change), to_date(effective)))
    return out


def _index_alert(
    ctx: RuleContext,
    p: EligibilityParams,
    code: str,
    name: str | None,
    index: str,
    change: str,
    effective: date,
) -> Alert:
    """One stock added to or deleted from an index at a review."""
    event = "index_added" if change == "add" else "index_removed"
    verb = "to join" if change == "add" else "to leave"
    why = (
        f"{verb} the {index} from {effective.isoformat()} (review announced {ctx.day.isoformat()}); "
        "Southbound Stock Connect eligibility follows the Hang Seng Composite LargeCap and MidCap indexes, "
        "so the same review may also change whether mainland investors can buy it"
    )
    return Alert(
        rule=RULE,
        code=code,
        name=name or "",
        trade_date=ctx.day,
        severity=p.index_severity,
        why=why,
        facts=(
            Fact("event", event, ""),
            Fact("index", index, ""),
            Fact("effective", effective.isoformat(), "date"),
            Fact("announced", ctx.day.isoformat(), "date"),
        ),
        links=ctx.link(REVIEWS_SOURCE, ctx.day),
        published_at=published(REVIEWS_SOURCE, ctx.day),
        identity=f"{event}:{index}",
    )


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🔓", ("effective", "previous_list", "index", "announced"), direction),),
    markets=("HK",),
    params={RULE: EligibilityParams},
    signal=evaluate_eligibility_change,
    feeds=(SHORTABLE, INDEX_REVIEWS),
    triggers=(SOURCE, REVIEWS_SOURCE),
)
