"""Build the bundled demo data set in alerts/demo_data/ (files in the sources' real formats, laid out like their URLs).

Run from the repository root: ``python scripts/build_demo_data.py``. Writing the .xls buyback reports needs
``xlwt`` (generator only; the generated files are committed). The output is deterministic: a seeded numpy
generator drives every reconstructed number, and a few public figures (alerts/demo_data/README.md) are pinned.

Layout templates: the text formats copy the constructed fixtures under tests/fixtures/ (column positions,
labels, wrappers, line endings); the southbound page and the .xls header/disclaimer strings are read from the
fixtures themselves so the demo files stay byte-compatible with what the parsers are tested on.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import xlwt

from alerts.calendar import is_week_end_session, sessions_between
from alerts.localdata import local_path
from alerts.sources import get_source

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "alerts" / "demo_data"
FIXTURES = REPO / "tests" / "fixtures"
KEEP = {"README.md"}  # hand-written files in ROOT that a rebuild must not delete

WARMUP_START = date(2025, 8, 1)
DEMO_START = date(2025, 11, 17)
DEMO_END = date(2025, 11, 28)
QUOTES_END = date(2025, 12, 31)
SEED = 20251127

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
RULE = "-" * 79


@dataclass(frozen=True)
class Stock:
    """A demo stock and the parameters of its reconstructed series."""

    code: str
    name: str
    anchors: dict[date, float]  # closes the simulated path passes through
    sigma: float  # daily log-return volatility
    volume: float  # typical shares traded per day
    ratio: tuple[float, float]  # short ratio: usual level and spread (fraction of turnover)
    # Southbound % of issued shares on WARMUP_START and DEMO_END; None = left off the page (an excerpt like the
    # fixture: each listed row costs ~1.9 kB a day and the data set must stay small).
    southbound: tuple[float, float] | None
    issued: int  # issued shares (for southbound share counts)
    sfc_shares: int  # typical SFC reportable short position (shares)


def d(month: int, day: int) -> date:
    """A 2025 date."""
    return date(2025, month, day)


STOCKS: tuple[Stock, ...] = (
    Stock(
        "00001",
        "CKH HOLDINGS",
        {d(8, 1): 45.20, d(9, 16): 52.00, d(11, 20): 52.80, d(12, 31): 54.10},
        0.013,
        4.0e6,
        (0.105, 0.016),
        None,
        3_829_706_700,
        14_200_000,
    ),
    Stock(
        "00005",
        "HSBC HOLDINGS",
        {d(8, 1): 97.50, d(10, 15): 104.00, d(11, 20): 108.40, d(12, 31): 116.00},
        0.012,
        2.1e7,
        (0.118, 0.016),
        (10.40, 10.90),
        17_400_000_000,
        121_000_000,
    ),
    Stock(
        "00016",
        "SHK PPT",
        {d(8, 1): 88.00, d(11, 20): 95.85, d(12, 31): 92.00},
        0.014,
        2.8e6,
        (0.108, 0.016),
        None,
        2_897_780_274,
        9_300_000,
    ),
    Stock(
        "00388",
        "HKEX",
        {d(8, 1): 430.00, d(9, 19): 445.00, d(11, 20): 405.40, d(12, 31): 412.00},
        0.016,
        4.4e6,
        (0.128, 0.018),
        (7.20, 7.80),
        1_267_836_895,
        8_100_000,
    ),
    Stock(
        "00700",
        "TENCENT",
        {d(8, 1): 560.00, d(10, 3): 660.00, d(11, 20): 611.00, d(12, 31): 610.00},
        0.018,
        1.9e7,
        (0.170, 0.018),
        (8.60, 9.30),
        9_160_000_000,
        40_500_000,
    ),
    Stock(
        "00941",
        "CHINA MOBILE",
        {d(8, 1): 84.50, d(11, 20): 86.90, d(12, 31): 84.00},
        0.010,
        1.6e7,
        (0.112, 0.016),
        None,
        21_530_000_000,
        30_800_000,
    ),
    Stock(
        "01810",
        "XIAOMI-W",
        {
            d(8, 1): 53.20,
            d(9, 26): 59.50,
            d(10, 20): 47.00,
            d(11, 20): 39.32,
            d(11, 21): 37.86,
            d(11, 24): 38.90,
            d(12, 31): 40.20,
        },
        0.028,
        1.6e8,
        (0.180, 0.024),
        (17.60, 20.20),
        25_950_000_000,
        480_000_000,
    ),
    Stock(
        "02318",
        "PING AN",
        {d(8, 1): 52.00, d(11, 20): 58.20, d(12, 31): 60.00},
        0.016,
        3.5e7,
        (0.120, 0.016),
        (16.20, 17.00),
        7_447_576_912,
        112_000_000,
    ),
    Stock(
        "03690",
        "MEITUAN-W",
        {d(8, 1): 124.00, d(11, 20): 99.80, d(12, 31): 102.00},
        0.024,
        2.8e7,
        (0.190, 0.020),
        (11.00, 11.50),
        5_510_000_000,
        76_000_000,
    ),
    Stock(
        "09988",
        "BABA-W",
        {d(8, 1): 116.00, d(10, 2): 172.00, d(11, 20): 152.60, d(12, 31): 148.00},
        0.028,
        6.2e7,
        (0.230, 0.018),
        (7.40, 8.10),
        19_080_000_000,
        91_000_000,
    ),
)
RMB_CODE, RMB_NAME, RMB_OF, RMB_PER_HKD = "80016", "SHK PPT-R", "00016", 0.91

# Public figures (alerts/demo_data/README.md); everything else is reconstructed.
PINNED_RATIOS = {  # (code, session) -> short value / total value
    ("09988", d(11, 20)): 0.2197,
    ("09988", d(11, 27)): 0.1686,
    ("00700", d(11, 21)): 0.1757,
    ("00700", d(11, 27)): 0.0990,
    ("01810", d(11, 19)): 0.344,  # reconstructed spike (the demo's short_ratio_spike)
}
# Market short selling (Main Board, day close): the public value and count; 11-20's other figures reconstructed.
# Share totals are not pinned: they are the sums of each day's rows (day_rows).
PINNED_MARKET = {
    d(11, 20): dict(
        stocks=840, c_value=58_805_413_726, a_value=55_317_908_104, turnover=235_478_622_918, securities=2_061
    ),
    d(11, 27): dict(stocks=795, c_value=36_639_274_518),
}
PINNED_TURNOVER = {d(11, 19): (228_917_305_412, 2_044)}
# Reconstructed market short value (HK$ bn) around the demo so that only 11-27 swings by >= 25%.
MARKET_PATH = {
    d(11, 10): 50.2,
    d(11, 11): 51.4,
    d(11, 12): 49.8,
    d(11, 13): 52.6,
    d(11, 14): 51.0,
    d(11, 17): 49.5,
    d(11, 18): 53.2,
    d(11, 19): 55.9,
    d(11, 21): 54.3,
    d(11, 24): 50.7,
    d(11, 25): 52.1,
    d(11, 26): 48.9,
    d(11, 28): 44.1,
}
# Intraday ranges the public buyback and insider prices need (low <= price <= high).
RANGES = {
    ("01810", d(11, 20)): (38.30, 39.40),
    ("01810", d(11, 21)): (37.04, 38.50),
    ("01810", d(11, 24)): (38.30, 39.20),
}
XIAOMI_SOUTHBOUND = {
    d(11, 17): 19.62,
    d(11, 18): 19.68,
    d(11, 19): 19.71,
    d(11, 20): 19.77,
    d(11, 21): 19.83,
    d(11, 24): 19.90,
    d(11, 25): 20.04,
    d(11, 26): 20.09,
    d(11, 27): 20.15,
    d(11, 28): 20.21,
}


# Southbound top-10 turnover (hkex-stock-connect-daily), one file a session from this many sessions before the
# demo to its last day: southbound_net_flow compares a stock's net with its (up to) 60 earlier top-10 days.
FLOW_SESSIONS_BEFORE_DEMO = 66
# Hong Kong sessions on which Stock Connect was closed for the mainland's National Day holiday (1-8 Oct 2025):
# the file marks every channel tradingDay 0.
CONNECT_CLOSED = (d(10, 2), d(10, 3), d(10, 6), d(10, 8))
# Each stock's usual southbound gross turnover as a share of its day's turnover (both channels together).
FLOW_SHARE = {
    "00001": 0.08,
    "00005": 0.14,
    "00016": 0.08,
    "00388": 0.22,
    "00700": 0.28,
    "00941": 0.22,
    "01810": 0.34,
    "02318": 0.20,
    "03690": 0.28,
    "09988": 0.30,
}
# Public per-stock nets (HK$, both channels) and market nets (HK$ millions, both channels' buy - sell).
PINNED_FLOWS = {("01810", d(10, 16)): 1_060_000_000, ("09988", d(10, 16)): 762_000_000}
PINNED_FLOW_SIGNS = {("00700", d(10, 16)): -1}  # among the day's biggest net sales (amount not public)
PINNED_MARKET_NET = {d(11, 10): 6_654.00}
# The demo's flow story: 01810 is net bought on every demo session (the run starts 11-17: net sold on 11-14),
# most on 11-25, the day its holding crosses 20%: about its holding's daily change (XIAOMI_SOUTHBOUND) at the
# close. Before the demo its net is the holding's change at the close, kept within HK$0.9bn either way (an
# ordinary draw on a day the holding does not move).
XIAOMI_NETS = {  # HK$, both channels
    d(11, 14): -185_000_000,
    d(11, 17): 620_000_000,
    d(11, 18): 575_000_000,
    d(11, 19): 340_000_000,
    d(11, 20): 560_000_000,
    d(11, 21): 585_000_000,
    d(11, 24): 640_000_000,
    d(11, 25): 1_520_000_000,
    d(11, 26): 470_000_000,
    d(11, 27): 545_000_000,
    d(11, 28): 590_000_000,
}
XIAOMI_NET_CAP = 900_000_000
# From a stock's 10th file date on (the rule's min_history), every net but the pinned and planned ones is ordinary
# (no alert), so a replay starting before the demo meets no southbound_net_flow alert either.
FLOW_QUIET_AFTER = 10

# Short-selling list (hkex-shortable-list): two revisions, both reconstructed. The first is a quarterly one; the
# second, ad hoc, adds the RMB counter of SHK PPT, which is sold short only from then on.
SHORTABLE_LISTS = (d(9, 8), d(11, 24))
RMB_SHORTABLE_FROM = d(11, 24)


@dataclass
class Quote:
    """One stock's day: the QUOTATIONS row plus its SHORT SELLING row (short_* None when not shorted)."""

    prev_close: float
    close: float
    high: float
    low: float
    tick: float
    shares: int
    turnover: int
    short_shares: int | None = None
    short_value: int | None = None


@dataclass
class Market:
    """Main Board totals of the day's short selling summary."""

    stocks: int
    c_shares: int
    c_value: int
    a_shares: int
    a_value: int
    turnover: int
    traded: int
    securities: int


@dataclass
class World:
    """Everything simulated, by date."""

    sessions: list[date]
    quotes: dict[date, dict[str, Quote]] = field(default_factory=dict)
    market: dict[date, Market] = field(default_factory=dict)
    previous_turnover: tuple[int, int] = (0, 0)  # market turnover and securities traded before the first day
    southbound: dict[date, dict[str, tuple[int, float]]] = field(default_factory=dict)
    sfc: dict[date, dict[str, tuple[int, int]]] = field(default_factory=dict)
    flows: dict[date, dict[str, tuple[int, int]]] = field(default_factory=dict)  # southbound buy, sell (HK$)


# ---------------------------------------------------------------------------------------------- simulation


def tick_size(price: float) -> float:
    """HKEX spread table (with the 2025 reduced ticks for HK$10-50)."""
    for upper, tick in ((10, 0.01), (20, 0.01), (50, 0.02), (100, 0.05), (200, 0.1), (500, 0.2), (1000, 0.5)):
        if price < upper:
            return tick
    return 1.0


def on_tick(price: float, tick: float, how: str = "round") -> float:
    """Snap a price to its tick grid."""
    steps = price / tick
    steps = (
        np.floor(steps + 1e-9) if how == "down" else np.ceil(steps - 1e-9) if how == "up" else np.round(steps)
    )
    return round(float(steps) * tick, 2)


def price_path(rng: np.random.Generator, stock: Stock, sessions: list[date]) -> np.ndarray:
    """Closes from a Brownian bridge through the stock's anchor closes."""
    steps = rng.normal(0.0, stock.sigma, len(sessions))
    walk = np.cumsum(steps)
    index = {day: i for i, day in enumerate(sessions)}
    at = np.array([index[day] for day in stock.anchors])
    logs = np.log(np.array(list(stock.anchors.values())))
    grid = np.arange(len(sessions))
    path = np.interp(grid, at, logs) + walk - np.interp(grid, at, walk[at])
    return np.exp(path)


def simulate_quotes(rng: np.random.Generator, world: World) -> None:
    """Prices, turnover and per-stock short selling for every session."""
    sessions = world.sessions
    for day in sessions:
        world.quotes[day] = {}
    for stock in STOCKS:
        closes = price_path(rng, stock, sessions)
        prev = float(closes[0]) * float(np.exp(rng.normal(0, stock.sigma)))
        prev = on_tick(prev, tick_size(prev))
        mean, spread = stock.ratio
        for i, day in enumerate(sessions):
            tick = tick_size(closes[i])
            close = on_tick(float(closes[i]), tick)
            opening = prev * float(np.exp(rng.normal(0, stock.sigma / 4)))
            wiggle = np.abs(rng.normal(0, stock.sigma / 3, 2))
            high = on_tick(max(opening, close) * (1 + wiggle[0]), tick, "up")
            low = on_tick(min(opening, close) * (1 - wiggle[1]), tick, "down")
            if (stock.code, day) in RANGES:
                need_low, need_high = RANGES[(stock.code, day)]
                low, high = min(low, need_low), max(high, need_high)
            volume = stock.volume * float(np.exp(rng.normal(0, 0.25)))
            if (stock.code, day) == ("01810", d(11, 19)):
                volume *= 1.6
            shares = int(round(volume, -2))
            vwap = (high + low + 2 * close) / 4
            turnover = int(round(shares * vwap))
            # Quiet days inside the demo stay within one spread of the usual level: the demo's ratio alerts
            # are the pinned ones (a natural 2-sigma day would add an unplanned alert).
            limit = 1.0 if DEMO_START <= day <= DEMO_END else 1.8
            ratio = mean + spread * float(np.clip(rng.normal(), -limit, limit))
            ratio = PINNED_RATIOS.get((stock.code, day), ratio)
            short_value = int(round(turnover * ratio))
            short_shares = max(100, int(round(short_value / vwap, -2)))
            world.quotes[day][stock.code] = Quote(
                prev, close, high, low, tick, shares, turnover, short_shares, short_value
            )
            prev = close
    simulate_rmb_counter(rng, world)


def simulate_rmb_counter(rng: np.random.Generator, world: World) -> None:
    """The RMB counter of SHK PPT: the HKD close in RMB, thin trading, short sold on some days."""
    prev = None
    for day in world.sessions:
        base = world.quotes[day][RMB_OF]
        close = on_tick(base.close * RMB_PER_HKD, 0.05)
        prev = prev if prev is not None else on_tick(base.prev_close * RMB_PER_HKD, 0.05)
        high = max(close, prev) + 0.05 * int(rng.integers(0, 3))
        low = min(close, prev) - 0.05 * int(rng.integers(0, 3))
        shares = 500 * int(rng.integers(4, 40))
        turnover = int(round(shares * (high + low + 2 * close) / 4))
        quote = Quote(prev, close, round(high, 2), round(low, 2), 0.05, shares, turnover)
        if rng.random() < 0.6:
            short_shares = 500 * int(rng.integers(1, min(6, shares // 500) + 1))
            # Sold short only once the short-selling list names it (the draws are made either way, so the
            # series drawn after it stay as they were).
            if day >= RMB_SHORTABLE_FROM:
                quote.short_shares = short_shares
                quote.short_value = int(round(short_shares * close))
        world.quotes[day][RMB_CODE] = quote
        prev = close


def simulate_market(rng: np.random.Generator, world: World) -> None:
    """Main Board short selling totals: ~HK$50bn a day, the pinned and planned days exact."""
    level = 0.0
    world.previous_turnover = (int(rng.uniform(190e9, 230e9)), int(rng.integers(1990, 2110)))
    for day in world.sessions:
        level = 0.6 * level + rng.normal(0, 0.05)
        value = MARKET_PATH.get(day, 50.0 * float(np.exp(level))) * 1e9
        value = int(value + rng.integers(0, 99_999_999)) if day in MARKET_PATH else int(value)
        pct = float(rng.uniform(0.205, 0.26))
        pinned = PINNED_MARKET.get(day, {})
        c_value = pinned.get("c_value", value)
        c_shares = pinned.get("c_shares", int(c_value / rng.uniform(11.0, 12.8)))
        world.market[day] = Market(
            stocks=pinned.get("stocks", int(rng.integers(800, 901))),
            c_shares=c_shares,
            c_value=c_value,
            a_shares=pinned.get("a_shares", int(c_shares * rng.uniform(0.89, 0.93))),
            a_value=pinned.get("a_value", int(c_value * rng.uniform(0.93, 0.955))),
            turnover=pinned.get("turnover", int(c_value / pct)),
            traded=pinned.get("traded", int(c_shares * rng.uniform(7.4, 8.4))),
            securities=pinned.get("securities", int(rng.integers(1990, 2110))),
        )
        if day in PINNED_TURNOVER:
            world.market[day].turnover, world.market[day].securities = PINNED_TURNOVER[day]


def simulate_southbound(rng: np.random.Generator, world: World) -> None:
    """Southbound % of issued shares: slow drifts; 01810 crosses 20% upward on 2025-11-25 only."""
    days = [day for day in world.sessions if day <= DEMO_END]
    span = len(days) - 1
    for day in days:
        world.southbound[day] = {}
    for stock in STOCKS:
        if stock.southbound is None:
            continue
        start, end = stock.southbound
        noise = rng.normal(0, 0.02, len(days))
        for i, day in enumerate(days):
            pct = start + (end - start) * i / span + float(noise[i])
            if stock.code == "01810":
                # Below 20% (and so never crossing it) until the planned crossing.
                pct = XIAOMI_SOUTHBOUND.get(day, min(pct * 19.58 / 20.20, 19.58))
            pct = round(pct, 2)
            world.southbound[day][stock.code] = (int(round(stock.issued * pct / 100)), pct)


def simulate_sfc(rng: np.random.Generator, world: World) -> None:
    """Weekly SFC short positions: < 10% a week; 01810 +30% on 2025-11-21; no other 12-week high in the demo."""
    weeks = [day for day in world.sessions if day <= DEMO_END and is_week_end_session(day)]
    for day in weeks:
        world.sfc[day] = {}
    for stock in STOCKS:
        shares = float(stock.sfc_shares)
        history: list[float] = []
        for day in weeks:
            if history:
                change = float(np.clip(rng.normal(0, 0.035), -0.08, 0.08))
                if DEMO_START <= day <= DEMO_END:
                    change = -abs(change) - 0.01  # the demo weeks ease off: no new 12-week highs
                shares = history[-1] * float(np.exp(change))
            if stock.code == "01810" and day == d(11, 21):
                shares = history[-1] * 1.30
            elif stock.code == "01810" and day == d(11, 28):
                shares = history[-1] * 0.968
            shares = float(round(shares))
            history.append(shares)
            close = world.quotes[day][stock.code].close
            world.sfc[day][stock.code] = (int(shares), int(round(shares * close)))
    for day in weeks:
        world.sfc[day][RMB_CODE] = (0, 0)


def simulate_flows(world: World) -> None:
    """Southbound buy and sell (HK$, both channels) of the demo stocks on the Stock Connect file dates.

    Own generator: the series drawn before never shift. 01810's net is its holding's change times the close
    (net buying on every demo session, the most on 11-25); every other net is ordinary once the stock has
    FLOW_QUIET_AFTER earlier ones: no run of 5 same-sign sessions ends and no net leaves 1.5 standard deviations
    of the stock's earlier nets.
    """
    rng = np.random.default_rng([SEED, 16])
    for day in flow_days(world):
        world.flows[day] = {}
    days = [day for day in flow_days(world) if day not in CONNECT_CLOSED]
    for stock in STOCKS:
        nets: list[float] = []
        for day in days:
            quote = world.quotes[day][stock.code]
            gross = quote.turnover * FLOW_SHARE[stock.code] * float(np.exp(rng.normal(0, 0.2)))
            net = gross * float(np.clip(rng.normal(0, 0.12), -0.35, 0.35))
            if stock.code == "01810":
                moved = xiaomi_net(world, day) * float(np.exp(rng.normal(0, 0.05)))
                net = float(np.clip(moved, -XIAOMI_NET_CAP, XIAOMI_NET_CAP)) if moved else net
                net = XIAOMI_NETS.get(day, net)
            pinned = (stock.code, day) in PINNED_FLOWS or (stock.code, day) in PINNED_FLOW_SIGNS
            planned = stock.code == "01810" and day in XIAOMI_NETS
            if len(nets) >= FLOW_QUIET_AFTER and not (pinned or planned):
                net = ordinary(net, nets)
            net = PINNED_FLOWS.get((stock.code, day), net)
            if (stock.code, day) in PINNED_FLOW_SIGNS:
                net = abs(net) * PINNED_FLOW_SIGNS[(stock.code, day)]
            gross = max(gross, 1.3 * abs(net))
            nets.append(net)
            buy = int(round((gross + net) / 2))
            world.flows[day][stock.code] = (buy, buy - int(round(net)))


def flow_days(world: World) -> list[date]:
    """The sessions with a Stock Connect daily file."""
    first = world.sessions[world.sessions.index(DEMO_START) - FLOW_SESSIONS_BEFORE_DEMO]
    return [day for day in world.sessions if first <= day <= DEMO_END]


def xiaomi_net(world: World, day: date) -> float:
    """01810's southbound holding change into `day` (shares) at the day's close, in HK$."""
    before = max(other for other in world.southbound if other < day)
    shares = world.southbound[day]["01810"][0] - world.southbound[before]["01810"][0]
    return shares * world.quotes[day]["01810"].close


def ordinary(net: float, earlier: list[float]) -> float:
    """A demo-session net that makes no alert: within 1.5 sd of the last 60, no 5th same-sign session in a row."""
    history = np.array(earlier[-60:])
    mean, sd = float(history.mean()), float(history.std())
    net = float(np.clip(net, mean - 1.5 * sd, mean + 1.5 * sd))
    if len(earlier) >= 4 and all(np.sign(x) == np.sign(net) for x in earlier[-4:]):
        # The other side, small: a stock mostly bought has a net sale near zero, not a large one.
        net = -float(np.sign(net)) * min(abs(net), 0.5 * sd)
    return net


def simulate() -> World:
    """Run every simulation in a fixed order (one generator: the output only depends on SEED)."""
    rng = np.random.default_rng(SEED)
    world = World(sessions=sessions_between(WARMUP_START, QUOTES_END))
    simulate_quotes(rng, world)
    simulate_market(rng, world)
    simulate_southbound(rng, world)
    simulate_sfc(rng, world)
    simulate_flows(world)
    return world


# ---------------------------------------------------------------------------------------------- formats


def dmy_upper(day: date) -> str:
    """``20 NOV 2025``."""
    return f"{day.day:02d} {MONTHS[day.month - 1]} {day.year}"


def headline_date(day: date) -> str:
    """``20 NOV 2025 (THURSDAY)``."""
    return f"{dmy_upper(day)} ({WEEKDAYS[day.weekday()]})"


def number_code(code: str, currency: str = "HKD") -> str:
    """Code as HKEX text reports print it: no leading zeros, ``%`` before a non-HKD counter."""
    return ("%" if currency != "HKD" else "") + str(int(code))


def stock_rows(world: World, day: date) -> list[tuple[str, str, str, Quote]]:
    """(code, name, currency, quote) of the day in code order."""
    rows = [(s.code, s.name, "HKD", world.quotes[day][s.code]) for s in STOCKS]
    rows.append((RMB_CODE, RMB_NAME, "RMB", world.quotes[day][RMB_CODE]))
    return sorted(rows, key=lambda row: int(row[0]))


# --- hkex-quotes / hkex-short: filler stocks, so that every file's rows add up to its own totals

FILLER_SEED = SEED + 1
FILLER_COUNT = 900  # no fewer than the most securities shorted in a day (simulate_market: at most 900)
FILLER_LOW_FROM = 780  # ranks from here on are shorted only on busier days, at low ratios (1-4.5%)
# Quotations files print the whole market (MARKET HIGHLIGHTS, the short selling totals, and the fillers that make
# the rows add up to them) from this many sessions before the demo to its last day: the short-ratio rules judge a
# stock only with 20 sessions of its ratios (min_history, config/rules.toml; fewer make a note per filler and
# day), market_short_swing compares with the 5 before. Earlier and later files are excerpts printing no totals
# (the 10 stocks and the RMB counter): nothing there for rows to add up to. Every file whole instead: ~26 MB.
WHOLE_SESSIONS_BEFORE_DEMO = 20


@dataclass(frozen=True)
class Filler:
    """A reconstructed stock standing for the rest of the market, printed as "FILLER <code>"."""

    code: str
    size: float  # its usual weight in the fillers' turnover
    ratio: float  # short value / turnover, the same on every day
    closes: tuple[float, ...]  # close on each simulated session


def filler_name(code: str) -> str:
    """``FILLER 1234``: the name says what it is (no real company's name on reconstructed figures)."""
    return f"FILLER {int(code)}"


@cache
def fillers(sessions: tuple[date, ...]) -> tuple[Filler, ...]:
    """The filler universe in rank order: a day with k fillers lists the first k (own generator).

    Codes are drawn from 1..3999 leaving out the demo's own stocks and every code config/aliases.toml names
    (a filler there would take a real company's alias or Chinese name in the bot). Big fillers are dearer and
    more shorted than small ones; the ranks from FILLER_LOW_FROM, not shorted every day, stay under the 5%
    ratio floor of the short-ratio rules, so a thin history never makes a note.
    """
    rng = np.random.default_rng(FILLER_SEED)
    aliases = (REPO / "config" / "aliases.toml").read_text(encoding="utf-8")
    taken = {stock.code for stock in STOCKS} | {RMB_CODE} | set(re.findall(r"\b\d{5}\b", aliases))
    eligible = [code for code in range(1, 4000) if f"{code:05d}" not in taken]
    out = []
    for rank, code in enumerate(rng.choice(eligible, FILLER_COUNT, replace=False)):
        depth = rank / FILLER_COUNT  # 0 for the biggest filler
        if rank < FILLER_LOW_FROM:
            ratio = float(np.clip(rng.normal(0.28 - 0.16 * depth, 0.05), 0.06, 0.45))
        else:
            ratio = float(rng.uniform(0.01, 0.045))
        price = float(
            np.exp(
                (1 - depth) * rng.uniform(np.log(3.0), np.log(300.0))
                + depth * rng.uniform(np.log(0.5), np.log(8.0))
            )
        )
        path = price * np.exp(np.cumsum(rng.normal(0, 0.015, len(sessions))))
        closes = tuple(on_tick(float(p), tick_size(float(p))) for p in path)
        out.append(Filler(f"{int(code):05d}", 1 / (rank + 15), ratio, closes))
    return tuple(out)


def hkd_equivalent(amount: int, currency: str) -> int:
    """An amount in HKD: the RMB counter's at RMB_PER_HKD (the rate its prices are made with)."""
    return amount if currency == "HKD" else round(amount / RMB_PER_HKD)


def day_rows(world: World, day: date) -> tuple[list[tuple[str, str, str, Quote]], Market]:
    """The day's rows (demo stocks, RMB counter, fillers) in code order, and the totals they add up to.

    The demo stocks and the market's short value, count, turnover and securities traded are the simulation's.
    The fillers take the rest: count - the demo rows shorted, (C) value - the demo rows' short value, market
    turnover - the demo rows' quoted turnover (the RMB counter at its HKD equivalent, as the file's HKD totals
    hold it). Each filler keeps its one short ratio every day, so it never looks unusual to the short-ratio
    rules; the day's split of turnover between more and less shorted fillers is tilted until value and turnover
    both come out exact. Shares follow from each filler's price; the market's share totals are the rows' sums.
    """
    rows = stock_rows(world, day)
    market = world.market[day]
    shorted = [(currency, q) for _, _, currency, q in rows if q.short_value is not None]
    count = market.stocks - len(shorted)
    value = market.c_value - sum(hkd_equivalent(q.short_value or 0, currency) for currency, q in shorted)
    turnover = market.turnover - sum(hkd_equivalent(q.turnover, currency) for _, _, currency, q in rows)
    universe = fillers(tuple(world.sessions))
    if not 0 < count <= len(universe) or value <= 0 or turnover <= 0:
        raise ValueError(
            f"{day}: fillers cannot make up {count} stocks, HK${value:,} short, HK${turnover:,} traded"
        )
    chosen = universe[:count]
    rng = np.random.default_rng([FILLER_SEED, day.toordinal()])  # own generator: the main series never shift
    ratios = np.array([f.ratio for f in chosen])
    base = np.array([f.size for f in chosen]) * np.exp(rng.normal(0, 0.3, count))
    target = value / turnover
    if not ratios.min() < target < ratios.max():
        raise ValueError(f"{day}: the fillers' ratios cannot average {target:.4f}")
    low, high = -200.0, 200.0
    for _ in range(100):  # the turnover-weighted mean ratio rises with the tilt: bisect to the target
        tilt = (low + high) / 2
        weights = base * np.exp(tilt * (ratios - target))
        low, high = (tilt, high) if (weights * ratios).sum() / weights.sum() < target else (low, tilt)
    turnovers = np.floor(weights / weights.sum() * turnover).astype(np.int64)
    biggest = int(np.argmax(turnovers))
    turnovers[biggest] += turnover - int(turnovers.sum())
    values = np.round(ratios * turnovers).astype(np.int64)
    values[biggest] += value - int(values.sum())  # a few HK$ on billions: its ratio moves by ~1e-9
    at = world.sessions.index(day)
    drift, open_gap = rng.normal(0, 0.004, count), rng.normal(0, 0.005, count)
    wiggle = np.abs(rng.normal(0, 0.006, (count, 2)))
    extra: list[tuple[str, str, str, Quote]] = []
    for i, filler in enumerate(chosen):
        close = filler.closes[at]
        tick = tick_size(close)
        prev = filler.closes[at - 1] if at else on_tick(close * float(np.exp(-drift[i])), tick)
        traded = int(turnovers[i])
        shares = max(1000, int(round(traded / (close * float(np.exp(drift[i]))), -2)))
        average = traded / shares
        opening = prev * float(np.exp(open_gap[i]))
        high_price = on_tick(max(opening, close, average) * (1 + wiggle[i, 0]), tick, "up")
        low_price = on_tick(min(opening, close, average) * (1 - wiggle[i, 1]), tick, "down")
        short_value = int(values[i])
        short_shares = min(shares, max(200, int(round(short_value / average, -2))))
        if short_value <= 0 or low_price <= 0:
            raise ValueError(f"{day}: filler {filler.code} has no short value or a price <= 0")
        extra.append(
            (
                filler.code,
                filler_name(filler.code),
                "HKD",
                Quote(prev, close, high_price, low_price, tick, shares, traded, short_shares, short_value),
            )
        )
    rows = sorted(rows + extra, key=lambda row: int(row[0]))
    short_rows = [q for _, _, _, q in rows if q.short_value is not None]
    c_shares = sum(q.short_shares or 0 for q in short_rows)
    totals = Market(
        stocks=market.stocks,
        c_shares=c_shares,
        c_value=market.c_value,
        a_shares=int(c_shares * market.a_shares / market.c_shares),
        a_value=market.a_value,
        turnover=market.turnover,
        traded=sum(q.shares for q in short_rows),
        securities=market.securities,
    )
    return rows, totals


def quotes_file(world: World, day: date, previous: date | None) -> bytes:
    """d{YYMMDD}e.htm in the layout of tests/fixtures/hkex-quotes/d251120e.htm (see WHOLE_SESSIONS_BEFORE_DEMO)."""
    first = world.sessions[world.sessions.index(DEMO_START) - WHOLE_SESSIONS_BEFORE_DEMO]
    whole = first <= day <= DEMO_END
    rows, market = day_rows(world, day) if whole else (stock_rows(world, day), world.market[day])
    if previous is not None:
        prev_turnover, prev_securities = world.market[previous].turnover, world.market[previous].securities
    else:
        prev_turnover, prev_securities = world.previous_turnover
    dated = f"{day:%d/%m/%Y}"
    lines = [
        "<html>",
        "<head>",
        "<title>Daily Quotations</title>",
        "</head>",
        "<body>",
        "<pre>",
        "                           THE STOCK EXCHANGE OF HONG KONG LIMITED",
        f"    EXCHANGE SQUARE, HONG KONG      TEL: 25221122      DATE: {headline_date(day)}",
        "",
        *(['<a href="#market_highlights">MARKET HIGHLIGHTS</a>'] if whole else []),
        '<a href="#quotations">QUOTATIONS</a>',
        '<a href="#sales_all">SALES RECORDS FOR ALL STOCKS</a>',
        '<a href="#sales_over">SALES RECORDS OVER $500,000</a>',
        '<a href="#amendments">AMENDMENT RECORDS FOR TRADE</a>',
        '<a href="#dealings_suspstocks">DEALINGS IN SECURITIES SUSPENDED DUE TO INSUFFICIENT PUBLIC FLOAT</a>',
        '<a href="#adj_turnover">ADJUSTED TURNOVER</a>',
        '<a href="#short_selling">SHORT SELLING TURNOVER - DAILY REPORT</a>',
        '<a href="#adj_short">PREVIOUS DAY\'S ADJUSTED SHORT SELLING TURNOVER</a>',
        f'<a href="#options_exercised">DETAILS OF OPTION EXERCISED ON {dated}</a>',
        '<a href="#efn_highlights">BOND/NOTES HIGHLIGHTS</a>',
        '<a href="#overseas_highlights">OVERSEAS TURNOVER HIGHLIGHTS</a>',
        '<a href="#other_info">OTHER INFORMATION</a>',
        RULE,
        *(
            [
                '                                   <a name = "market_highlights">MARKET HIGHLIGHTS</a>',
                "",
                f"{'':55}{dmy_upper(day)}{dmy_upper(previous or day - timedelta(days=1)):>17}",
                f"       TURNOVER ($){market.turnover:>48,}{prev_turnover:>17,}",
                f"       NO. OF SECURITIES TRADED{market.securities:>36,}{prev_securities:>17,}",
                RULE,
            ]
            if whole
            else []
        ),
        '                                      <a name = "quotations">QUOTATIONS</a>',
        "     CODE  NAME OF STOCK    CUR PRV.CLO./    ASK/    HIGH/      SHARES TRADED/",
        "                                CLOSING      BID     LOW        TURNOVER ($)",
        "",
    ]
    for code, name, currency, q in rows:
        ask, bid = q.close + q.tick, q.close - q.tick
        lines.append(
            f"{number_code(code, currency):>10} {name:<16} {currency}{q.prev_close:>8.2f}{ask:>9.2f}"
            f"{q.high:>9.2f}{q.shares:>21,}"
        )
        lines.append(f"{'':31}{q.close:>8.2f}{bid:>9.2f}{q.low:>9.2f}{q.turnover:>21,}")
    ckh = world.quotes[day]["00001"]
    lines += [
        "",
        RULE,
        '                            <a name = "sales_all">SALES RECORDS FOR ALL STOCKS</a>',
        "     CODE  NAME OF STOCK    SALES RECORD",
        f"         1 CKH HOLDINGS     [{ckh.close:.2f} U]20,000  {ckh.close - ckh.tick:.2f} 10,500  "
        f"{ckh.close:.2f} 8,000",
        RULE,
        '                            <a name = "sales_over">SALES RECORDS OVER $500,000</a>',
        RULE,
        '                            <a name = "amendments">AMENDMENT RECORDS FOR TRADE</a>',
        "                                        NIL",
        RULE,
        '        <a name = "dealings_suspstocks">DEALINGS IN SECURITIES SUSPENDED DUE TO INSUFFICIENT PUBLIC '
        "FLOAT</a>",
        "                                        NIL",
        RULE,
        '                                <a name = "adj_turnover">ADJUSTED TURNOVER</a>',
        "                                        NIL",
        RULE,
        '<a name = "short_selling">SHORT SELLING TURNOVER - DAILY REPORT</a>',
        "                           THE STOCK EXCHANGE OF HONG KONG LIMITED",
        f"    EXCHANGE SQUARE, HONG KONG      TEL: 25221122      DATE: {headline_date(day)}",
        "",
        "                          SHORT SELLING TURNOVER - DAILY REPORT",
        "",
        "                                 Total Short Selling Turnover             Total Turnover",
        "      CODE  NAME OF STOCK            (SH)             ($)             (SH)                ($)",
        "",
    ]
    for code, name, currency, q in rows:
        if q.short_value is not None:
            lines.append(
                f"{number_code(code, currency):>11} {name:<16}{q.short_shares:>15,}{q.short_value:>20,}"
                f"{q.shares:>16,}{q.turnover:>20,}"
            )
    lines += [
        "",
        *(
            [
                f"       Total Shares (SH):{market.c_shares:>18,}{market.traded:>36,}",
                "",
                *summary_lines(market, f"HKD{market.turnover:,}"),
                "",
            ]
            if whole
            else []
        ),
        '                       <a name = "adj_short">PREVIOUS DAY\'S ADJUSTED SHORT SELLING TURNOVER</a>',
        "",
        "      CODE  NAME OF STOCK            (SH)             ($)",
        "                                        NIL",
        RULE,
        f'                  <a name = "options_exercised">DETAILS OF OPTION EXERCISED ON {dated}</a>',
        "                                        NIL",
        RULE,
        '                               <a name = "efn_highlights">BOND/NOTES HIGHLIGHTS</a>',
        RULE,
        '                           <a name = "overseas_highlights">OVERSEAS TURNOVER HIGHLIGHTS</a>',
        RULE,
        '                               <a name = "other_info">OTHER INFORMATION</a>',
        "</pre>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode("latin-1")


def summary_lines(market: Market, turnover: str, non_designated: bool = False) -> list[str]:
    """The market summary block (§1 labels); `turnover` is the printed 'HKD…' amount."""
    lines = [
        f"Total No. of all Securities recording Short Selling                        : {market.stocks:>5,}",
        "(A) Short Selling of Designated Securities (excluding ETP)",
        f"    Short Selling Turnover Total Shares (SH)                  : {market.a_shares:>18,}",
        f"    Short Selling Turnover Total Value ($)                    : HKD {market.a_value:>14,}",
        f"Total market turnover                                         : {turnover:>18}",
        f"Short Selling of Designated Securities (excluding ETP) as % total turnover : "
        f"{percent(market.a_value, market.turnover)}",
        "(C) Short Selling of all Designated Securities",
        f"    Short Selling Turnover Total Shares (SH)                  : {market.c_shares:>18,}",
        f"    Short Selling Turnover Total Value ($)                    : HKD {market.c_value:>14,}",
        f"Total market turnover                                         : {turnover:>18}",
        f"Short Selling of all Designated Securities as % total turnover             : "
        f"{percent(market.c_value, market.turnover)}",
    ]
    if non_designated:
        lines += [
            "*Total No. of non-Designated Securities recording Short Selling            :     0",
            "    Short Selling Turnover Total Shares (SH)                  :                  0",
            "    Short Selling Turnover Total Value ($)                    : HKD              0",
        ]
    return lines


def percent(part: float, whole: float) -> str:
    """``24.97%``."""
    return f"{100 * part / whole:.2f}%" if whole else "0.00%"


ShortRow = tuple[str, str, str, int, int]  # code, name, currency, short shares, short value


def short_page(world: World, day: date, board: str, session: str = "close") -> bytes:
    """ASHTMAIN/ASHTGEM (day close), or MSHTMAIN/MSHTGEM with `session="morning"`, as in tests/fixtures/hkex-short/."""
    if board == "main":
        quoted, market = day_rows(world, day)
        rows: list[ShortRow] = [
            (code, name, currency, q.short_shares, q.short_value)
            for code, name, currency, q in quoted
            if q.short_value is not None and q.short_shares is not None
        ]
        newline, title = "\r\n", "Main Board"
    else:
        rows, market = gem_rows(day)
        newline, title = "\n", "GEM"
    if session == "morning":
        rows, market = morning_rows(day, board, rows, market)
    heading = "morning" if session == "morning" else "day"
    lines = [
        "<html>",
        "<head>",
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
        "<title>Short Selling Turnover</title>",
        "</head>",
        "<body>",
        f'<pre><font size="2" face="Courier New">Short Selling Turnover ({title}) up to {heading} close today',
        f"              SHORTSELL REPORT   TRADING DATE : {headline_date(day)}",
        "",
        "                                              Turnover",
        "      CODE   NAME OF STOCK               (SH)            ($)",
    ]
    for code, name, currency, shares, value in rows:
        shown = f"%{int(code):>5}" if currency != "HKD" else str(int(code))
        lines.append(f"{shown:>{12 if currency != 'HKD' else 11}}  {name:<16}{shares:>16,}{value:>15,}")
    lines += summary_lines(market, f"HKD {market.turnover:,}", non_designated=True)
    lines += ["</font></pre>", "</body>", "</html>", ""]
    return newline.join(lines).encode("latin-1")


def morning_rows(
    day: date, board: str, rows: list[ShortRow], market: Market
) -> tuple[list[ShortRow], Market]:
    """The same stocks up to the morning close: a share of each day-close row at its own average price.

    Each stock's morning part is 30-70% of its day (whole board lots of 100, at least one); the market block is
    the sum of the rows (the RMB counter at its HKD equivalent), the market turnover 40-60% of the day's; so a
    midday figure never exceeds the close figure of the same stock or board.
    """
    # Own generator per day and board: the midday pages never shift the day-close series. Fillers draw from
    # another, so the demo stocks' morning parts do not depend on how many fillers a day has.
    rng = np.random.default_rng([SEED, day.toordinal(), 1 if board == "main" else 2])
    filler_rng = np.random.default_rng([FILLER_SEED, day.toordinal(), 1 if board == "main" else 2])
    morning: list[ShortRow] = []
    for code, name, currency, shares, value in rows:
        draw = filler_rng if name == filler_name(code) else rng
        part = max(100, int(shares * draw.uniform(0.3, 0.7)) // 100 * 100)  # every day-close row has >= 200
        morning.append((code, name, currency, part, int(round(value * part / shares))))
    share = rng.uniform(0.4, 0.6)
    shares = sum(r[3] for r in morning)
    value = sum(hkd_equivalent(r[4], r[2]) for r in morning)
    if board == "gem":
        return morning, Market(len(morning), shares, value, shares, value, int(market.turnover * share), 0, 0)
    return morning, Market(
        stocks=len(morning),
        c_shares=shares,
        c_value=value,
        a_shares=int(shares * market.a_shares / market.c_shares),
        a_value=int(value * market.a_value / market.c_value),
        turnover=int(market.turnover * share),
        traded=0,
        securities=0,
    )


def gem_rows(day: date) -> tuple[list[ShortRow], Market]:
    """One or two GEM rows (YOUZAN daily, HONBRIDGE on some days) and the GEM totals they add up to."""
    rng = np.random.default_rng(
        SEED + day.toordinal()
    )  # own generator: GEM pages never shift the main series
    rows = [("08083", "YOUZAN", "HKD", 2000 * int(rng.integers(200, 900)), 0)]
    if day.day % 3 == 0:
        rows.append(("08137", "HONBRIDGE", "HKD", 10000 * int(rng.integers(2, 9)), 0))
    prices = {"08083": 0.084, "08137": 0.58}
    rows = [
        (code, name, cur, shares, int(round(shares * prices[code]))) for code, name, cur, shares, _ in rows
    ]
    shares, value = sum(r[3] for r in rows), sum(r[4] for r in rows)
    turnover = int(value / rng.uniform(0.08, 0.16))
    market = Market(len(rows), shares, value, shares, value, turnover, 0, 0)
    return rows, market


# --- hkex-di


DI_HEADER = (
    "Serial No",
    "Name of listed corporation",
    "Stock code",
    "Class of shares",
    "{holder}",
    "Date of relevant event",
    "Reason for disclosure",
    "Number of shares bought / sold / involved",
    "Average price per share",
    "Previous No. of shares (+%)",
    "Present No. of shares (+%)",
)
DI_TITLES = {
    1: ("Individual / Corporate Substantial Shareholders", "Name of substantial shareholder"),
    2: ("Directors' Interests in Shares of Listed Corporation", "Name of director"),
}
FORM_PAGES = {"IS": "NSForm1.aspx", "CS": "NSForm2.aspx", "DA": "NSForm3A.aspx"}


@dataclass(frozen=True)
class Notice:
    """One DI summary row (cells as printed)."""

    serial: str
    company: str
    code: str
    share_class: str
    holder: str
    event: date
    reason: str
    shares: str
    price: str
    before: str
    after: str


# Filing day -> (summary number, notice). Lei Jun's purchase is public; the other two are reconstructed.
NOTICES: dict[date, list[tuple[int, Notice]]] = {
    d(11, 19): [
        (
            1,
            Notice(
                "CS20251119E00064",
                "HSBC Holdings plc",
                "00005",
                "Ordinary shares",
                "Example Asset Management Limited",
                d(11, 14),
                "1201 (L)",
                "12,400,000(L)",
                "HKD 107.2300",
                "893,500,000(L) (5.06)",
                "881,100,000(L) (4.99)",
            ),
        )
    ],
    d(11, 21): [
        (
            2,
            Notice(
                "DA20251121E00142",
                "Sun Hung Kai Properties Limited",
                "00016",
                "Ordinary shares",
                "Chan Tai Man",
                d(11, 18),
                "1201(L)",
                "150,000(L)",
                "HKD 95.1200",
                "1,200,000(L) (0.04)",
                "1,050,000(L) (0.04)",
            ),
        )
    ],
    d(11, 26): [
        (
            2,
            Notice(
                "DA20251126E00187",
                "Xiaomi Corporation",
                "01810",
                "Class B",
                "Lei Jun",
                d(11, 24),
                "1101(L)",
                "2,600,000(L)",
                "HKD 38.5800",
                "3,986,413,134(L) (23.24)",
                "3,989,013,134(L) (23.26)",
            ),
        )
    ],
}


def di_page(day: date, number: int) -> bytes:
    """DSM{YYYYMMDD}C{n}.htm in the layout of tests/fixtures/hkex-di/ (CRLF; header only on a quiet day)."""
    title, holder = DI_TITLES[number]
    lines = [
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">',
        "<html>",
        "<head>",
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">',
        "<title>Disclosure of Interests - Daily Summary</title>",
        '<link href="../css/DI.css" rel="stylesheet" type="text/css">',
        "</head>",
        "<body>",
        '<table id="Table3" width="100%" border="1" cellspacing="0" cellpadding="2">',
        "  <tr>",
        f'    <td class="tbTitle" colspan="11">Disclosure of Interests - Daily Summary of Notices Filed - {title} '
        f"({day:%d/%m/%Y})</td>",
        "  </tr>",
        '  <tr class="tbHeader">',
        *(f"    <td>{label.format(holder=holder)}</td>" for label in DI_HEADER),
        "  </tr>",
    ]
    for n, notice in NOTICES.get(day, []):
        if n != number:
            continue
        page = FORM_PAGES[notice.serial[:2]]
        cells = [
            f'<a href="../{page}?fn={notice.serial}" target="_blank">{notice.serial}</a>',
            notice.company,
            notice.code,
            notice.share_class,
            notice.holder,
            f"{notice.event:%d/%m/%Y}",
            notice.reason,
            notice.shares,
            notice.price,
            notice.before,
            notice.after,
        ]
        lines += ['  <tr class="tbRow">', *(f"    <td>{cell}</td>" for cell in cells), "  </tr>"]
    lines += ["</table>", "</body>", "</html>", ""]
    return "\r\n".join(lines).encode("utf-8")


# --- hkex-southbound


def southbound_template() -> tuple[str, str, str]:
    """(head, row, tail) of the real 2026 English page fixture (t=sh excerpt), split around its result rows."""
    text = (FIXTURES / "hkex-southbound" / "hkex_sh_20260331_excerpt.html").read_bytes().decode("utf-8")
    # The demo serves the t=hk page: its form posts back to t=hk, and its % column is of issued shares (the §6
    # English label) rather than of SSE-listed A shares. The rest of the markup is the real page's, unchanged.
    text = replace_once(text, {'action="./mutualmarket.aspx?t=sh"': 'action="./mutualmarket.aspx?t=hk"'})
    sse_label = "% of the total number of securities listed and traded on the SSE"
    if text.count(sse_label) < 2:
        raise ValueError(f"template lacks the column label {sse_label!r}")
    text = text.replace(sse_label, "% of the total number of Issued Shares/Units")
    row_start = '<tr>\n<td class="col-stock-code">'
    first = text.index(row_start)
    second = text.index(row_start, first + 1)
    end = text.index("</tbody>")
    return text[:first], text[first:second], text[end:]


def southbound_page(world: World, day: date, template: tuple[str, str, str]) -> bytes:
    """mutualmarket.aspx?t=hk for a shareholding date, as the real 2026 page with this date's rows."""
    head, row, tail = template
    viewed = day + timedelta(days=1)  # the page is read the morning after the shareholding date
    # As on the real page: `today` is the day it is read; the latest date it offers (originalShareholdingDate,
    # the date picker's reset and MAX) is the day before, MIN a year back.
    head = replace_once(
        head,
        {
            "Shareholding Date: 2026/03/31": f"Shareholding Date: {day:%Y/%m/%d}",
            'value="2026/03/31" id="txtShareholdingDate"': f'value="{day:%Y/%m/%d}" id="txtShareholdingDate"',
            'id="today" value="20260616"': f'id="today" value="{viewed:%Y%m%d}"',
            'id="originalShareholdingDate" value="2026/06/15"': f'id="originalShareholdingDate" value="{day:%Y/%m/%d}"',
        },
    )
    tail = replace_once(
        tail,
        {
            "'data-reset', '2026/06/15'": f"'data-reset', '{day:%Y/%m/%d}'",
            "MAX: new Date('2026/06/15')": f"MAX: new Date('{day:%Y/%m/%d}')",
            "MIN: new Date('2025/06/16')": f"MIN: new Date('{viewed.replace(year=viewed.year - 1):%Y/%m/%d}')",
        },
    )
    rows = []
    for stock in STOCKS:
        if stock.code not in world.southbound[day]:
            continue
        shares, pct = world.southbound[day][stock.code]
        # HK codes space-padded to 5 as the real t=hk page prints them (2019); the 2026 sample is northbound.
        rows.append(
            replace_once(
                row,
                {
                    '"mobile-list-body">30001<': f'"mobile-list-body">{int(stock.code):>5}<',
                    '"mobile-list-body">SUZHOU HYC TECHNOLOGY CO.,LTD (A #688001)<': f'"mobile-list-body">{stock.name}<',
                    '"mobile-list-body">1,620,038<': f'"mobile-list-body">{shares:,}<',
                    '"mobile-list-body">0.36%<': f'"mobile-list-body">{pct:.2f}%<',
                },
            )
        )
    return (head + "".join(rows) + tail).encode("utf-8")


# --- hkex-stock-connect-daily


def connect_template() -> list[dict]:
    """The four channel objects of the real 2026-07-16 file (tests/fixtures/hkex-stock-connect-daily/)."""
    import json

    text = (FIXTURES / "hkex-stock-connect-daily" / "data_tab_daily_20260716e.js").read_text(encoding="utf-8")
    objects: list[dict] = json.loads(text.removeprefix("tabData = ").removesuffix(";"))
    if [obj["market"] for obj in objects] != list(CONNECT_CHANNELS):
        raise ValueError("the template's channels are not in the expected order")
    return objects


CONNECT_CHANNELS = ("SSE Northbound", "SSE Southbound", "SZSE Northbound", "SZSE Southbound")
# Northbound top-10 rows: A-share codes of each channel's reconstructed universe, printed "FILLER <code>".
NORTH_CODES = {
    "SSE Northbound": tuple(
        f"{code}"
        for code in (
            600036,
            600519,
            600900,
            601012,
            601318,
            601899,
            603259,
            603986,
            688041,
            688256,
            688981,
            600276,
            601138,
            600030,
        )
    ),
    "SZSE Northbound": tuple(
        f"{code:06d}"
        for code in (
            300750,
            300308,
            300502,
            300059,
            2594,
            333,
            858,
            2475,
            300760,
            651,
            300124,
            2415,
            300274,
            1979,
        )
    ),
}


def amount(cents: int) -> str:
    """``43,220.65`` from hundredths of a million."""
    return f"{cents // 100:,}.{cents % 100:02d}"


def connect_file(world: World, day: date, template: list[dict]) -> bytes:
    """data_tab_daily_{YYYYMMDD}e.js: the template's objects with this day's tables (one-space indented JSON)."""
    import copy
    import json

    rng = np.random.default_rng([SEED, 17, day.toordinal()])  # own generator per day
    objects = copy.deepcopy(template)
    closed = day in CONNECT_CLOSED
    split = float(rng.uniform(0.55, 0.65))  # the SSE channel's part of the market net
    market_net = PINNED_MARKET_NET.get(day, float(rng.normal(4_700, 3_000)))  # HK$ millions
    sse_net = int(round(market_net * split * 100))
    nets = {"SSE Southbound": sse_net, "SZSE Southbound": int(round(market_net * 100)) - sse_net}
    south = connect_south_rows(world, day, rng) if not closed else {}
    for obj in objects:
        channel = obj["market"]
        obj["date"] = day.isoformat()
        obj["tradingDay"] = 0 if closed else 1
        if closed:
            obj["content"] = []
            continue
        trading, top = obj["content"][0]["table"], obj["content"][1]["table"]
        if channel in south:
            trading["tr"] = cells(south_metrics(rng, channel, nets[channel]))
            top["tr"] = [{"td": [row]} for row in south[channel]]
        else:
            trading["tr"] = cells(north_metrics(rng))
            top["tr"] = [{"td": [row]} for row in north_rows(rng, channel)]
    return ("tabData = " + json.dumps(objects, indent=1, ensure_ascii=False) + ";").encode("utf-8")


def cells(values: list[str]) -> list[dict]:
    """A transposed trading table's rows: one ``{"td": [[value]]}`` per metric."""
    return [{"td": [[value]]} for value in values]


def south_metrics(rng: np.random.Generator, channel: str, net: int) -> list[str]:
    """Total/Buy/Sell Turnover (HK$m), Total/Buy/Sell Trade Count, ETF Turnover; buy - sell is `net` (cents)."""
    total = (
        int(rng.uniform(52_000, 68_000) * 100)
        if channel.startswith("SSE")
        else int(rng.uniform(34_000, 46_000) * 100)
    )
    buy = (total + net) // 2
    sell = buy - net
    buy_trades = int(buy / 100 * 1e6 / rng.uniform(45_000, 60_000))
    sell_trades = int(sell / 100 * 1e6 / rng.uniform(45_000, 60_000))
    etf = int((buy + sell) * rng.uniform(0.008, 0.02))
    return [
        amount(buy + sell),
        amount(buy),
        amount(sell),
        f"{buy_trades + sell_trades:,}",
        f"{buy_trades:,}",
        f"{sell_trades:,}",
        amount(etf),
    ]


def north_metrics(rng: np.random.Generator) -> list[str]:
    """Total Turnover (RMB m), Total Trade Count, DQB (printed 999,999,999 as in the real file), ETF Turnover."""
    total = int(rng.uniform(110_000, 150_000) * 100)
    trades = int(total / 100 * 1e6 / rng.uniform(15_000, 22_000))
    return [amount(total), f"{trades:,}", "999,999,999", amount(int(total * rng.uniform(0.015, 0.03)))]


def north_rows(rng: np.random.Generator, channel: str) -> list[list[str]]:
    """Ten reconstructed northbound rows: rank, A-share code, FILLER name, total (RMB)."""
    codes = rng.choice(NORTH_CODES[channel], 10, replace=False)
    totals = sorted((int(rng.uniform(1.2e9, 5.5e9)) for _ in codes), reverse=True)
    return [
        [str(rank), str(code), f"FILLER {code}", f"{total:,}"]
        for rank, (code, total) in enumerate(zip(codes, totals, strict=True), start=1)
    ]


def connect_south_rows(world: World, day: date, rng: np.random.Generator) -> dict[str, list[list[str]]]:
    """Each southbound channel's top 10 (the demo stocks, ranked by total): rank, code, name, buy, sell, total."""
    names = {stock.code: stock.name for stock in STOCKS}
    split: dict[str, list[tuple[str, int, int]]] = {"SSE Southbound": [], "SZSE Southbound": []}
    for code, (buy, sell) in world.flows[day].items():
        share = float(rng.uniform(0.5, 0.7))
        sse_buy = int(round(buy * share))
        sse_sell = int(round(sell * float(np.clip(share + rng.normal(0, 0.04), 0.3, 0.9))))
        split["SSE Southbound"].append((code, sse_buy, sse_sell))
        split["SZSE Southbound"].append((code, buy - sse_buy, sell - sse_sell))
    out = {}
    for channel, rows in split.items():
        ranked = sorted(rows, key=lambda row: (-(row[1] + row[2]), row[0]))
        out[channel] = [
            [str(rank), code, names[code], f"{buy:,}", f"{sell:,}", f"{buy + sell:,}"]
            for rank, (code, buy, sell) in enumerate(ranked, start=1)
        ]
    return out


# --- hkex-shortable-list


def shortable_csv(world: World, effective: date) -> bytes:
    """ds_list{YYYYMMDD}.csv in the real file's layout: its preamble and header, every security shorted in the demo.

    The demo stocks, the GEM rows and the fillers (all HKD equities), and from RMB_SHORTABLE_FROM the RMB counter
    (CNY), in code order and numbered 1..N; every line ends with a comma, CRLF, as in the real list of 18/05/2023.
    """
    real = (
        (FIXTURES / "hkex-shortable-list" / "ds_list20230518.csv").read_bytes().decode("ascii").split("\r\n")
    )
    preamble = [real[0], f"Effective date : {effective:%d/%m/%Y},", real[2], real[3], real[4]]
    if not real[1].startswith("Effective date :") or not real[4].startswith("No.,Stock Code,"):
        raise ValueError("the real list's preamble is not as expected")
    securities = [(s.code, s.name, "HKD") for s in STOCKS]
    securities += [("08083", "YOUZAN", "HKD"), ("08137", "HONBRIDGE", "HKD")]
    securities += [(f.code, filler_name(f.code), "HKD") for f in fillers(tuple(world.sessions))]
    if effective >= RMB_SHORTABLE_FROM:
        securities.append((RMB_CODE, RMB_NAME, "CNY"))
    lines = [
        f"{n},{int(code)},{name},{currency},EQTY,,,"
        for n, (code, name, currency) in enumerate(sorted(securities, key=lambda row: int(row[0])), start=1)
    ]
    return "\r\n".join(preamble + lines + [""]).encode("ascii")


def replace_once(text: str, changes: dict[str, str]) -> str:
    """Apply exact replacements, each of which must occur exactly once (the template is as expected)."""
    for old, new in changes.items():
        if text.count(old) != 1:
            raise ValueError(f"template has {text.count(old)} occurrences of {old!r}, expected 1")
        text = text.replace(old, new)
    return text


# --- sfc-short-positions


def sfc_csv(world: World, day: date) -> bytes:
    """Short_Position_Reporting_Aggregated_Data_{YYYYMMDD}.csv: header, every stock incl. zeros, LF."""
    names = {s.code: s.name for s in STOCKS} | {RMB_CODE: RMB_NAME}
    lines = [
        "Date,Stock Code,Stock Name,Aggregated Reportable Short Positions (Shares),"
        "Aggregated Reportable Short Positions (HK$)"
    ]
    for code in sorted(world.sfc[day], key=int):
        shares, value = world.sfc[day][code]
        lines.append(f"{day:%d/%m/%Y},{int(code)},{names[code]},{shares},{value}")
    return ("\n".join(lines) + "\n").encode("ascii")


# --- hkex-buybacks


@dataclass(frozen=True)
class Buyback:
    """One repurchase row: trade date, shares, prices (None = from the day's range), method, currency, line."""

    code: str
    name: str
    trade: date
    shares: int
    method: str = "Exchange"
    high: float | None = None
    low: float | None = None
    total: float | None = None
    currency: str = "HKD"
    sec_type: str = "ORD"


# Printed date -> rows. Xiaomi's two days are public (21.5 M shares, > HK$800 M); the rest is reconstructed.
# HSBC's London purchase is in GBP, as HSBC reports London purchases in today's report.
BUYBACKS: dict[date, list[Buyback]] = {
    d(11, 18): [Buyback("00700", "TENCENT", d(11, 17), 1_050_000)],
    d(11, 19): [
        Buyback("00005", "HSBC HOLDINGS", d(11, 17), 2_350_000, "London Stock Exchange", currency="GBP"),
        Buyback("00700", "TENCENT", d(11, 18), 1_020_000),
    ],
    d(11, 21): [
        Buyback(
            "01810",
            "XIAOMI-W",
            d(11, 20),
            10_400_000,
            high=39.30,
            low=38.40,
            total=404_126_480.00,
            sec_type="WVR ORD",
        )
    ],
    d(11, 24): [
        Buyback(
            "01810",
            "XIAOMI-W",
            d(11, 21),
            11_100_000,
            high=38.46,
            low=37.10,
            total=419_358_960.00,
            sec_type="WVR ORD",
        )
    ],
    d(11, 25): [Buyback("00700", "TENCENT", d(11, 24), 980_000)],
    d(11, 26): [Buyback("00700", "TENCENT", d(11, 25), 1_010_000)],
}
# Shares bought back under the mandate before the demo, and the shares in issue when it was granted.
YTD_BEFORE = {"00005": 251_300_000, "00700": 48_530_000, "01810": 0}
ISSUED_AT_MANDATE = {"00005": 17_800_000_000, "00700": 9_180_000_000, "01810": 25_960_000_000}
GBP_PER_HKD = 1 / 10.4  # the demo's fixed rate for HSBC's London prices (config/rules.toml uses 10.4)


def buyback_cells(world: World, printed: date) -> list[list[str]]:
    """Data rows (14 text cells, today's layout) of the report printed on `printed`, sorted by company."""
    ytd = dict(YTD_BEFORE)
    for day in sorted(BUYBACKS):
        rows = [buyback_row(world, b, ytd) for b in BUYBACKS[day]]
        if day == printed:
            return sorted(rows)
    return []


def buyback_row(world: World, b: Buyback, ytd: dict[str, int]) -> list[str]:
    """One row: a group of its own, so the starred aggregates are on it; every purchase is for cancellation."""
    q = world.quotes[b.trade][b.code]
    # Issuers buy in a narrow band around the day's average price, inside the day's range.
    vwap = (q.high + q.low + 2 * q.close) / 4
    high = b.high if b.high is not None else on_tick(min(q.high, vwap * 1.006), q.tick, "down")
    low = b.low if b.low is not None else on_tick(max(q.low, vwap * 0.994), q.tick, "up")
    if b.currency == "GBP":
        high, low = round(high * GBP_PER_HKD, 3), round(low * GBP_PER_HKD, 3)
    total = b.total if b.total is not None else round(b.shares * (0.45 * high + 0.55 * low), 2)
    ytd[b.code] += b.shares
    pct = 100 * ytd[b.code] / ISSUED_AT_MANDATE[b.code]
    lowest = (
        "" if low == high else f"{b.currency} {low:.2f}"
    )  # today's report leaves a single price's low blank
    return [
        b.name,
        str(int(b.code)),
        b.sec_type,
        f"{b.trade:%Y/%m/%d}",
        f"{b.shares:,}",
        f"{b.currency} {high:.2f}",
        lowest,
        f"{b.currency} {total:,.2f}",
        b.method,
        f"{b.shares:,}",
        f"{b.shares:,}",
        "0",
        f"{ytd[b.code]:,}",
        f"{pct:.4f}".rstrip("0").rstrip("."),
    ]


RealReport = tuple[list[str], str, str]  # header cells, "*" footnote, disclaimer


def real_report_strings() -> RealReport:
    """Header cells, footnote and disclaimer of the real 09/09/2026 report (the real-cells fixture)."""
    import json

    text = (FIXTURES / "hkex-buybacks" / "next-day-disclosure-00700-20260909.json").read_text(
        encoding="utf-8"
    )
    grid = json.loads(text)["documents"][0]["grid"]
    footnote = next(row[0] for row in grid if row[0].startswith("* "))
    return list(grid[4]), footnote, grid[-1][0]


def buyback_xls(printed: date, rows: list[list[str]], real: RealReport) -> bytes:
    """SRRPT{YYYYMMDD}.xls in today's layout: sheet SBNReport, all cells text, rows placed like the real report."""
    headers, footnote, disclaimer = real
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("SBNReport")
    plain = xlwt.easyxf("font: name Arial, height 160; align: vert top")
    wrapped = xlwt.easyxf("font: name Arial, height 160, bold on; align: wrap on, vert top")
    title = xlwt.easyxf("font: name Arial, height 200, bold on")
    for column in range(len(headers)):
        sheet.col(column).width = 4200 if column in (0, 8) else 3000
    sheet.write(1, 6, "Share Repurchase Report", title)
    sheet.write(2, 0, f"Date Printed : {printed:%d/%m/%Y}", plain)
    for column, text in enumerate(headers):
        sheet.write(4, column, text, wrapped)
    at = 7
    for row in rows:
        for column, text in enumerate(row):
            if text:
                sheet.write(at, column, text, plain)
        at += 1
    sheet.write(at + 1, 0, footnote, plain)
    sheet.write(at + 3, 0, "*** End Of Report ***", plain)
    sheet.write(at + 4, 0, disclaimer, plain)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write(root: Path, source: str, day: date, url_path: str, data: bytes) -> Path:
    """Write one file where alerts.localdata.local_path puts it."""
    path = local_path(root, source, day, url_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def clean(root: Path) -> None:
    """Remove every generated file (everything in `root` but the hand-written ones)."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name in KEEP:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def between(world: World, start: date, end: date) -> Iterable[date]:
    """Simulated sessions in [start, end]."""
    return (day for day in world.sessions if start <= day <= end)


def build(root: Path = ROOT) -> list[Path]:
    """Simulate and write every demo file under `root`; return the paths written."""
    world = simulate()
    clean(root)
    written: list[Path] = []
    previous: date | None = None
    for day in world.sessions:
        written.append(
            write(
                root,
                "hkex-quotes",
                day,
                get_source("hkex-quotes").paths(day)[0],
                quotes_file(world, day, previous),
            )
        )
        previous = day
    for day in between(world, DEMO_START, DEMO_END):
        main, gem = get_source("hkex-short").paths(day)
        written.append(write(root, "hkex-short", day, main, short_page(world, day, "main")))
        written.append(write(root, "hkex-short", day, gem, short_page(world, day, "gem")))
        main, gem = get_source("hkex-short-midday").paths(day)
        written.append(write(root, "hkex-short-midday", day, main, short_page(world, day, "main", "morning")))
        written.append(write(root, "hkex-short-midday", day, gem, short_page(world, day, "gem", "morning")))
        for number, url_path in enumerate(get_source("hkex-di").paths(day), start=1):
            written.append(write(root, "hkex-di", day, url_path, di_page(day, number)))
    real = real_report_strings()
    for day in between(world, DEMO_START, DEMO_END):
        data = buyback_xls(day, buyback_cells(world, day), real)
        written.append(write(root, "hkex-buybacks", day, get_source("hkex-buybacks").paths(day)[0], data))
    for day in world.sfc:
        written.append(
            write(
                root,
                "sfc-short-positions",
                day,
                get_source("sfc-short-positions").paths(day)[0],
                sfc_csv(world, day),
            )
        )
    connect = connect_template()
    for day in flow_days(world):
        source = get_source("hkex-stock-connect-daily")
        written.append(write(root, source.name, day, source.paths(day)[0], connect_file(world, day, connect)))
    for effective in SHORTABLE_LISTS:
        source = get_source("hkex-shortable-list")
        written.append(
            write(root, source.name, effective, source.paths(effective)[0], shortable_csv(world, effective))
        )
    template = southbound_template()
    for day in world.southbound:
        written.append(
            write(
                root,
                "hkex-southbound",
                day,
                get_source("hkex-southbound").paths(day)[0],
                southbound_page(world, day, template),
            )
        )
    return written


def main() -> int:
    """Build the data set and print a one-line summary."""
    written = build()
    size = sum(path.stat().st_size for path in written)
    print(f"wrote {len(written)} files, {size / 1e6:.2f} MB, under {ROOT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
