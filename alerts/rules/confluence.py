"""confluence: two or more distinct signal rules on one stock within a few sessions of knowledge time.

A part counts once it is known: its knowledge moment is when it was first pushed (`ctx.recent_alerts` carry
theirs in `published_at`), and for a part first seen in this evaluation, the evaluation's moment (`ctx.moment`).
At least one part must come from this evaluation (`today`); the window is the last `sessions` XHKG sessions
(XNYS for US alerts) ending on the day the newest of those became known. Confluence alerts and the market-wide alert are never parts. The
identity is the sorted distinct part rules joined by "+": the same combination does not fire twice on one day,
a new one can. The alert says which part arrived last (fact ``last``) and is published at that part's moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from alerts.calendar import HK_TZ, previous_sessions
from alerts.model import Alert, Fact
from alerts.rules.context import RuleContext, RuleResult, sessions_back
from alerts.rules.market import CODE as MARKET_CODE
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec


@dataclass(frozen=True)
class ConfluenceParams:
    """confluence thresholds."""

    sessions: int
    min_rules: int
    warning_rules: int


RULE = "confluence"
NY_TZ = ZoneInfo("America/New_York")


def evaluate_confluence(ctx: RuleContext, params: RuleParams, today: Sequence[Alert] = ()) -> RuleResult:
    """One alert per stock whose parts known within the window come from at least `min_rules` distinct rules."""
    p = params.get(RULE, ConfluenceParams)
    known: dict[str, Alert] = {}
    for alert in ctx.recent_alerts:  # the moment an alert was first pushed is the one that counts
        if _signal(alert) and (ctx.codes is None or alert.code in ctx.codes):
            known.setdefault(alert.fingerprint, alert)
    current: dict[str, Alert] = {}
    for alert in today:
        if _signal(alert) and alert.trade_date <= ctx.day and (ctx.codes is None or alert.code in ctx.codes):
            current.setdefault(alert.fingerprint, known.get(alert.fingerprint) or _at(alert, ctx.moment))
    by_code: dict[str, dict[str, Alert]] = {}
    for part in (*known.values(), *current.values()):
        by_code.setdefault(part.code, {})[part.fingerprint] = part
    alerts = []
    for code, parts in sorted(by_code.items()):
        mine = [a for a in parts.values() if a.fingerprint in current]
        if not mine:  # at least one part must come from this evaluation
            continue
        # The window ends when the newest of them became known: re-evaluating later finds the same confluence.
        newest = max(_known(a) for a in mine)
        start = _window_start(newest, p.sessions, mine[0].market)
        inside = [
            a for a in parts.values() if start <= _local_day(_known(a), a.market) and _known(a) <= newest
        ]
        rules = sorted({a.rule for a in inside})
        if len(rules) >= p.min_rules:
            fresh = {a.fingerprint for a in mine if a.fingerprint not in known}
            alerts.append(_alert(ctx, p, code, inside, rules, fresh, newest))
    return alerts, []


def _signal(alert: Alert) -> bool:
    return alert.rule != RULE and alert.code != MARKET_CODE


def _at(alert: Alert, moment: datetime | None) -> Alert:
    """A part first seen now, known at the evaluation's moment (or its own publication time without one)."""
    if moment is None:
        return alert
    zone = alert.published_at.tzinfo if alert.published_at is not None else _tz(alert.market)
    return replace(alert, published_at=moment.astimezone(zone))


def _known(alert: Alert) -> datetime:
    """When a part became known; without a recorded moment, the end of its trade date."""
    if alert.published_at is not None:
        return alert.published_at
    return datetime.combine(alert.trade_date, time(23, 59), tzinfo=_tz(alert.market))


def _tz(market: str) -> ZoneInfo:
    return NY_TZ if market == "US" else HK_TZ


def _local_day(moment: datetime, market: str) -> date:
    return moment.astimezone(_tz(market)).date()


def _window_start(newest: datetime, sessions: int, market: str) -> date:
    """First session of the `sessions`-session window ending on the day `newest` fell on (local time)."""
    day = _local_day(newest, market)
    back = (
        previous_sessions(day, sessions, calendar="XNYS")
        if market == "US"
        else list(sessions_back(day, sessions))
    )
    return back[0] if back else day


def _alert(
    ctx: RuleContext,
    p: ConfluenceParams,
    code: str,
    parts: list[Alert],
    rules: list[str],
    fresh: set[str],
    newest: datetime,
) -> Alert:
    """Build the confluence alert listing its parts and the one that arrived last."""
    parts = sorted(parts, key=lambda a: (a.trade_date, a.rule, a.identity))
    dates = {rule: sorted({a.trade_date.isoformat() for a in parts if a.rule == rule}) for rule in rules}
    listing = ", ".join(f"{rule} ({'/'.join(dates[rule])})" for rule in rules)
    why = f"{len(rules)} signals within {p.sessions} sessions: {listing}"
    links = tuple(dict.fromkeys(link for a in parts for link in a.links))
    last = max(parts, key=lambda a: (_known(a), a.fingerprint in fresh, a.rule, a.identity))
    today_first = sorted(parts, key=lambda a: a.fingerprint not in fresh)
    return Alert(
        rule=RULE,
        code=code,
        name=next((a.name for a in today_first if a.name), ""),
        trade_date=ctx.day,
        severity="warning" if len(rules) >= p.warning_rules else "notice",
        why=why,
        facts=(
            Fact("rules", len(rules), "rules"),
            Fact("signals", "+".join(rules), ""),
            Fact("parts", len(parts), "alerts"),
            Fact("window", p.sessions, "sessions"),
            Fact("last", last.rule, ""),
        ),
        links=links,
        published_at=newest,
        identity="+".join(rules),
        parts=tuple(a.fingerprint for a in parts),
    )


SPEC = RuleSpec(
    name=RULE,
    kinds=(AlertKind(RULE, "🎯", ("rules", "parts", "window"), chart="short"),),
    markets=("HK", "US"),
    params={RULE: ConfluenceParams},
    join=evaluate_confluence,
)
