"""The rules engine: per-stock signals judged against each stock's own history, each explained in one line.

Public API (used by the pipeline, replay, demo and bot): ``RULES``/``KINDS`` (one record per rule and per alert
kind, alerts.rules.registry), ``RuleParams``/``load_params`` (thresholds from config/rules.toml), ``RuleContext``
(one evaluation's data), ``evaluate`` → ``Evaluation`` (alerts + notes), ``RULE_IDS``,
``round_levels``/``nearest_round_level``.
"""

from alerts.rules.context import Evaluation, Note, RuleContext, default_links
from alerts.rules.engine import evaluate
from alerts.rules.levels import nearest_round_level, round_levels
from alerts.rules.params import RuleParams
from alerts.rules.registry import KINDS, RULE_IDS, RULES, feeds_for, kind, load_params, rules_for, spec_for
from alerts.rules.spec import AlertKind, RuleSpec

__all__ = [
    "KINDS",
    "RULES",
    "RULE_IDS",
    "AlertKind",
    "Evaluation",
    "Note",
    "RuleContext",
    "RuleParams",
    "RuleSpec",
    "default_links",
    "evaluate",
    "feeds_for",
    "kind",
    "load_params",
    "nearest_round_level",
    "round_levels",
    "rules_for",
    "spec_for",
]
