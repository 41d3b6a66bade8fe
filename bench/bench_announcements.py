"""Benchmark: one poll of HKEXnews announcements — parse a full day's title search answer, then the rule.

Run: ``python -m bench.bench_announcements [--rows 800] [--repeat 20]``.
The day is synthetic but in the layout of the real response (tests/fixtures/hkexnews-announcements/): `--rows`
filings of every stock, one in four listing two counters (``"00700<br/>80700"``), headline categories drawn so
that about one in ten is a corporate-finance category, the rest routine (results, circulars, returns). Each poll
parses the bytes and evaluates corporate_finance_event for every stock (no watchlist filter: the worst case).
CPU time (process time) per poll, pinned to one core like the other benches. Target (issue 16): ≤ 1 s per poll.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import random
import statistics
import time
from datetime import date, datetime

from alerts.calendar import HK_TZ
from alerts.rules import load_params
from alerts.rules.corporate_finance import evaluate_corporate_finance_event
from alerts.sources.hkexnews_announcements import parse
from bench.benchkit import cpu_model, yardstick
from tests.alerts.rules.frames import context

DAY = date(2026, 9, 9)
TARGET_S = 1.0
_ROUTINE = (
    "Announcements and Notices - [Interim Results]",
    "Announcements and Notices - [Change in Directorate]",
    "Circulars - [Major Transaction]",
    "Monthly Returns",
    "Next Day Disclosure Returns - [Others]",
    "Financial Statements&#x2f;ESG Information - [Interim&#x2f;Half-Year Report]",
)
_CORPORATE = (
    (
        "Announcements and Notices - [Placing &#x2f; Issue of Shares under a General Mandate]",
        "PLACING OF NEW SHARES AT A DISCOUNT OF APPROXIMATELY 9.8%",
    ),
    ("Announcements and Notices - [Rights Issue]", "PROPOSED RIGHTS ISSUE"),
    (
        "Next Day Disclosure Returns - [Others &#x2f; Share Buyback]",
        "Next Day Disclosure Return - Changes in issued shares and share buybacks",
    ),
)


def day_bytes(rows: int, seed: int = 16) -> bytes:
    """A title search answer for DAY with `rows` filings, HTML-escaped like the servlet's (Gson) output."""
    rng = random.Random(seed)
    items = []
    for n in range(rows):
        code = f"{rng.randrange(1, 9999):05d}"
        two = rng.random() < 0.25
        headline, title = (
            rng.choice(_CORPORATE) if rng.random() < 0.1 else (rng.choice(_ROUTINE), f"ANNOUNCEMENT NO. {n}")
        )
        minute = 6 * 60 + rng.randrange(17 * 60)
        items.append(
            {
                "FILE_INFO": "120KB",
                "NEWS_ID": str(12_400_000 + n),
                "SHORT_TEXT": headline + "<br/>",
                "TOTAL_COUNT": str(rows),
                "DOD_WEB_PATH": "",
                "STOCK_NAME": "NAME<br/>NAME-R" if two else "NAME",
                "TITLE": title,
                "FILE_TYPE": "PDF",
                "DATE_TIME": f"09/09/2026 {minute // 60:02d}:{minute % 60:02d}",
                "LONG_TEXT": headline,
                "STOCK_CODE": f"{code}<br/>8{code[1:]}" if two else code,
                "FILE_LINK": f"/listedco/listconews/sehk/2026/0909/20260909{n:05d}.pdf",
            }
        )
    escape = str.maketrans({"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "=": "\\u003d"})
    inner = json.dumps(items, ensure_ascii=False, separators=(",", ":")).translate(escape)
    outer = {"result": inner, "hasNextRow": False, "sortList": "[[0,0]]", "rowRange": 3000, "lang": "E"}
    outer |= {"loadedRecord": rows, "recordCnt": rows}
    return json.dumps(outer, ensure_ascii=False, separators=(",", ":")).encode()


def poll(data: bytes) -> tuple[float, float, int, int]:
    """CPU seconds of one poll: (parse, rule, rows, alerts)."""
    params = load_params()
    started = time.process_time()
    frame = parse(data)
    parsed = time.process_time()
    ctx = context(DAY, feeds={"announcements": frame}, moment=datetime(2026, 9, 9, 23, 59, tzinfo=HK_TZ))
    alerts, _ = evaluate_corporate_finance_event(ctx, params)
    return parsed - started, time.process_time() - parsed, len(frame), len(alerts)


def main() -> None:
    """Parse a day and run the rule `--repeat` times; print CPU seconds per poll."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    data = day_bytes(args.rows)
    poll(data)  # warm-up: imports, calendars, the parameters' TOML
    runs = [poll(data) for _ in range(args.repeat)]
    totals = [p + r for p, r, _, _ in runs]
    _, _, rows, alerts = runs[0]
    print(f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {cpu_model()}  yardstick {yardstick():.1f} ms")
    print(
        f"one day: {args.rows} filings, {len(data) / 1024:.0f} KiB, {rows} rows (one per code), {alerts} alerts"
    )
    print(
        f"CPU per poll: parse {statistics.mean(p for p, _, _, _ in runs) * 1000:.1f} ms + rule "
        f"{statistics.mean(r for _, r, _, _ in runs) * 1000:.1f} ms = mean {statistics.mean(totals) * 1000:.1f} ms, "
        f"worst {max(totals) * 1000:.1f} ms over {args.repeat} polls "
        f"({'✅' if max(totals) <= TARGET_S else '❌'} target ≤ {TARGET_S:.0f} s)"
    )


if __name__ == "__main__":
    main()
