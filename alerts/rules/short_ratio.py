"""short_ratio_spike / short_ratio_drop: a stock's short ratio today vs its own trailing window (hkex-quotes).

Definitions (thresholds in config/rules.toml):
- ratio = short_value / total_value of the session (0..1), as hkex-quotes computes it; NaN (no short selling
  listed, suspended, no turnover) means "no signal", never zero.
- window = the last `window` sessions before `day` that have a ratio, within `max_lookback_sessions` XHKG sessions.
- z = (today − window mean) / max(POPULATION std of the window, std_floor): population because the window is
  the whole reference set, not a sample of a larger one; the floor stops near-constant windows from producing
  huge z on tiny moves.
- percentile = 100 × (window values strictly BELOW today) / window size: a spike needs today above nearly all
  of them; a drop at 0 means nothing in the window was lower.
- RMB/USD counters (non_hkd) are skipped, not folded: their HKD counter is quoted separately with its own ratio
  and carries the signal. Suspended rows and rows without a ratio never alert.

The window statistics and the spike/drop tests are a market-neutral core (`trailing_matrix`, `window_stats`,
`spike_flags`, `drop_flags`, `rank_phrase`) that the US short-volume rule (us_short_volume.py) reuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from alerts.model import Alert, Fact
from alerts.rules.context import (
    Note,
    RuleContext,
    RuleResult,
    allowed,
    as64,
    days64,
    floats,
    keys,
    money,
    ordinal,
    published,
    quiet,
    rounded,
    sessions_back,
    strings,
)
from alerts.rules.params import RuleParams
from alerts.rules.spec import AlertKind, RuleSpec, pressure_unless_falling, supportive


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


SPIKE = "short_ratio_spike"
DROP = "short_ratio_drop"
SOURCE = "hkex-quotes"


@dataclass(frozen=True)
class _Today:
    """Today's eligible rows (one per code): HKD counters, not suspended, with a ratio, turnover floor met."""

    codes: np.ndarray
    names: np.ndarray
    ratio: np.ndarray
    short_value: np.ndarray
    turnover: np.ndarray


@dataclass(frozen=True)
class WindowStats:
    """Window statistics per candidate (same order as the candidates)."""

    n: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    z: np.ndarray
    percentile: np.ndarray


@quiet
def evaluate_short_ratio_spike(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Unusually high short ratio today vs the stock's own window."""
    p = params.get(SPIKE, ShortRatioSpikeParams)
    return _spike(ctx, p, _today(ctx, p.min_turnover_hkd))


@quiet
def evaluate_short_ratio_drop(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Unusually low short ratio today (covering) vs the stock's own window."""
    p = params.get(DROP, ShortRatioDropParams)
    return _drop(ctx, p, _today(ctx, p.min_turnover_hkd))


@quiet
def evaluate_short_ratio(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Both rules, sharing today's rows and the window statistics when their window settings agree."""
    spike_p, drop_p = params.get(SPIKE, ShortRatioSpikeParams), params.get(DROP, ShortRatioDropParams)
    if _window_key(spike_p) != _window_key(drop_p):
        spike, drop = evaluate_short_ratio_spike(ctx, params), evaluate_short_ratio_drop(ctx, params)
        return spike[0] + drop[0], spike[1] + drop[1]
    today = _today(ctx, spike_p.min_turnover_hkd)
    stats = _window_stats(ctx, spike_p, today)
    spike = _spike(ctx, spike_p, today, stats)
    drop = _drop(ctx, drop_p, today, stats)
    return spike[0] + drop[0], spike[1] + drop[1]


def _window_key(p: ShortRatioWindow) -> tuple[object, ...]:
    return (p.window, p.max_lookback_sessions, p.min_turnover_hkd, p.std_floor)


def _today(ctx: RuleContext, min_turnover: float) -> _Today:
    """Today's candidate rows (columns read as arrays: the history frame is large, rows are few)."""
    quotes = ctx.quotes
    at = np.flatnonzero(days64(quotes["date"]) == as64(ctx.day))

    def column(name: str) -> np.ndarray:
        return floats(quotes[name])[at]

    codes = strings(quotes["code"].iloc[at])
    ratio = column("short_ratio")
    turnover = column("turnover")
    turnover = np.where(np.isfinite(turnover), turnover, column("total_value"))
    keep = (
        allowed(ctx, codes)
        & ~quotes["non_hkd"].to_numpy(dtype=bool)[at]
        & ~quotes["suspended"].to_numpy(dtype=bool)[at]
        & np.isfinite(ratio)
        & (turnover >= min_turnover)
    )
    keep &= ~pd.Series(codes).duplicated(keep="last").to_numpy()  # a re-read file: its last row wins
    return _Today(
        codes=codes[keep],
        names=strings(quotes["name"].iloc[at])[keep],
        ratio=ratio[keep],
        short_value=column("short_value")[keep],
        turnover=turnover[keep],
    )


def _window_stats(ctx: RuleContext, p: ShortRatioWindow, today: _Today) -> WindowStats:
    """Trailing-window statistics of the candidates over the XHKG sessions before the day."""
    sessions = [s for s in sessions_back(ctx.day, p.max_lookback_sessions + 1) if s < ctx.day]
    sessions = sessions[-p.max_lookback_sessions :] if p.max_lookback_sessions > 0 else []
    quotes = ctx.quotes
    matrix = trailing_matrix(
        days64(quotes["date"]), keys(quotes["code"]), quotes["short_ratio"], sessions, ctx.day, today.codes
    )
    return window_stats(matrix, today.ratio, p.window, p.std_floor)


def trailing_matrix(
    dates: np.ndarray,
    codes: np.ndarray,
    ratios: pd.Series,
    sessions: Sequence[date],
    day: date,
    wanted: np.ndarray,
) -> np.ndarray:
    """Session × wanted-code matrix of ratios (NaN where none): one pass over the history, no per-code loop.

    `dates`/`codes` are the history's columns as arrays, `ratios` its ratio column; rows dated on a day that
    is not in `sessions` (oldest first, all before `day`) are ignored; a later row of the same cell wins.
    """
    matrix = np.full((len(sessions), len(wanted)), np.nan)
    if not sessions or not len(wanted):
        return matrix
    grid = np.array([as64(s) for s in sessions], dtype="datetime64[ns]")
    in_span = (dates >= grid[0]) & (dates < as64(day))
    column = pd.Index(wanted, dtype=object).get_indexer(codes[in_span])
    row = np.searchsorted(grid, dates[in_span])
    row_ok = row < len(grid)
    row_ok[row_ok] = grid[row[row_ok]] == dates[in_span][row_ok]  # rows dated on a non-session are ignored
    hit = (column >= 0) & row_ok
    matrix[row[hit], column[hit]] = floats(ratios)[in_span][hit]
    return matrix


def window_stats(matrix: np.ndarray, today: np.ndarray, window: int, std_floor: float) -> WindowStats:
    """Mean, population std, z and percentile of today vs the last `window` finite values of each column."""
    valid = np.isfinite(matrix)
    from_end = np.cumsum(valid[::-1], axis=0)[::-1]  # finite values at or after each row
    used = valid & (from_end <= window)
    n = used.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        values = np.where(used, matrix, 0.0)
        mean = values.sum(axis=0) / n
        var = np.where(used, (matrix - mean) ** 2, 0.0).sum(axis=0) / n
        std = np.sqrt(var)
        z = (today - mean) / np.maximum(std, std_floor)
        percentile = 100.0 * (used & (matrix < today)).sum(axis=0) / n
    return WindowStats(n=n, mean=mean, std=std, z=z, percentile=percentile)


def spike_flags(
    today: np.ndarray,
    stats: WindowStats,
    *,
    min_ratio: float,
    min_history: int,
    min_z: float,
    min_percentile: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(fire, too little history) masks of the spike test: ratio floor, then z AND percentile."""
    candidate = today >= min_ratio
    enough = stats.n >= min_history
    return candidate & enough & (stats.z >= min_z) & (stats.percentile >= min_percentile), candidate & ~enough


def drop_flags(
    stats: WindowStats, *, min_mean_ratio: float, min_history: int, max_z: float, max_percentile: float
) -> tuple[np.ndarray, np.ndarray]:
    """(fire, too little history) masks of the drop test, only for codes whose window mean is high enough."""
    usual = (stats.n > 0) & (stats.mean >= min_mean_ratio)  # only stocks that are usually shorted
    enough = stats.n >= min_history
    return usual & enough & (stats.z <= max_z) & (stats.percentile <= max_percentile), usual & ~enough


def window_facts(stats: WindowStats, i: int, ratio_pct: float) -> tuple[Fact, ...]:
    """Today's ratio (in %) and its trailing-window statistics as facts: shared by the HK and US alerts."""
    return (
        Fact("short_ratio", rounded(ratio_pct), "%"),
        Fact("window_mean", rounded(stats.mean[i] * 100), "%"),
        Fact("window_std", rounded(stats.std[i] * 100), "pp"),
        Fact("z", rounded(float(stats.z[i])), "σ"),
        Fact("percentile", rounded(float(stats.percentile[i]), 1), "%"),
        Fact("window", int(stats.n[i]), "sessions"),
    )


def rank_phrase(percentile: float, n: int) -> str:
    """``highest of 60 sessions`` / ``lowest of 60 sessions`` / ``97th percentile of 60 sessions``."""
    if percentile >= 100:
        return f"highest of {n} sessions"
    if percentile <= 0:
        return f"lowest of {n} sessions"
    return f"{ordinal(int(percentile))} percentile of {n} sessions"


def _spike(
    ctx: RuleContext, p: ShortRatioSpikeParams, today: _Today, stats: WindowStats | None = None
) -> RuleResult:
    stats = _window_stats(ctx, p, today) if stats is None else stats
    fire, thin = spike_flags(
        today.ratio,
        stats,
        min_ratio=p.min_ratio,
        min_history=p.min_history,
        min_z=p.min_z,
        min_percentile=p.min_percentile,
    )
    notes = [_short_history(SPIKE, today.codes[i], int(stats.n[i]), p) for i in np.flatnonzero(thin)]
    return [_alert(ctx, SPIKE, p, today, stats, int(i)) for i in np.flatnonzero(fire)], notes


def _drop(
    ctx: RuleContext, p: ShortRatioDropParams, today: _Today, stats: WindowStats | None = None
) -> RuleResult:
    stats = _window_stats(ctx, p, today) if stats is None else stats
    fire, thin = drop_flags(
        stats,
        min_mean_ratio=p.min_mean_ratio,
        min_history=p.min_history,
        max_z=p.max_z,
        max_percentile=p.max_percentile,
    )
    notes = [_short_history(DROP, today.codes[i], int(stats.n[i]), p) for i in np.flatnonzero(thin)]
    return [_alert(ctx, DROP, p, today, stats, int(i)) for i in np.flatnonzero(fire)], notes


def _short_history(rule: str, code: str, n: int, p: ShortRatioWindow) -> Note:
    return Note(
        rule,
        code,
        f"only {n} of {p.min_history} sessions of short-ratio history needed "
        f"(last {p.max_lookback_sessions} sessions)",
    )


def _alert(
    ctx: RuleContext, rule: str, p: ShortRatioWindow, today: _Today, stats: WindowStats, i: int
) -> Alert:
    """Build one alert from row `i` of the candidates."""
    ratio, mean, z, n = today.ratio[i] * 100, stats.mean[i] * 100, float(stats.z[i]), int(stats.n[i])
    percentile = float(stats.percentile[i])
    rank = rank_phrase(percentile, n)
    side = "above" if z >= 0 else "below"
    why = (
        f"short ratio {ratio:.1f}% = {rank}, {abs(z):.1f}σ {side} the {n}-session mean of {mean:.1f}% "
        f"({money(today.short_value[i])} shorted of {money(today.turnover[i])} turnover)"
    )
    return Alert(
        rule=rule,
        code=str(today.codes[i]),
        name=str(today.names[i] or ""),
        trade_date=ctx.day,
        severity="warning" if abs(z) >= p.warning_abs_z else "notice",
        why=why,
        facts=(
            *window_facts(stats, i, ratio),
            Fact("short_value", rounded(today.short_value[i], 0), "HKD"),
            Fact("turnover", rounded(today.turnover[i], 0), "HKD"),
        ),
        links=ctx.link(SOURCE, ctx.day),
        published_at=published(SOURCE, ctx.day),
    )


SPEC = RuleSpec(
    name="short_ratio",
    kinds=(
        AlertKind(
            SPIKE, "🔺", ("short_ratio", "z", "percentile"), pressure_unless_falling("z"), chart="short"
        ),
        AlertKind(DROP, "🔻", ("short_ratio", "z", "percentile"), supportive, chart="short"),
    ),
    markets=("HK",),
    params={SPIKE: ShortRatioSpikeParams, DROP: ShortRatioDropParams},
    signal=evaluate_short_ratio,
    feeds=("quotes",),
)
