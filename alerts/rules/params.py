"""Rule thresholds: one frozen dataclass per rule, loaded from config/rules.toml with per-rule overrides."""

from __future__ import annotations

import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ShortRatioWindow:
    """The trailing window a day's short ratio is compared with (shared by spike and drop)."""

    window: int
    max_lookback_sessions: int
    min_history: int
    min_turnover_hkd: float
    std_floor: float
    warning_abs_z: float


@dataclass(frozen=True)
class ShortRatioSpikeParams(ShortRatioWindow):
    """short_ratio_spike: z >= min_z and percentile >= min_percentile, ratio >= min_ratio."""

    min_ratio: float
    min_z: float
    min_percentile: float


@dataclass(frozen=True)
class ShortRatioDropParams(ShortRatioWindow):
    """short_ratio_drop: z <= max_z and percentile <= max_percentile, window mean >= min_mean_ratio."""

    min_mean_ratio: float
    max_z: float
    max_percentile: float


@dataclass(frozen=True)
class ShortPositionParams:
    """short_position_jump thresholds."""

    min_change_pct: float
    min_change_value_hkd: float
    high_weeks: int
    high_min_history: int
    high_min_value_hkd: float
    high_min_change_pct: float
    warning_change_pct: float


@dataclass(frozen=True)
class BuybackParams:
    """buyback_filed thresholds; `fx_to_hkd` holds (currency, rate) pairs."""

    warning_total_hkd: float
    fx_to_hkd: tuple[tuple[str, float], ...]

    def rate(self, currency: str | None) -> float | None:
        """HK$ per unit of `currency` (a missing currency is HK$); None when the table has no rate."""
        wanted = (currency or "HKD").upper()
        return next((rate for name, rate in self.fx_to_hkd if name.upper() == wanted), None)


@dataclass(frozen=True)
class InsiderParams:
    """insider_buy_near_round_number thresholds; `step_bands` holds (price under, step) pairs, ascending."""

    step_bands: tuple[tuple[float, float], ...]
    near_pct: float
    near_step_fraction: float
    warning_roles: tuple[str, ...]


@dataclass(frozen=True)
class SouthboundParams:
    """southbound_level thresholds."""

    levels: tuple[float, ...]
    previous_within: int
    change_sessions: int
    change_pp: float
    warning_change_pp: float


@dataclass(frozen=True)
class MarketParams:
    """market_short_swing thresholds and which market rows to read."""

    source: str
    board: str
    session: str
    change_pct: float
    mean_sessions: int
    mean_min_sessions: int
    warning_change_pct: float


@dataclass(frozen=True)
class ConfluenceParams:
    """confluence thresholds."""

    sessions: int
    min_rules: int
    warning_rules: int


@dataclass(frozen=True)
class UsShortVolumeParams:
    """US short_ratio_spike / short_ratio_drop on FINRA short volume (finra-short-volume), one table for both."""

    window: int
    max_lookback_sessions: int
    min_history: int
    min_total_volume: float
    std_floor: float
    warning_abs_z: float
    spike_min_ratio: float
    spike_min_z: float
    spike_min_percentile: float
    drop_min_mean_ratio: float
    drop_max_z: float
    drop_max_percentile: float


@dataclass(frozen=True)
class RuleParams:
    """Every rule's thresholds; attribute names are the rule ids (us_short_volume: the US short-ratio rules)."""

    short_ratio_spike: ShortRatioSpikeParams
    short_ratio_drop: ShortRatioDropParams
    short_position_jump: ShortPositionParams
    buyback_filed: BuybackParams
    insider_buy_near_round_number: InsiderParams
    southbound_level: SouthboundParams
    market_short_swing: MarketParams
    confluence: ConfluenceParams
    us_short_volume: UsShortVolumeParams


def load_params(overrides: Mapping[str, Mapping[str, object]] | None = None) -> RuleParams:
    """Read config/rules.toml and apply per-rule overrides ``{rule_id: {key: value}}``."""
    params = _defaults()
    for rule, changes in (overrides or {}).items():
        if rule not in _SECTIONS:
            raise KeyError(f"unknown rule {rule!r}; choose one of: {', '.join(_SECTIONS)}")
        current = getattr(params, rule)
        params = replace(params, **{rule: _section(rule, {**_as_raw(current), **dict(changes)})})
    return params


@cache
def _defaults() -> RuleParams:
    text = resources.files("config").joinpath("rules.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    unknown = set(table) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"config/rules.toml: unknown rule table(s) {sorted(unknown)}")
    missing = [rule for rule in _SECTIONS if rule not in table]
    if missing:
        raise ValueError(f"config/rules.toml: missing rule table(s) {missing}")
    return RuleParams(**{rule: _section(rule, table[rule]) for rule in _SECTIONS})


_SECTIONS: dict[str, type] = {f.name: typing.get_type_hints(RuleParams)[f.name] for f in fields(RuleParams)}


def _section(rule: str, raw: Mapping[str, Any]) -> Any:
    """Build one rule's dataclass from raw TOML-like values, checking names and types."""
    cls = _SECTIONS[rule]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise KeyError(f"{rule}: unknown key(s) {unknown}; valid keys: {', '.join(names)}")
    missing = [name for name in names if name not in raw]
    if missing:
        raise KeyError(f"{rule}: missing key(s) {missing}")
    try:
        return cls(**{name: _convert(raw[name], hints[name]) for name in names})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{rule}: {exc}") from None


def _convert(value: Any, hint: Any) -> Any:
    """Coerce a TOML value to the field type (int, float, str, or tuples of those)."""
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    args = typing.get_args(hint)
    if isinstance(value, Mapping):  # {USD = 7.8} → (("USD", 7.8),)
        value = list(value.items())
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(item, args[0]) for item in value)
    if len(value) != len(args):
        raise TypeError(f"expected {len(args)} items, got {value!r}")
    return tuple(_convert(item, arg) for item, arg in zip(value, args, strict=True))


def _as_raw(section: Any) -> dict[str, Any]:
    """A section's values as keyword arguments (the inverse of _section for overrides)."""
    return {f.name: getattr(section, f.name) for f in fields(section)}
