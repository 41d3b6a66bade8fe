"""The rules engine: per-stock signals judged against each stock's own history, each explained in one line.

Public API (used by replay, demo and bot):
``RuleParams``/``load_params`` (thresholds from config/rules.toml), ``RuleContext`` (one session's data),
``evaluate`` → ``Evaluation`` (alerts + notes), ``RULE_IDS``, ``round_levels``/``nearest_round_level``.
"""

from alerts.rules.context import Evaluation, Note, RuleContext, default_links
from alerts.rules.engine import RULE_IDS, evaluate
from alerts.rules.levels import nearest_round_level, round_levels
from alerts.rules.params import RuleParams, load_params

__all__ = [
    "RULE_IDS",
    "Evaluation",
    "Note",
    "RuleContext",
    "RuleParams",
    "default_links",
    "evaluate",
    "load_params",
    "nearest_round_level",
    "round_levels",
]
