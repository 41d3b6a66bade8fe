"""Round price levels (HK$40, HK$4.50, HK$550...) and whether a price sits near one."""

from __future__ import annotations

import math
from dataclasses import dataclass

from alerts.rules.params import RuleParams, table

TABLE = "insider_buy_near_round_number"  # the round-number steps are the insider rule's thresholds


@dataclass(frozen=True)
class InsiderParams:
    """insider_buy_near_round_number thresholds; `step_bands` holds (price under, step) pairs, ascending."""

    step_bands: tuple[tuple[float, float], ...]
    near_pct: float
    near_step_fraction: float
    warning_roles: tuple[str, ...]


# Float slack so 38.5 / 0.5 or 120 / 10 never lands a hair under the integer it is.
_EPS = 1e-9


def _bands(params: RuleParams | InsiderParams | None) -> InsiderParams:
    if params is None:
        return table(TABLE, InsiderParams)
    return params.get(TABLE, InsiderParams) if isinstance(params, RuleParams) else params


def step_for(price: float, params: RuleParams | InsiderParams | None = None) -> float:
    """The round-level step for a price's magnitude (0.5 under 5, 1 under 20, 5 under 100, ...)."""
    bands = _bands(params).step_bands
    return next((step for under, step in bands if price < under), bands[-1][1])


def round_levels(price: float, params: RuleParams | InsiderParams | None = None) -> tuple[float, float]:
    """The round levels at or below and at or above a positive price (equal when the price is one)."""
    if not math.isfinite(price) or price <= 0:
        raise ValueError(f"price must be a positive number, got {price!r}")
    step = step_for(price, params)
    units = price / step
    below = math.floor(units + _EPS) * step
    above = math.ceil(units - _EPS) * step
    return round(below, 10), round(above, 10)


def nearest_round_level(
    price: float, params: RuleParams | InsiderParams | None = None
) -> tuple[float, float, str] | None:
    """(level, distance % of the level, "below"|"above") of the nearest round level the price is near, else None.

    Near means ``|price − level| <= max(near_pct % × level, near_step_fraction × step)``. The step term exists
    because a percentage alone misses what people call "just under" a coarse level: HK$38.58 is 3.55% below
    HK$40 (step 5), beyond 3%, yet within 0.3 × 5 = HK$1.50. "below" means the price is below the level.
    """
    if not isinstance(price, int | float) or not math.isfinite(price) or price <= 0:
        return None
    insider = _bands(params)
    step = step_for(price, insider)
    near: list[tuple[float, float]] = []  # (gap, level)
    for level in dict.fromkeys(round_levels(price, insider)):
        gap = abs(price - level)
        tolerance = max(insider.near_pct / 100 * level, insider.near_step_fraction * step)
        if level > 0 and gap <= tolerance + _EPS:
            near.append((gap, level))
    if not near:
        return None
    gap, level = min(near)
    return level, gap / level * 100, "below" if price < level else "above"
