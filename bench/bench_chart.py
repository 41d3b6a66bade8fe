"""Benchmark: chart rendering per kind, and the cost of a cached send (Redis hit + file_id), on the demo data.

Run: ``python -m bench.bench_chart [--renders 20] [--sends 20] [--code 01810] [--write-docs]``.
Renders each chart kind (short, position, southbound) in English and Chinese `--renders` times after one warm-up
render, from the bundled demo data (alerts/demo_data, Aug–Nov 2025, so at most ~85 sessions of the 120 a chart
shows). Then sends through `bot.chartsend.ChartService` to the Bot API stand-in (tests/support/botapi.py) with a private
redis-server: the first send draws and uploads, later ones read Redis and pass Telegram's file_id.
Pinned to one CPU core, like the other benchmarks. Target: ≤ 300 ms per chart; a cached send ≈ free.
`--write-docs` writes docs/chart-01810.png (English) and docs/chart-01810-zh.png (繁中) from the demo data.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from redis.asyncio import Redis
from telegram import Bot

from alerts.history import History, load_directory
from bench.benchkit import percentile, private_redis, yardstick
from bot import charts
from bot.chartcache import ChartKey
from bot.chartsend import ChartService
from bot.view import DataView
from tests.support.botapi import BotApi
from tests.support.bothelpers import TOKEN  # noqa: E402  (the one documented test token)

DEMO = ROOT / "alerts" / "demo_data"
DOCS = ROOT / "docs"
TODAY = date(2025, 11, 28)  # the demo's last day
TARGET_MS = 300.0


def load_demo() -> History:
    """The demo data set, parsed."""
    return load_directory(DEMO, date(2025, 8, 1), TODAY)


def time_renders(
    history: History, code: str, kind: str, lang: str, renders: int
) -> tuple[list[float], list[float], bytes]:
    """Wall and CPU milliseconds of `renders` renders after one warm-up, and the PNG."""
    data = charts.prepare(kind, history.frames, code, TODAY)
    png = charts.render(data, "XIAOMI-W", lang)
    wall, cpu = [], []
    for _ in range(renders):
        started, started_cpu = time.perf_counter(), time.process_time()
        png = charts.render(data, "XIAOMI-W", lang)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return wall, cpu, png


async def timed(step: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` awaited runs."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await step()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def time_sends(history: History, code: str, sends: int) -> dict[str, list[float]]:
    """First send (draw + upload) and cached sends (Redis + file_id) through ChartService to the stand-in."""
    view = DataView(history, TODAY)

    async def provide() -> DataView:
        return view

    out: dict[str, list[float]] = {}
    with private_redis() as url, BotApi() as api:
        redis = Redis.from_url(url)
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            service = ChartService(redis, provide)
            out["first send (draw + upload)"] = await timed(
                lambda: service.send(bot, 1001, code, "short", "en"), 1
            )
            out["cached send (Redis + file_id)"] = await timed(
                lambda: service.send(bot, 1001, code, "short", "en"), sends
            )
            key = ChartKey(code, "short", "en", TODAY)
            out["  of which Redis read"] = await timed(lambda: service.cache.get(key), sends)
            out["  of which sendPhoto by file_id"] = await timed(
                lambda: bot.send_photo(1001, api.calls("sendPhoto")[-1].result["photo"][-1]["file_id"]), sends
            )
            uploads = sum(1 for c in api.calls("sendPhoto") if not isinstance(c.params.get("photo"), str))
            assert uploads == 1, f"expected one upload, saw {uploads}"
        await redis.aclose()
    return out


def write_docs(history: History, code: str) -> list[Path]:
    """The README's example charts from the demo data."""
    DOCS.mkdir(exist_ok=True)
    data = charts.prepare("short", history.frames, code, TODAY)
    written = []
    for lang, suffix in (("en", ""), ("zh", "-zh")):
        path = DOCS / f"chart-{code}{suffix}.png"
        path.write_bytes(charts.render(data, "XIAOMI-W" if code == "01810" else code, lang))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Time renders per kind and language, then sends; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--sends", type=int, default=20)
    parser.add_argument("--code", default="01810")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    history = load_demo()
    print(
        f"CJK font: {charts.cjk_family() or 'none (Chinese charts drawn with English labels)'}; "
        f"load average {os.getloadavg()[0]:.2f}; cores {os.cpu_count()}; "
        f"CPU yardstick sum(range(10**6)) {yardstick():.1f} ms (about 12-15 ms on an idle modern core)"
    )
    rows: list[tuple[str, list[float], str, str]] = []
    for kind in charts.KINDS:
        for lang in ("en", "zh"):
            wall, cpu, png = time_renders(history, args.code, kind, lang, args.renders)
            rows.append(
                (
                    f"render {kind} ({lang})",
                    wall,
                    f"{statistics.fmean(cpu):.1f}",
                    f"{len(png) / 1024:.0f} KiB",
                )
            )
    sends = asyncio.run(time_sends(history, args.code, args.sends))
    rows += [(name, timings, "", "") for name, timings in sends.items()]
    print(
        f"\n{'step':<34} {'n':>3} {'mean ms':>9} {'p95 ms':>8} {'max ms':>8} {'CPU ms':>8} {'PNG':>8}  target"
    )
    for name, timings, cpu_ms, size in rows:
        target = f"≤ {TARGET_MS:.0f} ms" if name.startswith("render") else ""
        verdict = ("ok" if percentile(timings, 95) <= TARGET_MS else "MISSED") if target else ""
        print(
            f"{name:<34} {len(timings):>3} {statistics.fmean(timings):>9.1f} {percentile(timings, 95):>8.1f} "
            f"{max(timings):>8.1f} {cpu_ms:>8} {size:>8}  {target} {verdict}".rstrip()
        )
    if args.write_docs:
        for path in write_docs(history, args.code):
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
