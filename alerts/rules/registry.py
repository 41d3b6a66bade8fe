"""Every rule, in run order: the one list the engine, pipeline, replay and bot read (add a new rule's SPEC here)."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.rules import (
    buybacks,
    confluence,
    corporate_finance,
    eligibility,
    insiders,
    market,
    short_position,
    short_ratio,
    southbound,
    southbound_flow,
    us_first_buys,
    us_insider_sells,
    us_insiders,
    us_large_holders,
    us_short_volume,
)
from alerts.rules.params import RuleParams, build
from alerts.rules.spec import AlertKind, Market, RuleSpec

RULES: tuple[RuleSpec, ...] = (
    short_ratio.SPEC,
    short_position.SPEC,
    buybacks.SPEC,
    insiders.SPEC,
    southbound.SPEC,
    market.SPEC,
    confluence.SPEC,  # a joining rule: the engine runs it after the signals of its market
    us_short_volume.SPEC,
    us_insiders.SPEC,
    eligibility.SPEC,
    southbound_flow.SPEC,
    us_insider_sells.SPEC,
    us_first_buys.SPEC,
    us_large_holders.SPEC,
    corporate_finance.SPEC,
)


def _kinds(rules: tuple[RuleSpec, ...]) -> dict[str, AlertKind]:
    """Alert kinds by id; a kind shared by an HK and a US rule must be the same record."""
    kinds: dict[str, AlertKind] = {}
    for spec in rules:
        for kind in spec.kinds:
            if kinds.setdefault(kind.id, kind) is not kind:
                raise ValueError(f"alert kind {kind.id!r} is declared twice with different records")
    return kinds


KINDS: Mapping[str, AlertKind] = _kinds(RULES)
# The HK engine's alert ids in run order (/settings numbers its rule buttons by this order: append, never insert).
RULE_IDS: tuple[str, ...] = tuple(dict.fromkeys(k.id for s in RULES if "HK" in s.markets for k in s.kinds))
SECTIONS: Mapping[str, type] = {table: cls for spec in RULES for table, cls in spec.params.items()}


def load_params(overrides: Mapping[str, Mapping[str, object]] | None = None) -> RuleParams:
    """Every rule's thresholds from config/rules.toml with per-table overrides ``{table: {key: value}}``."""
    return build(SECTIONS, overrides)


# Readers go through these functions, not the constants, so a test can register one more rule for a while.


def kind(rule: str) -> AlertKind | None:
    """The record of an alert id, None for an id no rule emits."""
    return KINDS.get(rule)


def rules_of(market: Market) -> tuple[RuleSpec, ...]:
    """Every rule that runs in `market`, in run order."""
    return tuple(spec for spec in RULES if market in spec.markets)


def spec_for(rule: str, market: Market) -> RuleSpec | None:
    """The rule that emits alert id `rule` in `market`."""
    return next((s for s in RULES if rule in s.ids and market in s.markets), None)


def rules_for(source: str, market: Market) -> tuple[RuleSpec, ...]:
    """The rules a new file of `source` makes run, in run order (joining rules last)."""
    return tuple(spec for spec in RULES if spec.runs_on(source, market))


def feeds_for(rules: tuple[RuleSpec, ...]) -> tuple[str, ...]:
    """The history feeds those rules read."""
    return tuple(dict.fromkeys(feed for spec in rules for feed in spec.feeds))
