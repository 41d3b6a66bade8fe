"""confluence: two or more distinct signal rules on one stock within a few sessions, one of them today.

Parts are today's signal alerts plus `ctx.recent_alerts` whose trade date lies in the last `sessions` XHKG
sessions ending at `day` (confluence alerts and the market-wide alert are never parts). The identity is the
sorted distinct part rules joined by "+": the same combination does not fire twice on one day, a new one can.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.model import Alert, Fact
from alerts.rules.context import RuleContext, RuleResult, sessions_back
from alerts.rules.market import CODE as MARKET_CODE
from alerts.rules.params import ConfluenceParams, RuleParams

RULE = "confluence"


def evaluate_confluence(ctx: RuleContext, params: RuleParams, today: Sequence[Alert] = ()) -> RuleResult:
    """One alert per stock whose recent signals come from at least `min_rules` distinct rules."""
    p = params.confluence
    sessions = sessions_back(ctx.day, p.sessions)
    start = sessions[0] if sessions else ctx.day
    fresh = [
        a for a in today
        if _signal(a) and start <= a.trade_date <= ctx.day and (ctx.codes is None or a.code in ctx.codes)
    ]
    fresh_prints = {a.fingerprint for a in fresh}
    recent = [
        a for a in ctx.recent_alerts
        if _signal(a) and start <= a.trade_date <= ctx.day and a.fingerprint not in fresh_prints
        and (ctx.codes is None or a.code in ctx.codes)
    ]
    by_code: dict[str, list[Alert]] = {}
    for alert in fresh:
        by_code.setdefault(alert.code, []).append(alert)
    for alert in recent:
        if alert.code in by_code:  # at least one part must be from today
            by_code[alert.code].append(alert)
    alerts = []
    for code, parts in sorted(by_code.items()):
        unique = list({a.fingerprint: a for a in parts}.values())
        rules = sorted({a.rule for a in unique})
        if len(rules) >= p.min_rules:
            alerts.append(_alert(ctx, p, code, unique, rules, fresh_prints))
    return alerts, []


def _signal(alert: Alert) -> bool:
    return alert.rule != RULE and alert.code != MARKET_CODE


def _alert(ctx: RuleContext, p: ConfluenceParams, code: str, parts: list[Alert], rules: list[str],
           fresh: set[str]) -> Alert:
    """Build the confluence alert listing its parts."""
    parts = sorted(parts, key=lambda a: (a.trade_date, a.rule, a.identity))
    dates = {rule: sorted({a.trade_date.isoformat() for a in parts if a.rule == rule}) for rule in rules}
    listing = ", ".join(f"{rule} ({'/'.join(dates[rule])})" for rule in rules)
    why = f"{len(rules)} signals within {p.sessions} sessions: {listing}"
    links = tuple(dict.fromkeys(link for a in parts for link in a.links))
    times = [a.published_at for a in parts if a.fingerprint in fresh and a.published_at is not None]
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
        ),
        links=links,
        published_at=max(times) if times else None,
        identity="+".join(rules),
        parts=tuple(a.fingerprint for a in parts),
    )
