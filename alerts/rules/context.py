"""What a rule sees (RuleContext), what it returns besides alerts (Note, Evaluation), and shared helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from alerts.calendar import Schedule, previous_sessions, schedule_for
from alerts.model import Alert
from alerts.sources import public_links

# Primary-source URL(s) of a source's file for a date, on its public host (Source.public_url): the link every
# alert carries unless the caller hands RuleContext another `link`. Rules build no URL themselves.
default_links = public_links


@dataclass(frozen=True)
class RuleContext:
    """The data one evaluation sees: the session `day` and every source's history known at `moment`.

    Every frame has its source's SCHEMA (``empty_frame(schema)`` when there is no data). History is context
    only: rules alert on events that belong to `day` (see each rule). `recent_alerts` are earlier days' alerts
    (confluence reads them). `codes` restricts alerts to those stock codes; the market-wide alert has the code
    ``"MARKET"`` and is kept only when that is listed too. `link(source, file_date)` gives an alert's URLs.
    """

    day: date
    quotes: pd.DataFrame
    market: pd.DataFrame
    sfc: pd.DataFrame
    buybacks: pd.DataFrame
    di: pd.DataFrame
    southbound: pd.DataFrame
    recent_alerts: tuple[Alert, ...] = ()
    codes: frozenset[str] | None = None
    link: Callable[[str, date], tuple[str, ...]] = default_links
    moment: datetime | None = None  # when this evaluation happens: frames hold only rows published by then
    # Feeds beyond the six HK ones above, by feed name (US rules: "finra", "form4", "form4_day", "form4_buys",
    # "holders_13dg").
    feeds: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    def feed(self, name: str) -> pd.DataFrame:
        """A feed's frame by name: one of the HK fields above, else from `feeds` (KeyError when absent)."""
        if name in self.feeds:
            return self.feeds[name]
        if name in CONTEXT_FIELDS:
            frame: pd.DataFrame = getattr(self, name)
            return frame
        raise KeyError(f"this evaluation has no feed {name!r}")


# The HK feeds every rule context carries as fields (other feeds travel in RuleContext.feeds).
CONTEXT_FIELDS = frozenset({"quotes", "market", "sfc", "buybacks", "di", "southbound"})


@dataclass(frozen=True)
class Note:
    """Why a rule said nothing where it might have (e.g. too little history)."""

    rule: str
    code: str
    reason: str


@dataclass(frozen=True)
class Evaluation:
    """Alerts and notes of one day."""

    alerts: tuple[Alert, ...]
    notes: tuple[Note, ...]


RuleResult = tuple[list[Alert], list[Note]]
Rule = Callable[..., RuleResult]


def quiet(rule: Rule) -> Rule:
    """Run a rule with numpy's NaN/inf arithmetic warnings off: rules test isfinite explicitly instead."""

    @functools.wraps(rule)
    def run(*args: Any, **kwargs: Any) -> RuleResult:
        with np.errstate(all="ignore"):
            return rule(*args, **kwargs)

    return run


# ---- frame helpers -------------------------------------------------------------------------------------------


def floats(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing (works for Int64 and float64)."""
    return series.to_numpy(dtype="float64", na_value=np.nan)


def strings(series: pd.Series) -> np.ndarray:
    """A string column as an object array with None for missing (for the few rows of one day)."""
    values = series.to_numpy(dtype=object)
    missing = series.isna().to_numpy(dtype=bool)
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values


def keys(series: pd.Series) -> np.ndarray:
    """A string column as an object array, missing left as pd.NA: no copy, only for index lookups."""
    return series.to_numpy(dtype=object)


def days64(series: pd.Series) -> np.ndarray:
    """A datetime column as datetime64[ns] (NaT for missing)."""
    return series.to_numpy(dtype="datetime64[ns]")


def as64(day: date) -> np.datetime64:
    """A calendar date as numpy datetime64[ns]."""
    return np.datetime64(day, "ns")


def to_date(value: np.datetime64 | pd.Timestamp) -> date:
    """A numpy/pandas timestamp as a calendar date."""
    return pd.Timestamp(value).date()


def allowed(ctx: RuleContext, codes: np.ndarray) -> np.ndarray:
    """Boolean mask of `codes` (object array) that the context's code filter keeps; None codes never pass."""
    present = np.array([isinstance(code, str) for code in codes], dtype=bool)
    if ctx.codes is None:
        return present
    return present & (pd.Index(list(ctx.codes), dtype=object).get_indexer(codes) >= 0)


@lru_cache(maxsize=512)
def sessions_back(day: date, count: int) -> tuple[date, ...]:
    """The `count` XHKG sessions on or before `day` (oldest first; `day` itself only when it is a session)."""
    return tuple(previous_sessions(day, count)) if count > 0 else ()


def published(source: str, day: date) -> datetime:
    """When the source's file for `day` is published (timezone-aware)."""
    return _schedule(source).published_at(day)


@lru_cache(maxsize=16)
def _schedule(source: str) -> Schedule:
    return schedule_for(source)


# ---- text helpers --------------------------------------------------------------------------------------------


def money(value: float, currency: str | None = "HKD") -> str:
    """``HK$36.6bn`` / ``HK$7.24bn`` / ``HK$158.5m`` / ``USD 1.20bn`` / ``HK$63.68``."""
    prefix = "HK$" if (currency or "HKD").upper() == "HKD" else f"{currency} "
    if not np.isfinite(value):
        return f"{prefix}n/a"
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size >= 1e10:
        return f"{sign}{prefix}{size / 1e9:,.1f}bn"
    if size >= 1e9:
        return f"{sign}{prefix}{size / 1e9:,.2f}bn"
    if size >= 1e6:
        return f"{sign}{prefix}{size / 1e6:,.1f}m"
    return f"{sign}{prefix}{size:,.2f}"


def price(value: float, currency: str | None = "HKD") -> str:
    """``HK$38.58`` / ``HK$40`` (whole numbers without decimals) / ``USD 12.5``."""
    prefix = "HK$" if (currency or "HKD").upper() == "HKD" else f"{currency} "
    return prefix + plain(value)


def plain(value: float) -> str:
    """A price without currency: ``38.58`` / ``40`` / ``0.355`` / ``1,234.5``."""
    if not np.isfinite(value):
        return "n/a"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4f}".rstrip("0")


def count(value: float) -> str:
    """``2,600,000`` for a whole number of shares/stocks."""
    return f"{value:,.0f}" if np.isfinite(value) else "n/a"


def signed_pct(value: float, digits: int = 1) -> str:
    """``+25.3%`` / ``-37.7%``."""
    return f"{value:+.{digits}f}%" if np.isfinite(value) else "n/a"


def ordinal(value: int) -> str:
    """``1st`` / ``2nd`` / ``97th``."""
    suffix = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{value}{suffix}"


def rounded(value: float, digits: int = 2) -> float | str:
    """A number rounded for a Fact; ``"n/a"`` when missing or infinite (facts must stay valid JSON)."""
    return round(float(value), digits) if np.isfinite(value) else "n/a"


def first_text(values: Iterable[object], default: str = "") -> str:
    """The first non-empty string among `values`."""
    return next((str(v) for v in values if isinstance(v, str) and v.strip()), default)
