"""Run every rule for one session: signals first, then confluence over them; sorted, filtered, deterministic."""

from __future__ import annotations

from collections.abc import Callable

from alerts.calendar import is_session
from alerts.model import Alert
from alerts.rules.buybacks import evaluate_buyback_filed
from alerts.rules.confluence import evaluate_confluence
from alerts.rules.context import Evaluation, Note, RuleContext, RuleResult
from alerts.rules.insiders import evaluate_insider_buy_near_round_number
from alerts.rules.market import evaluate_market_short_swing
from alerts.rules.params import RuleParams
from alerts.rules.short_position import evaluate_short_position_jump
from alerts.rules.short_ratio import evaluate_short_ratio
from alerts.rules.southbound import evaluate_southbound_level

RULE_IDS: tuple[str, ...] = (
    "short_ratio_spike",
    "short_ratio_drop",
    "short_position_jump",
    "buyback_filed",
    "insider_buy_near_round_number",
    "southbound_level",
    "market_short_swing",
    "confluence",
)

# Signal evaluators in run order; evaluate_short_ratio covers both short-ratio rules in one pass.
_SIGNALS: tuple[Callable[[RuleContext, RuleParams], RuleResult], ...] = (
    evaluate_short_ratio,
    evaluate_short_position_jump,
    evaluate_buyback_filed,
    evaluate_insider_buy_near_round_number,
    evaluate_southbound_level,
    evaluate_market_short_swing,
)


def evaluate(ctx: RuleContext, params: RuleParams) -> Evaluation:
    """All alerts and notes for `ctx.day`; nothing at all on a non-session day."""
    if not is_session(ctx.day):
        return Evaluation(alerts=(), notes=())
    alerts: list[Alert] = []
    notes: list[Note] = []
    for rule in _SIGNALS:
        found, said = rule(ctx, params)
        alerts += found
        notes += said
    found, said = evaluate_confluence(ctx, params, today=alerts)
    alerts += found
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
