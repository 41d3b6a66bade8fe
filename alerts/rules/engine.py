"""Run the rules of one market for one day: signals first, then the joining rules over them; sorted, deterministic."""

from __future__ import annotations

from dataclasses import replace

from alerts.calendar import is_session
from alerts.model import Alert
from alerts.rules import registry
from alerts.rules.context import Evaluation, Note, RuleContext
from alerts.rules.params import RuleParams
from alerts.rules.spec import Market, RuleSpec


def evaluate(
    ctx: RuleContext, params: RuleParams, *, market: Market = "HK", rules: tuple[RuleSpec, ...] | None = None
) -> Evaluation:
    """All alerts and notes of `market`'s rules (or just `rules`) for `ctx.day`.

    On a day without an HK session only the `any_day` signal rules run (announcements are published on any day);
    the session rules and the joining rules, which read a session's signals, say nothing then.
    """
    specs = rules if rules is not None else registry.rules_of(market)
    if market == "HK" and not is_session(ctx.day):
        specs = tuple(spec for spec in specs if spec.any_day and spec.signal is not None)
        if not specs:
            return Evaluation(alerts=(), notes=())
    alerts: list[Alert] = []
    notes: list[Note] = []
    for spec in specs:
        if spec.signal is not None:
            found, said = spec.signal(ctx, params)
            alerts += found
            notes += said
    for spec in specs:
        if spec.join is not None:
            found, said = spec.join(ctx, params, tuple(alerts))
            alerts += [replace(a, market=market) for a in found]
            notes += said
    if ctx.codes is not None:
        alerts = [a for a in alerts if a.code in ctx.codes]
        notes = [n for n in notes if n.code in ctx.codes or not n.code]
    unique = {a.fingerprint: a for a in alerts}  # a duplicated input row must not alert twice
    return Evaluation(
        alerts=tuple(sorted(unique.values(), key=_alert_key)),
        notes=tuple(sorted(set(notes), key=lambda n: (n.rule, n.code, n.reason))),
    )


def _alert_key(alert: Alert) -> tuple[str, str, str, str]:
    return (alert.rule, alert.code, alert.identity, alert.trade_date.isoformat())
