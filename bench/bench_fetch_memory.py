"""Benchmark: peak memory of a process fetching hostile bodies through alerts.fetch (issue 1).

Run: ``python -m bench.bench_fetch_memory``.
A local origin (tests/support/origin.py) serves four bodies; each is fetched by a fresh child process with the largest
declared cap (hkex-quotes, 50 MiB) and the child reports its peak RSS (VmHWM) and the time taken:
- a 1 GiB body streamed without Content-Length (generated lazily by the origin);
- a gzip bomb: ~1 MB of gzip (`Content-Encoding: gzip`) inflating to 1 GiB of zeros;
- a legitimate 30 MB HTML-like file, plain and gzip-encoded.
The "import only" row is the child's baseline (Python, httpx, pandas and the parsers loaded). Target: < 300 MB.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench.benchkit import machine_line
from tests.support.origin import Origin

MIB = 1024 * 1024
GIB = 1024 * MIB
LEGIT_BYTES = 30 * 1000 * 1000
TARGET_MB = 300.0

CHILD = """
import asyncio, resource, sys, time
from alerts.errors import SourceError
from alerts.fetch import fetch, make_client
import alerts.sources  # noqa: F401 - what a poller process has loaded anyway

async def main(url):
    async with make_client() as client:
        try:
            got = await fetch(client, url, source="hkex-quotes", retries=0)
        except SourceError as exc:
            return f"{type(exc).__name__}: {str(exc).split(' [')[0]}"
        return f"accepted {len(got.content):,} bytes"

url = sys.argv[1]
started = time.perf_counter()
outcome = asyncio.run(main(url)) if url != "-" else "-"
elapsed = time.perf_counter() - started
# VmHWM is this program's own peak (ru_maxrss survives execve and could report the parent's size).
try:
    peak_kb = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{peak_kb / 1024:.0f}|{elapsed:.2f}|{outcome}")
"""


def _zeros(total: int) -> Iterator[bytes]:
    block = bytes(MIB)
    for _ in range(total // MIB):
        yield block


def gzip_bomb() -> bytes:
    """~1 MB of gzip inflating to 1 GiB of zeros, compressed block by block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(compressor.compress(block) for block in _zeros(GIB)), compressor.flush()])


def legit_file() -> bytes:
    """About 30 MB of table rows shaped like the daily quotations file."""
    row = b"  00700 TENCENT          HKD   612.00   618.50   605.00   610.50   12,345,678   7,543,210,987\r\n"
    return row * (LEGIT_BYTES // len(row))


def child(url: str) -> tuple[float, float, str]:
    """Peak RSS (MB), seconds and outcome of a fresh process fetching `url` ("-": imports only)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url], capture_output=True, text=True, cwd=ROOT, timeout=300, check=True
    )
    rss, seconds, outcome = done.stdout.strip().splitlines()[-1].split("|", 2)
    return float(rss), float(seconds), outcome


def main() -> int:
    print(machine_line())
    started = time.perf_counter()
    bomb = gzip_bomb()
    print(f"gzip bomb built: {len(bomb):,} bytes → {GIB:,} decoded ({time.perf_counter() - started:.1f} s)")
    legit = legit_file()
    with Origin() as origin:
        origin.add("/huge", chunks=lambda: _zeros(GIB))
        origin.add("/bomb", bomb, content_encoding="gzip")
        origin.add("/legit", legit)
        origin.add("/legit-gz", gzip.compress(legit, 6), content_encoding="gzip")
        cases = [
            ("import only", "-"),
            ("1 GiB streamed, no Content-Length", origin.url + "/huge"),
            ("gzip bomb (1 MB → 1 GiB)", origin.url + "/bomb"),
            (f"legit {len(legit) / 1e6:.0f} MB", origin.url + "/legit"),
            (f"legit {len(legit) / 1e6:.0f} MB, gzip-encoded", origin.url + "/legit-gz"),
        ]
        print(f"\n| body | outcome | seconds | peak RSS | target < {TARGET_MB:.0f} MB |")
        print("|---|---|---|---|---|")
        worst = 0.0
        for label, url in cases:
            rss, seconds, outcome = child(url)
            worst = max(worst, rss)
            verdict = "✅" if rss < TARGET_MB else "❌"
            print(f"| {label} | {outcome} | {seconds:.2f} | {rss:.0f} MB | {verdict} |")
    print(f"\nworst peak RSS {worst:.0f} MB (target < {TARGET_MB:.0f} MB)")
    return 0 if worst < TARGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
