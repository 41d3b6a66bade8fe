"""Figures for one stock from History frames: the positioning card's sections and the flow decomposition.

Pure pandas (no Telegram, no Redis): `bot/answers.py` formats what these functions return, in either language.
Every function takes the frames of `alerts.history.History` (the `short` and `short_midday` frames of
`hkex-short` and `hkex-short-midday` may be empty) and returns None, or a figure set with None in a field, where
the data are missing — never raises on gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from alerts.rules import load_params, round_levels
from alerts.rules.short_ratio import window_stats
from alerts.sources.hkex_stock_connect_daily import SOUTHBOUND as SOUTHBOUND_CHANNELS

Frames = Mapping[str, pd.DataFrame]
WINDOW_SESSIONS = 60  # the short-ratio window, as in config/rules.toml [short_ratio_spike] window
STD_FLOOR = 0.005  # as [short_ratio_spike] std_floor: a near-constant window does not give a huge z
BUYBACK_SESSIONS = 20
DEALING_DAYS = 60
SOUTHBOUND_SESSIONS = 5


def _rows(frames: Frames, feed: str, code: str) -> pd.DataFrame:
    frame = frames.get(feed)
    if frame is None or frame.empty:
        return pd.DataFrame()
    return frame[frame["code"] == code]


def _float(value: object) -> float | None:
    """A finite float, or None for NA/NaN/None."""
    if value is None or value is pd.NA:
        return None
    if not isinstance(value, int | float | str | np.number):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _day(value: object) -> date:
    if not isinstance(value, date | str | np.datetime64):
        raise TypeError(f"not a date: {value!r}")
    return pd.Timestamp(value).date()


@dataclass(frozen=True)
class ShortFigures:
    """The latest short ratio of a stock (0..1) and where it sits in its own previous sessions."""

    day: date
    ratio: float
    short_value: float | None
    turnover: float | None
    window: int  # ratios in the window (the previous sessions that have one, at most WINDOW_SESSIONS)
    percentile: float | None  # % of window ratios strictly below today's (None below 2 values)
    z: float | None


def short_figures(
    frames: Frames, code: str, *, window: int = WINDOW_SESSIONS, std_floor: float = STD_FLOOR
) -> ShortFigures | None:
    """Latest ratio, its percentile and z against the previous `window` ratios (the rules' definitions)."""
    quotes = _rows(frames, "quotes", code)
    if quotes.empty:
        return None
    quotes = quotes[quotes["short_ratio"].notna()].sort_values("date", kind="stable")
    if quotes.empty:
        return None
    last = quotes.iloc[-1]
    ratio = float(last["short_ratio"])
    past = quotes["short_ratio"].iloc[:-1].to_numpy(dtype=float)[-window:]
    percentile = z = None
    if len(past) >= 2:
        stats = window_stats(past.reshape(-1, 1), np.array([ratio]), window, std_floor)
        percentile, z = float(stats.percentile[0]), float(stats.z[0])
    return ShortFigures(
        _day(last["date"]),
        ratio,
        _float(last["short_value"]),
        _float(last["total_value"]),
        len(past),
        percentile,
        z,
    )


@dataclass(frozen=True)
class SessionShort:
    """Short-selling value of one day from the hkex-short pages: by the midday close and at the day close."""

    day: date
    midday: float | None
    close: float | None


def session_short(frames: Frames, code: str) -> SessionShort | None:
    """The latest day with a midday or close short row for `code`: midday (MSHTMAIN) and close (ASHTMAIN) values.

    The midday rows come from the `short_midday` feed (source hkex-short-midday), the close rows from `short`
    (hkex-short); either may be missing, e.g. at 12:30 only the midday page of the day is out.
    """
    parts = [
        part for part in (_rows(frames, "short_midday", code), _rows(frames, "short", code)) if not part.empty
    ]
    if not parts:
        return None
    # One page per board and session: a page found in both feeds counts once, the midday feed's copy first.
    rows = pd.concat(parts, ignore_index=True).drop_duplicates(["date", "board", "session"], keep="first")
    latest = rows["date"].max()
    today = rows[rows["date"] == latest]

    def value(session: str) -> float | None:
        part = today[today["session"] == session]
        return None if part.empty else _float(part["short_value"].sum())

    return SessionShort(_day(latest), value("morning"), value("close"))


@dataclass(frozen=True)
class IssuedShares:
    """Issued shares derived from a filing that states a holding and its % of issued shares."""

    shares: float
    source: str  # "southbound" | "buybacks"
    day: date


def issued_shares(frames: Frames, code: str) -> IssuedShares | None:
    """Issued shares from the latest southbound holding (shares / pct), else the buyback report's YTD %."""
    south = _rows(frames, "southbound", code)
    if not south.empty:
        south = south[(south["pct_of_issued"] > 0) & south["shares"].notna()].sort_values(
            "date", kind="stable"
        )
        if not south.empty:
            last = south.iloc[-1]
            return IssuedShares(
                float(last["shares"]) / float(last["pct_of_issued"]) * 100, "southbound", _day(last["date"])
            )
    buys = _rows(frames, "buybacks", code)
    if not buys.empty:
        buys = buys[(buys["pct_of_issued"] > 0) & buys["ytd_shares"].notna()].sort_values(
            "trade_date", kind="stable"
        )
        if not buys.empty:
            last = buys.iloc[-1]
            return IssuedShares(
                float(last["ytd_shares"]) / float(last["pct_of_issued"]) * 100,
                "buybacks",
                _day(last["trade_date"]),
            )
    return None


@dataclass(frozen=True)
class SfcFigures:
    """The latest SFC reportable short position and its change from the previous week's file."""

    day: date
    shares: float
    value: float | None
    pct_of_issued: float | None
    previous_day: date | None
    change_pct: float | None  # week on week, % of the previous position


def sfc_figures(frames: Frames, code: str) -> SfcFigures | None:
    """Latest SFC position of `code`, % of issued shares when known, change vs the previous file."""
    rows = _rows(frames, "sfc", code)
    if rows.empty:
        return None
    rows = rows.sort_values("date", kind="stable")
    last = rows.iloc[-1]
    held = float(last["short_shares"])
    issued = issued_shares(frames, code)
    pct = held / issued.shares * 100 if issued and issued.shares > 0 else None
    previous_day = change = None
    if len(rows) >= 2:
        prev = rows.iloc[-2]
        previous_day = _day(prev["date"])
        before = _float(prev["short_shares"])
        change = (held / before - 1) * 100 if before else None
    return SfcFigures(_day(last["date"]), held, _float(last["short_value_hkd"]), pct, previous_day, change)


@dataclass(frozen=True)
class BuybackFigures:
    """Buybacks of a stock traded in a window of sessions."""

    since: date
    days: int
    shares: float
    amount: float
    currency: str
    low: float | None
    high: float | None
    last_day: date
    last_report: date


def buyback_figures(frames: Frames, code: str, sessions: list[date]) -> BuybackFigures | None:
    """Buybacks with trade dates in `sessions` (oldest first): days, shares, amount paid, price range."""
    rows = _rows(frames, "buybacks", code)
    if rows.empty or not sessions:
        return None
    rows = rows[
        (rows["trade_date"] >= pd.Timestamp(sessions[0])) & (rows["trade_date"] <= pd.Timestamp(sessions[-1]))
    ]
    # A mainland A-share repurchase is not a buyback of the shares traded in Hong Kong.
    rows = rows[rows["sec_type"].fillna("").str.upper() != "A SHARES"]
    if rows.empty:
        return None
    currencies = rows["currency"].fillna("HKD").unique()
    single = len(currencies) == 1
    return BuybackFigures(
        since=sessions[0],
        days=int(rows["trade_date"].nunique()),
        shares=float(rows["shares"].sum()),
        amount=float(rows["total_paid"].sum()) if single else _in_hkd(rows),
        currency=str(currencies[0]) if single else "HKD",
        # Prices in several currencies have no common range.
        low=_float(rows["price_low"].min()) if single else None,
        high=_float(rows["price_high"].max()) if single else None,
        last_day=_day(rows["trade_date"].max()),
        last_report=_day(rows["report_date"].max()),
    )


def _in_hkd(rows: pd.DataFrame) -> float:
    """Total paid in HK$ at the fixed rates of config/rules.toml (NaN when a currency has no rate)."""
    params = load_params().buyback_filed
    rates = [params.rate(currency) for currency in rows["currency"].fillna("HKD")]
    if any(rate is None for rate in rates):
        return math.nan
    return float(
        sum(float(paid) * float(rate or 0) for paid, rate in zip(rows["total_paid"], rates, strict=True))
    )


@dataclass(frozen=True)
class Dealing:
    """One director / substantial-shareholder dealing from a Disclosure of Interests notice."""

    event_date: date
    filed_date: date
    holder: str
    role: str
    direction: str
    shares: float | None
    avg_price: float | None
    currency: str


def dealings(frames: Frames, code: str, today: date, days: int = DEALING_DAYS) -> list[Dealing]:
    """Dealings of `code` with an event date in the last `days` days, oldest first."""
    rows = _rows(frames, "di", code)
    if rows.empty:
        return []
    rows = rows[rows["event_date"] >= pd.Timestamp(today) - pd.Timedelta(days=days)]
    return [dealing for _, dealing in to_dealings(rows)]


def to_dealings(rows: pd.DataFrame) -> list[tuple[str, Dealing]]:
    """(code, Dealing) for each row of an hkex-di frame, by event date then filing date."""
    rows = rows.sort_values(["event_date", "filed_date"], kind="stable")
    return [
        (
            str(r["code"]),
            Dealing(
                _day(r["event_date"]),
                _day(r["filed_date"]),
                str(r["holder"]),
                str(r["role"]),
                str(r["direction"]),
                _float(r["shares"]),
                _float(r["avg_price"]),
                str(r["currency"]) if pd.notna(r["currency"]) else "HKD",
            ),
        )
        for _, r in rows.iterrows()
    ]


@dataclass(frozen=True)
class SouthboundFigures:
    """Latest southbound holding (% of issued shares) and its change over 5 southbound dates."""

    day: date
    shares: float
    pct: float
    change_pp: float | None
    since: date | None


def southbound_figures(
    frames: Frames, code: str, sessions: int = SOUTHBOUND_SESSIONS
) -> SouthboundFigures | None:
    """Latest southbound % and its change in percentage points vs `sessions` dates earlier."""
    rows = _rows(frames, "southbound", code)
    if rows.empty:
        return None
    rows = rows[rows["pct_of_issued"].notna()].sort_values("date", kind="stable")
    if rows.empty:
        return None
    last = rows.iloc[-1]
    change = since = None
    if len(rows) > sessions:
        base = rows.iloc[-1 - sessions]
        change, since = float(last["pct_of_issued"]) - float(base["pct_of_issued"]), _day(base["date"])
    return SouthboundFigures(
        _day(last["date"]), float(last["shares"]), float(last["pct_of_issued"]), change, since
    )


@dataclass(frozen=True)
class SouthboundTurnover:
    """A stock's same-day southbound buy and sell turnover on one day it was in a channel's top 10 (HK$).

    Both southbound channels (Shanghai and Shenzhen Connect) summed; `channels` names the ones it was in.
    """

    day: date
    buy: float
    sell: float
    channels: tuple[str, ...]

    @property
    def net(self) -> float:
        """Buy − sell: positive when mainland investors bought more than they sold."""
        return self.buy - self.sell


def southbound_turnover(frames: Frames, code: str, day: date | None = None) -> SouthboundTurnover | None:
    """`code`'s southbound top-10 turnover on `day` (default: the latest day it was in a top 10), else None."""
    rows = _rows(frames, "southbound_flow", code)
    if rows.empty:
        return None
    rows = rows[
        rows["channel"].isin(SOUTHBOUND_CHANNELS).fillna(False)
        & rows["buy_hkd"].notna()
        & rows["sell_hkd"].notna()
    ]
    if day is not None:
        rows = rows[rows["date"] == pd.Timestamp(day)]
    if rows.empty:
        return None
    latest = rows["date"].max()
    today = rows[rows["date"] == latest].drop_duplicates("channel", keep="last")
    return SouthboundTurnover(
        _day(latest),
        float(today["buy_hkd"].sum()),
        float(today["sell_hkd"].sum()),
        tuple(str(c) for c in today["channel"]),
    )


def has_daily_file(frames: Frames, day: date) -> bool:
    """Whether a same-day Stock Connect file for `day` is on hand (any stock in a southbound top 10)."""
    frame = frames.get("southbound_flow")
    return frame is not None and not frame.empty and bool((frame["date"] == pd.Timestamp(day)).any())


@dataclass(frozen=True)
class PriceFigures:
    """The latest close and the round-number levels around it."""

    day: date
    close: float
    currency: str
    below: float
    above: float


def price_figures(frames: Frames, code: str) -> PriceFigures | None:
    """Latest close of `code` and the round levels at or below / at or above it (alerts.rules.round_levels)."""
    quotes = _rows(frames, "quotes", code)
    if quotes.empty:
        return None
    quotes = quotes[quotes["close"] > 0].sort_values("date", kind="stable")
    if quotes.empty:
        return None
    last = quotes.iloc[-1]
    close = float(last["close"])
    below, above = round_levels(close)
    currency = str(last["currency"]) if pd.notna(last["currency"]) else "HKD"
    return PriceFigures(_day(last["date"]), close, currency, below, above)


@dataclass(frozen=True)
class Flows:
    """One session's turnover split into what the public files can name (HK$; None = not known).

    southbound_net: the day's real southbound buy − sell turnover when the stock was in a southbound top 10
    (`southbound_kind` "turnover", with `southbound_buy` / `southbound_sell`); otherwise the estimate
    ≈ (southbound shares on `day` − on `southbound_base`) × close, net of both directions ("holdings").
    remainder = turnover − short_value − |southbound_net| − buyback: everyone else, on either side.
    """

    code: str
    day: date
    close: float | None
    turnover: float | None
    short_value: float | None
    southbound_shares_change: float | None
    southbound_base: date | None
    southbound_net: float | None
    buyback: float
    remainder: float | None
    southbound_kind: str | None = (
        None  # "turnover" (same-day top 10), "holdings" (next-morning estimate), None
    )
    southbound_buy: float | None = None
    southbound_sell: float | None = None
    daily_file: bool = (
        False  # a same-day Stock Connect file for `day` is on hand (whether or not it names `code`)
    )

    def share(self, amount: float | None) -> float | None:
        """`amount` as % of the session's turnover (None when either is unknown or turnover is 0)."""
        if amount is None or not self.turnover:
            return None
        return amount / self.turnover * 100


def flow_days(frames: Frames, code: str) -> list[date]:
    """Sessions with a quotations row and turnover for `code`, oldest first."""
    quotes = _rows(frames, "quotes", code)
    if quotes.empty:
        return []
    quotes = quotes[quotes["turnover"].notna()]
    return sorted({_day(d) for d in quotes["date"]})


def flows(frames: Frames, code: str, day: date) -> Flows:
    """Turnover, short selling, southbound net buying, buyback amount and the remainder for `code` on `day`."""
    stamp = pd.Timestamp(day)
    quotes = _rows(frames, "quotes", code)
    row = quotes[quotes["date"] == stamp] if not quotes.empty else quotes
    close = turnover = short_value = None
    if not row.empty:
        last = row.iloc[-1]
        close, turnover, short_value = (
            _float(last["close"]),
            _float(last["turnover"]),
            _float(last["short_value"]),
        )
    change, base = _southbound_change(frames, code, stamp)
    net = change * close if change is not None and close is not None else None
    kind = "holdings" if net is not None else None
    real = southbound_turnover(frames, code, day)
    if real is not None:  # the day's own turnover beats an estimate from two holdings snapshots
        net, kind = real.net, "turnover"
    buys = _rows(frames, "buybacks", code)
    # Only repurchases on the Exchange, in HK$, are part of the day's Hong Kong turnover.
    on_exchange = (
        (buys["trade_date"] == stamp) & (buys["method"] == "Exchange") & (buys["currency"] == "HKD")
        if not buys.empty
        else None
    )
    buyback = float(buys.loc[on_exchange, "total_paid"].sum()) if on_exchange is not None else 0.0
    remainder = None
    if turnover is not None and short_value is not None and net is not None:
        remainder = float(turnover) - float(short_value) - abs(float(net)) - buyback
    return Flows(
        code,
        day,
        close,
        turnover,
        short_value,
        change,
        base,
        net,
        buyback,
        remainder,
        kind,
        real.buy if real is not None else None,
        real.sell if real is not None else None,
        has_daily_file(frames, day),
    )


def _southbound_change(frames: Frames, code: str, stamp: pd.Timestamp) -> tuple[float | None, date | None]:
    """Shares change of the southbound holding on `stamp` vs the previous southbound date (None when unknown)."""
    all_rows = frames.get("southbound")
    if all_rows is None or all_rows.empty:
        return None, None
    earlier = all_rows.loc[all_rows["date"] < stamp, "date"]
    rows = all_rows[all_rows["code"] == code]
    today = rows[rows["date"] == stamp]
    if today.empty or earlier.empty:
        return None, None
    base_day = earlier.max()  # the previous southbound file, whether or not it lists this stock
    before = rows[rows["date"] == base_day]
    if before.empty:
        return None, _day(base_day)
    return float(today.iloc[-1]["shares"]) - float(before.iloc[-1]["shares"]), _day(base_day)


@dataclass(frozen=True)
class ShortableStatus:
    """A stock on HKEX's short-selling list: the list in effect, whether it is on it, and since which revision.

    `since` is the first revision of the unbroken run of lists holding the stock; None when that run reaches back
    to the oldest list in history (it may have been on the list longer).
    """

    list_date: date
    listed: bool
    since: date | None


def shortable_status(frames: Frames, code: str) -> ShortableStatus | None:
    """The stock's place on the designated securities list in effect (hkex-shortable-list); None without a list."""
    frame = frames.get("shortable")
    if frame is None or frame.empty:
        return None
    dates = pd.to_datetime(frame["effective_date"])
    revisions = sorted({d.date() for d in dates.dropna()})
    if not revisions:
        return None
    holding = {d.date() for d in dates[(frame["code"] == code).fillna(False).to_numpy(dtype=bool)].dropna()}
    latest = revisions[-1]
    if latest not in holding:
        return ShortableStatus(latest, False, None)
    since = latest
    for revision in reversed(revisions[:-1]):
        if revision not in holding:
            return ShortableStatus(latest, True, since)
        since = revision
    return ShortableStatus(latest, True, None)
