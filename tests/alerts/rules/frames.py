"""Builders for rule tests: schema-conformed frames from a few dicts, contexts, and hypothesis strategies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from alerts.calendar import previous_sessions
from alerts.rules import RuleContext
from alerts.rules.context import CONTEXT_FIELDS
from alerts.sources.common import conform, empty_frame
from alerts.sources.hkex_buybacks import SCHEMA as BUYBACKS
from alerts.sources.hkex_di import SCHEMA as DI
from alerts.sources.hkex_quotes import SCHEMA as QUOTES
from alerts.sources.hkex_short import MARKET_SCHEMA as MARKET
from alerts.sources.hkex_southbound import SCHEMA as SOUTHBOUND
from alerts.sources.hkex_stock_connect_daily import SCHEMA as SOUTHBOUND_FLOW
from alerts.sources.sfc_short_positions import SCHEMA as SFC

SCHEMAS: dict[str, Mapping[str, str]] = {
    "quotes": QUOTES,
    "market": MARKET,
    "sfc": SFC,
    "buybacks": BUYBACKS,
    "di": DI,
    "southbound": SOUTHBOUND,
    "southbound_flow": SOUTHBOUND_FLOW,  # not a RuleContext field: it travels in RuleContext.feeds
}
DAY = date(2025, 11, 27)  # a Thursday session


def frame(kind: str, rows: Sequence[Mapping[str, Any]], **defaults: Any) -> pd.DataFrame:
    """A frame of `kind`'s schema from partial rows (missing columns → NA / False / defaults)."""
    schema = SCHEMAS[kind]
    if not rows:
        return empty_frame(schema)
    full = [
        {col: row.get(col, defaults.get(col, _blank(dtype))) for col, dtype in schema.items()} for row in rows
    ]
    return conform(pd.DataFrame(full, columns=list(schema)), schema)


def _blank(dtype: str) -> Any:
    return False if dtype == "bool" else None


def context(day: date = DAY, **frames: Any) -> RuleContext:
    """A RuleContext for `day` with the given frames (others empty) and any other RuleContext field."""
    data = {kind: empty_frame(schema) for kind, schema in SCHEMAS.items()}
    data.update({k: v for k, v in frames.items() if k in SCHEMAS})
    extra = {k: v for k, v in frames.items() if k not in SCHEMAS}
    fields = {k: v for k, v in data.items() if k in CONTEXT_FIELDS}
    feeds = {k: v for k, v in data.items() if k not in CONTEXT_FIELDS}
    return RuleContext(day=day, **fields, **{"feeds": feeds, **extra})


def sessions_before(day: date, count: int) -> list[date]:
    """The `count` sessions strictly before `day`, oldest first."""
    return [s for s in previous_sessions(day, count + 1) if s < day][-count:]


def quote_rows(
    code: str, ratios: Sequence[float | None], days: Sequence[date], **fixed: Any
) -> list[dict[str, Any]]:
    """hkex-quotes rows of one stock: one per day with the given short ratio (turnover HK$100m)."""
    rows = []
    for day, ratio in zip(days, ratios, strict=True):
        turnover = fixed.get("turnover", 100_000_000.0)
        shorted = ratio is not None
        rows.append(
            {
                "date": day,
                "code": code,
                "name": fixed.get("name", f"STOCK {code}"),
                "currency": "HKD",
                "close": 10.0,
                "turnover": turnover,
                "suspended": fixed.get("suspended", False),
                "short_value": ratio * turnover if shorted else None,
                "total_value": turnover if shorted else None,
                "short_ratio": ratio,
                "non_hkd": fixed.get("non_hkd", False),
            }
        )
    return rows


# ---- hypothesis: random well-typed frames --------------------------------------------------------------------

_CODES = ["00001", "00700", "01810", "09988", "80001", "MARKET", ""]
_CHOICES: dict[str, list[Any]] = {
    "board": ["main", "gem", "x"],
    "session": ["close", "morning"],
    "direction": ["buy", "sell", "other"],
    "position": ["L", "S", "P"],
    "role": ["director", "substantial_shareholder", "other"],
    "currency": ["HKD", "USD", "RMB", "GBP"],
    "channel": ["SSE Southbound", "SZSE Southbound", "SSE Northbound", "x"],
}
_NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=0, max_value=1e12),
    st.sampled_from([0.0, 0.05, 0.3, 5.0, 38.58, 40.0, 1e9]),
)
_COUNTS = st.one_of(
    st.none(), st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from([0, 1, 2_600_000])
)


def _dates(day: date) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.sampled_from([day - timedelta(days=n) for n in range(0, 15)]),
        st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
    )


def _value(column: str, dtype: str, day: date) -> st.SearchStrategy[Any]:
    if column in _CHOICES:
        return st.one_of(st.none(), st.sampled_from(_CHOICES[column]), st.text(max_size=3))
    if column == "code" or column == "hkd_code":
        return st.one_of(st.none(), st.sampled_from(_CODES))
    if dtype == "datetime64[ns]":
        return _dates(day)
    if dtype == "Int64":
        return _COUNTS
    if dtype == "float64":
        return _NUMBERS
    if dtype == "bool":
        return st.booleans()
    return st.one_of(st.none(), st.text(max_size=12))


def frames(kind: str, day: date = DAY, max_rows: int = 25) -> st.SearchStrategy[pd.DataFrame]:
    """Random frames with `kind`'s schema and dtypes (NA, NaN, inf, odd codes and dates included)."""
    schema = SCHEMAS[kind]
    row = st.fixed_dictionaries({col: _value(col, dtype, day) for col, dtype in schema.items()})
    return st.lists(row, max_size=max_rows).map(lambda rows: frame(kind, rows))


def days() -> st.SearchStrategy[date]:
    """Evaluation days: mostly near DAY (sessions and holidays), sometimes anywhere in the calendar's span."""
    return st.one_of(
        st.sampled_from([DAY - timedelta(days=n) for n in range(0, 10)]),
        st.dates(min_value=date(2005, 1, 1), max_value=date(2026, 6, 30)),
    )
