"""Benchmark: all rules over a synthetic full market (2,600 stocks × 250 sessions), time per evaluated day.

The HK frames every rule context carries, plus the feeds of issue 16: the southbound top 10s of both Stock
Connect channels (20 rows a day, `southbound_flow`) and the short-selling list (quarterly revisions of ~1,000
designated securities, and one taking effect among the timed days, `shortable`).

Run: ``python -m bench.bench_rules [--stocks 2600] [--sessions 250] [--days 20] [--repeat 5]``.
Pinned to one CPU core (and single-threaded BLAS) so the figure is comparable with the ≤ 300 ms/day target.
Building the frames and slicing each day's history is setup, not timed; `evaluate` is.
"""

from __future__ import annotations

import os

# Before numpy loads: no BLAS/OpenMP thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time
from datetime import date

import numpy as np
import pandas as pd

from alerts.calendar import is_week_end_session, previous_sessions
from alerts.model import Alert
from alerts.rules import RuleContext, evaluate, load_params
from alerts.sources.common import conform
from alerts.sources.hkex_buybacks import SCHEMA as BUYBACK_SCHEMA
from alerts.sources.hkex_di import SCHEMA as DI_SCHEMA
from alerts.sources.hkex_quotes import SCHEMA as QUOTES_SCHEMA
from alerts.sources.hkex_short import MARKET_SCHEMA
from alerts.sources.hkex_shortable import SCHEMA as SHORTABLE_SCHEMA
from alerts.sources.hkex_southbound import SCHEMA as SOUTHBOUND_SCHEMA
from alerts.sources.hkex_stock_connect_daily import SCHEMA as FLOW_SCHEMA
from alerts.sources.sfc_short_positions import SCHEMA as SFC_SCHEMA

LAST_DAY = date(2025, 11, 28)


def build_market(stocks: int, sessions: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Synthetic frames with every source's SCHEMA, shaped like a real HK market."""
    rng = np.random.default_rng(seed)
    days = pd.DatetimeIndex([pd.Timestamp(d) for d in previous_sessions(LAST_DAY, sessions)])
    codes = np.array([f"{c:05d}" for c in _codes(stocks)], dtype=object)
    return {
        "quotes": _quotes(rng, days, codes),
        "market": _market(rng, days),
        "sfc": _sfc(rng, days, codes),
        "buybacks": _buybacks(rng, days, codes),
        "di": _di(rng, days, codes),
        "southbound": _southbound(rng, days, codes),
        "southbound_flow": _southbound_flow(rng, days, codes),
        "shortable": _shortable(rng, days, codes),
    }


def _codes(stocks: int) -> list[int]:
    """Main-board-like codes plus a few 8xxxx RMB counters."""
    rmb = max(stocks // 100, 1)
    return list(range(1, stocks - rmb + 1)) + list(range(80001, 80001 + rmb))


def _quotes(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    """One row per stock per session; ~40% of stocks designated for short selling, occasional spikes."""
    n_days, n_codes = len(days), len(codes)
    close = np.exp(rng.normal(1.5, 1.5, n_codes))[None, :] * np.exp(
        np.cumsum(rng.normal(0, 0.02, (n_days, n_codes)), 0)
    )
    turnover = np.exp(rng.normal(16.5, 2.0, n_codes))[None, :] * np.exp(rng.normal(0, 0.5, (n_days, n_codes)))
    designated = rng.random(n_codes) < 0.4
    base = rng.beta(2, 12, n_codes)
    ratio = np.clip(base[None, :] + rng.normal(0, 0.03, (n_days, n_codes)), 0.001, 0.95)
    ratio[rng.random((n_days, n_codes)) < 0.01] *= 3  # spikes
    ratio[rng.random((n_days, n_codes)) < 0.01] *= 0.1  # covering days
    ratio = np.clip(ratio, 0.0005, 0.99)
    shorted = designated[None, :] & (rng.random((n_days, n_codes)) < 0.85)
    suspended = rng.random((n_days, n_codes)) < 0.005
    non_hkd = np.array([c.startswith("8") for c in codes])
    short_value = np.where(shorted & ~suspended, ratio * turnover, np.nan)
    total_value = np.where(shorted & ~suspended, turnover, np.nan)
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), n_codes),
            "code": np.tile(codes, n_days),
            "name": np.tile(
                np.array([f"STOCK {c}" + ("-R" if c.startswith("8") else "") for c in codes]), n_days
            ),
            "currency": np.tile(np.where(non_hkd, "RMB", "HKD"), n_days),
            "prev_close": close.ravel() * 0.99,
            "close": np.where(suspended, np.nan, close).ravel(),
            "ask": close.ravel() * 1.001,
            "bid": close.ravel() * 0.999,
            "high": close.ravel() * 1.01,
            "low": close.ravel() * 0.99,
            "shares_traded": np.where(suspended, np.nan, np.round(turnover / close)).ravel(),
            "turnover": np.where(suspended, np.nan, turnover).ravel(),
            "suspended": suspended.ravel(),
            "short_shares": np.round(short_value / close).ravel(),
            "short_value": short_value.ravel(),
            "total_shares": np.round(total_value / close).ravel(),
            "total_value": total_value.ravel(),
            "short_ratio": np.where(shorted & ~suspended, ratio, np.nan).ravel(),
            "non_hkd": np.tile(non_hkd, n_days),
            "hkd_code": pd.array([None] * (n_days * n_codes), dtype="string"),
        }
    )
    return conform(frame, QUOTES_SCHEMA)


def _market(rng: np.random.Generator, days: pd.DatetimeIndex) -> pd.DataFrame:
    value = 4.5e10 * np.exp(rng.normal(0, 0.18, len(days)))
    turnover = value / rng.uniform(0.12, 0.18, len(days))
    frame = pd.DataFrame(
        {
            "date": days,
            "board": "main",
            "session": "close",
            "stocks_shorted": rng.integers(750, 900, len(days)),
            "short_shares": np.round(value / 8),
            "short_value": value,
            "market_turnover": turnover,
            "short_pct": value / turnover * 100,
        }
    )
    return conform(frame, MARKET_SCHEMA)


def _sfc(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    weeks = pd.DatetimeIndex([d for d in days if is_week_end_session(d.date())])
    listed = codes[: int(len(codes) * 0.38)]
    base = np.exp(rng.normal(16, 2, len(listed)))
    shares = np.round(base[None, :] * np.exp(np.cumsum(rng.normal(0, 0.08, (len(weeks), len(listed))), 0)))
    shares[rng.random(shares.shape) < 0.01] = 0
    price = np.exp(rng.normal(1.5, 1.5, len(listed)))
    frame = pd.DataFrame(
        {
            "date": np.repeat(weeks.to_numpy(), len(listed)),
            "code": np.tile(listed, len(weeks)),
            "name": np.tile(np.array([f"STOCK {c}" for c in listed]), len(weeks)),
            "short_shares": shares.ravel(),
            "short_value_hkd": (shares * price[None, :]).ravel(),
            "non_hkd": False,
            "hkd_code": pd.array([None] * shares.size, dtype="string"),
        }
    )
    return conform(frame, SFC_SCHEMA)


def _buybacks(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    per_day = 40
    report = np.repeat(days.to_numpy()[1:], per_day)
    trade = np.repeat(days.to_numpy()[:-1], per_day)
    n = len(report)
    high = np.exp(rng.normal(2, 1.2, n))
    shares = rng.integers(1, 500, n) * 1000
    frame = pd.DataFrame(
        {
            "report_date": report,
            "trade_date": trade,
            "code": rng.choice(codes[:1500], n),
            "name": "BUYER",
            "shares": shares,
            "price_high": high,
            "price_low": high * 0.98,
            "currency": "HKD",
            "total_paid": shares * high * 0.99,
            "method": "Exchange",
            "ytd_shares": shares * 10,
            "pct_of_issued": rng.uniform(0, 5, n),
            "sec_type": "ORD",
            # Today's 14-column report: every purchase for cancellation, one row a group, under a 10% mandate.
            "group_shares": shares,
            "for_cancellation": shares,
            "for_treasury": 0,
            "mandate_total": shares * 10,
            "mandate_pct": rng.uniform(0, 5, n),
            "note": None,
        }
    )
    return conform(frame, BUYBACK_SCHEMA)


def _di(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    per_day = 80
    filed = np.repeat(days.to_numpy(), per_day)
    n = len(filed)
    director = rng.random(n) < 0.5
    frame = pd.DataFrame(
        {
            "serial": [f"{'DA' if d else 'CS'}{i:08d}E{i % 100000:05d}" for i, d in enumerate(director)],
            "filed_date": filed,
            "event_date": filed - np.timedelta64(2, "D"),
            "code": rng.choice(codes, n),
            "name": "ISSUER",
            "holder": "HOLDER",
            "role": np.where(director, "director", "substantial_shareholder"),
            "event_code": "1101",
            "direction": rng.choice(["buy", "sell", "other"], n),
            "shares": rng.integers(1, 10**7, n),
            "avg_price": np.round(np.exp(rng.normal(2, 1.5, n)), 2),
            "currency": "HKD",
            "shares_after": rng.integers(10**7, 10**9, n),
            "pct_after": rng.uniform(0, 60, n),
            "position": "L",
            "form": np.where(director, "3A", "2"),
            "shares_before": rng.integers(10**7, 10**9, n),
            "pct_before": rng.uniform(0, 60, n),
        }
    )
    return conform(frame, DI_SCHEMA)


def _southbound(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    held = codes[:550]
    pct = np.clip(
        rng.uniform(0, 40, len(held))[None, :] + np.cumsum(rng.normal(0, 0.25, (len(days), len(held))), 0),
        0,
        70,
    )
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), len(held)),
            "code": np.tile(held, len(days)),
            "name": "SB",
            "shares": np.round(pct.ravel() * 1e6),
            "pct_of_issued": np.round(pct.ravel(), 2),
        }
    )
    return conform(frame, SOUTHBOUND_SCHEMA)


def _southbound_flow(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    """Each channel's top 10 a day (20 rows), drawn from the 40 most traded names; buy and sell ~HK$0.3-3bn."""
    channels = ("SSE Southbound", "SZSE Southbound")
    heavy = codes[:40]
    picked = np.array([rng.choice(heavy, 10, replace=False) for _ in range(len(days) * len(channels))])
    n = picked.size
    buy = np.round(np.exp(rng.normal(20.5, 0.6, n)))
    sell = np.round(buy * np.exp(rng.normal(0, 0.3, n)))
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), len(channels) * 10),
            "channel": np.tile(np.repeat(np.array(channels, dtype=object), 10), len(days)),
            "rank": np.tile(np.arange(1, 11), len(days) * len(channels)),
            "code": picked.ravel(),
            "name": "TOP",
            "buy_hkd": buy,
            "sell_hkd": sell,
            "total_hkd": buy + sell,
            "net_hkd": buy - sell,
        }
    )
    return conform(frame, FLOW_SCHEMA)


def _shortable(rng: np.random.Generator, days: pd.DatetimeIndex, codes: np.ndarray) -> pd.DataFrame:
    """Whole-list revisions every ~quarter (63 sessions) and one 5 sessions before the end; ~2% change each."""
    effective = sorted({*days[::63], days[-5]})
    listed = rng.random(len(codes)) < 0.4
    frames = []
    for when in effective:
        flip = rng.random(len(codes)) < 0.02
        listed = listed ^ flip
        on = codes[listed]
        frames.append(
            pd.DataFrame(
                {
                    "effective_date": when,
                    "no": np.arange(1, len(on) + 1),
                    "code": on,
                    "name": "LISTED",
                    "currency": "HKD",
                    "type": "EQTY",
                    "tick_rule_exempt": False,
                    "remarks": None,
                }
            )
        )
    return conform(pd.concat(frames, ignore_index=True), SHORTABLE_SCHEMA)


def _upto(frame: pd.DataFrame, column: str, day: date) -> pd.DataFrame:
    return frame.loc[frame[column].to_numpy() <= np.datetime64(day, "ns")].reset_index(drop=True)


def context_for(data: dict[str, pd.DataFrame], day: date, recent: tuple[Alert, ...]) -> RuleContext:
    """The day's context: every frame cut at `day` (files published up to it)."""
    return RuleContext(
        day=day,
        quotes=_upto(data["quotes"], "date", day),
        market=_upto(data["market"], "date", day),
        sfc=_upto(data["sfc"], "date", day),
        buybacks=_upto(data["buybacks"], "report_date", day),
        di=_upto(data["di"], "filed_date", day),
        southbound=_upto(data["southbound"], "date", day),
        recent_alerts=recent,
        feeds={
            "southbound_flow": _upto(data["southbound_flow"], "date", day),
            "shortable": _upto(data["shortable"], "effective_date", day),
        },
    )


def main(argv: list[str] | None = None) -> int:
    """Build the market, time evaluate on the last days, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stocks", type=int, default=2600)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    started = time.perf_counter()
    data = build_market(args.stocks, args.sessions)
    params = load_params()
    print(
        f"built {args.stocks} stocks × {args.sessions} sessions: "
        + ", ".join(f"{name} {len(frame):,}" for name, frame in data.items())
        + f" rows in {time.perf_counter() - started:.1f}s"
    )
    days = [ts.date() for ts in pd.DatetimeIndex(data["market"]["date"])[-args.days :]]
    evaluate(context_for(data, days[0], ()), params)  # warm caches (calendar, schedules, imports)

    print(f"{'day':<12}{'quotes rows':>12}{'alerts':>8}{'notes':>7}{'mean ms':>10}{'p95 ms':>9}")
    history: list[Alert] = []
    means: list[float] = []
    for day in days:
        ctx = context_for(data, day, tuple(history[-2000:]))
        timings = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = evaluate(ctx, params)
            timings.append((time.perf_counter() - t0) * 1000)
        history += result.alerts
        mean, p95 = float(np.mean(timings)), float(np.percentile(timings, 95))
        means.append(mean)
        print(
            f"{day.isoformat():<12}{len(ctx.quotes):>12,}{len(result.alerts):>8}{len(result.notes):>7}"
            f"{mean:>10.1f}{p95:>9.1f}"
        )
    print(
        f"over {len(days)} days: mean {np.mean(means):.1f} ms/day, p95 {np.percentile(means, 95):.1f} ms, "
        f"max {max(means):.1f} ms (target ≤ 300 ms/day, one core)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
