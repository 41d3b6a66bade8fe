"""Benchmark: one US day of FINRA short volume — parse the day's CNMS file, then evaluate the US short-ratio rules.

Run: ``python -m bench.bench_finra [--symbols 10000] [--sessions 250] [--repeat 5]``.
The symbols are the 9,714 of the real 2021-04-27 file (tests/fixtures/finra-short-volume/), padded with made-up
ones up to --symbols; volumes start from each symbol's real total volume. History is synthetic (`--sessions`
XNYS sessions ending on the evaluated day). The day's file is rendered as real CNMS bytes (CRLF, trailer).
Pinned to one CPU core (and single-threaded BLAS), like bench_rules.py. Target: parse + evaluate ≤ 1 s.
"""

from __future__ import annotations

import os

# Before numpy loads: no BLAS/OpenMP thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from alerts.calendar import previous_sessions
from alerts.rules import load_params
from alerts.rules.us_short_volume import evaluate_us_short_volume
from alerts.sources.common import conform
from alerts.sources.finra_short_volume import HEADER, SCHEMA, parse

REAL = ROOT / "tests" / "fixtures" / "finra-short-volume" / "CNMSshvol20210427.txt"
LAST_DAY = date(2025, 11, 26)
TARGET_MS = 1000.0


def real_symbols() -> tuple[list[str], np.ndarray]:
    """Symbols and total volumes of the real file."""
    frame = parse(REAL.read_bytes())
    return frame["symbol"].tolist(), frame["total_volume"].to_numpy()


def build_history(symbols: int, sessions: int, seed: int = 11) -> pd.DataFrame:
    """`sessions` XNYS sessions × `symbols` rows with the finra-short-volume SCHEMA."""
    rng = np.random.default_rng(seed)
    names, volumes = real_symbols()
    extra = max(symbols - len(names), 0)
    names = (names + [f"ZZB{i:05d}" for i in range(extra)])[:symbols]
    base_volume = np.concatenate([volumes, rng.choice(volumes, extra)])[:symbols]
    days = pd.DatetimeIndex([pd.Timestamp(d) for d in previous_sessions(LAST_DAY, sessions, "XNYS")])
    n_days, n_symbols = len(days), len(names)
    total = np.round(base_volume[None, :] * np.exp(rng.normal(0, 0.4, (n_days, n_symbols))))
    ratio = np.clip(rng.beta(9, 11, n_symbols)[None, :] + rng.normal(0, 0.06, (n_days, n_symbols)), 0.0, 1.0)
    ratio[rng.random((n_days, n_symbols)) < 0.01] *= 1.5  # spikes
    ratio[rng.random((n_days, n_symbols)) < 0.01] *= 0.5  # covering days
    ratio = np.clip(ratio, 0.0, 1.0)
    short = np.round(ratio * total)
    exempt = np.round(short * rng.uniform(0, 0.02, (n_days, n_symbols)))
    with np.errstate(divide="ignore", invalid="ignore"):
        short_ratio = np.where(total > 0, short / total, np.nan)
    frame = pd.DataFrame(
        {
            "date": np.repeat(days.to_numpy(), n_symbols),
            "symbol": np.tile(np.array(names, dtype=object), n_days),
            "short_volume": short.ravel(),
            "short_exempt_volume": exempt.ravel(),
            "total_volume": total.ravel(),
            "market": np.tile(
                np.array(["B,Q,N", "Q,N", "Q"], dtype=object)[np.arange(n_symbols) % 3], n_days
            ),
            "short_ratio": short_ratio.ravel(),
        }
    )
    return conform(frame, SCHEMA)


def render(day_rows: pd.DataFrame) -> bytes:
    """The day's rows as a CNMS file: header, pipe rows, row-count trailer, CRLF."""
    stamp = pd.Timestamp(day_rows["date"].iloc[0]).strftime("%Y%m%d")
    lines = [HEADER]
    lines += [
        f"{stamp}|{sym}|{short:.0f}|{exempt:.0f}|{total:.0f}|{market}"
        for sym, short, exempt, total, market in zip(
            day_rows["symbol"],
            day_rows["short_volume"],
            day_rows["short_exempt_volume"],
            day_rows["total_volume"],
            day_rows["market"],
            strict=True,
        )
    ]
    lines.append(str(len(day_rows)))
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def timed(step: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    """Milliseconds of each run and the last result."""
    timings, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = step()
        timings.append((time.perf_counter() - t0) * 1000)
    return timings, result


def main(argv: list[str] | None = None) -> int:
    """Build the history, time parse and evaluate for the last day, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    started = time.perf_counter()
    history = build_history(args.symbols, args.sessions)
    last = history["date"] == pd.Timestamp(LAST_DAY)
    data = render(history.loc[last])
    before = history.loc[~last].reset_index(drop=True)
    params = load_params()
    print(
        f"built {args.symbols:,} symbols × {args.sessions} sessions = {len(history):,} rows, day file "
        f"{len(data) / 1e6:.2f} MB in {time.perf_counter() - started:.1f}s"
    )

    parse(data)  # warm: imports, regex
    parse_ms, today = timed(lambda: parse(data), args.repeat)
    assert isinstance(today, pd.DataFrame) and len(today) == int(last.sum())
    t0 = time.perf_counter()
    frame = pd.concat([before, today], ignore_index=True)
    concat_ms = (time.perf_counter() - t0) * 1000
    evaluate_us_short_volume(frame, LAST_DAY, params)  # warm: calendar, schedule
    eval_ms, result = timed(lambda: evaluate_us_short_volume(frame, LAST_DAY, params), args.repeat)
    alerts, notes = result  # type: ignore[misc]

    print(f"{'step':<28}{'rows':>12}{'mean ms':>10}{'p95 ms':>9}{'max ms':>9}")
    for name, rows, timings in (
        ("parse day file", len(today), parse_ms),
        ("evaluate US short volume", len(frame), eval_ms),
    ):
        print(
            f"{name:<28}{rows:>12,}{np.mean(timings):>10.1f}{np.percentile(timings, 95):>9.1f}"
            f"{max(timings):>9.1f}"
        )
    total = float(np.mean(parse_ms) + np.mean(eval_ms))
    worst = max(parse_ms) + max(eval_ms)
    print(f"(concat of history + parsed day, setup: {concat_ms:.1f} ms)")
    spikes = sum(a.rule == "short_ratio_spike" for a in alerts)
    print(f"alerts {len(alerts)} ({spikes} spike, {len(alerts) - spikes} drop), notes {len(notes)}")
    print(
        f"parse + evaluate: mean {total:.1f} ms, worst {worst:.1f} ms "
        f"(target ≤ {TARGET_MS:.0f} ms, one core): {'OK' if worst <= TARGET_MS else 'OVER'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
