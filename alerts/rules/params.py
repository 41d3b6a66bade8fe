"""Rule thresholds: each rule's spec names its config/rules.toml tables and the frozen dataclasses holding them.

`RuleParams` carries every table by name; rules read theirs with `params.get(table, cls)` (typed). The loader
(`build`) checks names and types; `alerts.rules.load_params` builds it for every registered rule.
"""

from __future__ import annotations

import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from functools import cache
from importlib import resources
from typing import Any, TypeVar

T = TypeVar("T")


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


class RuleParams:
    """Every rule's thresholds by config/rules.toml table name; immutable and hashable."""

    __slots__ = ("_tables",)

    def __init__(self, tables: Mapping[str, object]) -> None:
        object.__setattr__(self, "_tables", dict(tables))

    def get(self, table: str, cls: type[T]) -> T:
        """The table `table` as its dataclass `cls` (KeyError for a table no rule declares)."""
        value = self._tables[table]
        if not isinstance(value, cls):
            raise TypeError(f"rule table {table!r} holds {type(value).__name__}, not {cls.__name__}")
        return value

    @property
    def tables(self) -> tuple[str, ...]:
        """Table names in registry order."""
        return tuple(self._tables)

    def replace(self, table: str, value: object) -> RuleParams:
        """A copy with one table replaced."""
        return RuleParams({**self._tables, table: value})

    def __getattr__(self, name: str) -> Any:
        # params.short_ratio_spike reads like the table it is; rules use get() for the type.
        try:
            return self._tables[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("RuleParams is immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleParams) and self._tables == other._tables

    def __hash__(self) -> int:
        return hash(tuple(self._tables.items()))

    def __repr__(self) -> str:
        return f"RuleParams({self._tables!r})"


def build(
    sections: Mapping[str, type], overrides: Mapping[str, Mapping[str, object]] | None = None
) -> RuleParams:
    """Every table of `sections` from config/rules.toml, with per-table overrides ``{table: {key: value}}``."""
    params = _defaults(tuple(sections.items()))
    for rule, changes in (overrides or {}).items():
        if rule not in sections:
            raise KeyError(f"unknown rule {rule!r}; choose one of: {', '.join(sections)}")
        current = getattr(params, rule)
        params = params.replace(rule, _section(rule, sections[rule], {**_as_raw(current), **dict(changes)}))
    return params


def table(name: str, cls: type[T]) -> T:
    """One table's defaults from config/rules.toml, without the registry (round-number helpers use it)."""
    value: T = _section(name, cls, _raw_table(name, cls))
    return value


@cache
def _toml() -> dict[str, Any]:
    text = resources.files("config").joinpath("rules.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _raw_table(name: str, cls: type) -> Mapping[str, Any]:
    """The TOML table `name`; a rule whose dataclass gives every default may leave its table out."""
    raw = _toml().get(name)
    if raw is not None:
        return raw
    if all(f.default is not MISSING for f in fields(cls)):
        return {f.name: f.default for f in fields(cls)}
    raise ValueError(f"config/rules.toml: missing rule table(s) [{name!r}]")


@cache
def _defaults(sections: tuple[tuple[str, type], ...]) -> RuleParams:
    unknown = set(_toml()) - {name for name, _ in sections}
    if unknown:
        raise ValueError(f"config/rules.toml: unknown rule table(s) {sorted(unknown)}")
    return RuleParams({name: _section(name, cls, _raw_table(name, cls)) for name, cls in sections})


def _section(rule: str, cls: type, raw: Mapping[str, Any]) -> Any:
    """Build one rule's dataclass from raw TOML-like values, checking names and types."""
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
