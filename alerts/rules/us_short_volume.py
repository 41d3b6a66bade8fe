"""US short_ratio_spike / short_ratio_drop: a symbol's FINRA short-volume ratio today vs its own trailing window.

Same tests as the HK rules (short_ratio.py, whose vectorized core this reuses); thresholds in the
`[us_short_volume]` table of config/rules.toml. Differences:
- ratio = ShortVolume / TotalVolume of the FINRA Reg SHO daily file (finra-short-volume). That is short VOLUME
  (trades flagged short that day, market makers' hedging included), not short interest; every alert says so.
- floors: today's FINRA-reported total volume >= `min_total_volume` shares (no HK$ turnover, no counters).
- window = the last `window` XNYS sessions before `day` with a ratio, within `max_lookback_sessions` sessions.
- alerts carry market "US" and the symbol verbatim as their code ("BRK/B").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from alerts.calendar import previous_sessions
from alerts.model import Alert, Fact
from alerts.rules.context import (
    Note,
    RuleContext,
    RuleResult,
    as64,
    days64,
    default_links,
    floats,
    keys,
    published,
    quiet,
    rounded,
    strings,
)
from alerts.rules.params import RuleParams, UsShortVolumeParams
from alerts.rules.short_ratio import (
    DROP,
    SPIKE,
    WindowStats,
    drop_flags,
    rank_phrase,
    spike_flags,
    trailing_matrix,
    window_facts,
    window_stats,
)
from alerts.rules.short_ratio import SPEC as SHORT_RATIO
from alerts.rules.spec import RuleSpec
from alerts.sources import finra_short_volume

SOURCE = finra_short_volume.NAME
MARKET = "US"
CALENDAR = "XNYS"
NOT_SHORT_INTEREST = "(short volume, not short interest)"
# The FINRA file's URL on its public host, like every rule's default link (kept under this name for callers).
finra_links = default_links


@dataclass(frozen=True)
class _Today:
    """Today's eligible rows (one per symbol): with a ratio and the total-volume floor met."""

    symbols: np.ndarray
    ratio: np.ndarray
    short: np.ndarray
    exempt: np.ndarray
    total: np.ndarray


@quiet
def evaluate_us_short_volume(
    finra: pd.DataFrame,
    day: date,
    params: RuleParams,
    *,
    codes: frozenset[str] | None = None,
    link: Callable[[str, date], tuple[str, ...]] = finra_links,
) -> tuple[list[Alert], list[Note]]:
    """Spike and drop alerts (market "US") for `day` from the finra-short-volume history up to `day`.

    `finra` has finra_short_volume.SCHEMA (any number of days); `codes` keeps only those symbols; `link` gives
    an alert's URLs as RuleContext.link does.
    """
    p = params.get(TABLE, UsShortVolumeParams)
    today = _today(finra, day, p, codes)
    stats = _window_stats(finra, day, p, today)
    fire_up, thin_up = spike_flags(
        today.ratio,
        stats,
        min_ratio=p.spike_min_ratio,
        min_history=p.min_history,
        min_z=p.spike_min_z,
        min_percentile=p.spike_min_percentile,
    )
    fire_down, thin_down = drop_flags(
        stats,
        min_mean_ratio=p.drop_min_mean_ratio,
        min_history=p.min_history,
        max_z=p.drop_max_z,
        max_percentile=p.drop_max_percentile,
    )
    alerts: list[Alert] = []
    notes: list[Note] = []
    for rule, fire, thin in ((SPIKE, fire_up, thin_up), (DROP, fire_down, thin_down)):
        alerts += [_alert(rule, day, p, today, stats, int(i), link) for i in np.flatnonzero(fire)]
        notes += [_short_history(rule, today.symbols[i], int(stats.n[i]), p) for i in np.flatnonzero(thin)]
    return alerts, notes


def _today(finra: pd.DataFrame, day: date, p: UsShortVolumeParams, codes: frozenset[str] | None) -> _Today:
    """Today's candidate rows, read as arrays (the history frame is large, today's rows are a few thousand)."""
    at = np.flatnonzero(days64(finra["date"]) == as64(day))

    def column(name: str) -> np.ndarray:
        return floats(finra[name])[at]

    symbols = strings(finra["symbol"].iloc[at])
    ratio, total = column("short_ratio"), column("total_volume")
    keep = np.array([isinstance(s, str) and s != "" for s in symbols], dtype=bool)
    if codes is not None:
        keep &= pd.Index(list(codes), dtype=object).get_indexer(symbols) >= 0
    keep &= np.isfinite(ratio) & (total >= p.min_total_volume)
    keep &= (
        ~pd.Series(symbols, dtype=object).duplicated(keep="last").to_numpy()
    )  # a re-read file: last row wins
    return _Today(
        symbols=symbols[keep],
        ratio=ratio[keep],
        short=column("short_volume")[keep],
        exempt=column("short_exempt_volume")[keep],
        total=total[keep],
    )


def _window_stats(finra: pd.DataFrame, day: date, p: UsShortVolumeParams, today: _Today) -> WindowStats:
    """Statistics of each candidate's ratio over the XNYS sessions before `day`."""
    sessions = _sessions_before(day, p.max_lookback_sessions)
    matrix = trailing_matrix(
        days64(finra["date"]), keys(finra["symbol"]), finra["short_ratio"], sessions, day, today.symbols
    )
    return window_stats(matrix, today.ratio, p.window, p.std_floor)


@lru_cache(maxsize=512)
def _sessions_before(day: date, count: int) -> tuple[date, ...]:
    """The `count` XNYS sessions strictly before `day`, oldest first."""
    if count <= 0:
        return ()
    return tuple(s for s in previous_sessions(day, count + 1, CALENDAR) if s < day)[-count:]


def _short_history(rule: str, symbol: str, n: int, p: UsShortVolumeParams) -> Note:
    return Note(
        rule,
        symbol,
        f"only {n} of {p.min_history} sessions of short-volume history needed "
        f"(last {p.max_lookback_sessions} {CALENDAR} sessions)",
    )


def _alert(
    rule: str,
    day: date,
    p: UsShortVolumeParams,
    today: _Today,
    stats: WindowStats,
    i: int,
    link: Callable[[str, date], tuple[str, ...]],
) -> Alert:
    """Build one alert from row `i` of the candidates."""
    ratio, mean, z, n = today.ratio[i] * 100, stats.mean[i] * 100, float(stats.z[i]), int(stats.n[i])
    percentile = float(stats.percentile[i])
    side = "above" if z >= 0 else "below"
    why = (
        f"short volume {ratio:.1f}% of FINRA-reported volume = {rank_phrase(percentile, n)}, "
        f"{abs(z):.1f}σ {side} the {n}-session mean of {mean:.1f}%; "
        f"{_shares(today.short[i])} of {_shares(today.total[i])} shares {NOT_SHORT_INTEREST}"
    )
    return Alert(
        rule=rule,
        code=str(today.symbols[i]),
        trade_date=day,
        severity="warning" if abs(z) >= p.warning_abs_z else "notice",
        why=why,
        facts=(
            *window_facts(stats, i, ratio),
            Fact("short_volume", rounded(today.short[i], 0), "shares"),
            Fact("short_exempt_volume", rounded(today.exempt[i], 0), "shares"),
            Fact("total_volume", rounded(today.total[i], 0), "shares"),
        ),
        links=tuple(link(SOURCE, day)),
        published_at=published(SOURCE, day),
        market=MARKET,
    )


def _shares(value: float) -> str:
    """``18.6m`` / ``1.23bn`` / ``512,300`` shares."""
    if not np.isfinite(value):
        return "n/a"
    if value >= 1e9:
        return f"{value / 1e9:.2f}bn"
    if value >= 1e6:
        return f"{value / 1e6:.1f}m"
    return f"{value:,.0f}"


TABLE = "us_short_volume"  # one thresholds table for the US spike and drop


def _signal(ctx: RuleContext, params: RuleParams) -> RuleResult:
    """Spike and drop alerts from the finra-short-volume history in the context ("finra")."""
    return evaluate_us_short_volume(ctx.feed("finra"), ctx.day, params, codes=ctx.codes, link=ctx.link)


SPEC = RuleSpec(
    name=TABLE,
    kinds=SHORT_RATIO.kinds,
    markets=("US",),
    params={TABLE: UsShortVolumeParams},
    signal=_signal,
    feeds=("finra",),
    triggers=(SOURCE,),
    caveat_key="caveat.us_short_volume",  # short volume is not short interest
)
