"""A hostile or broken origin cannot exhaust memory or hold a request forever (real HTTP, local origin).

Bodies are capped per source (decoded bytes: a gzip bomb stops at the cap), a declared Content-Length over the cap
is refused before the body is read, and every request has a total deadline. Peak RSS is measured in a child process.
"""

from __future__ import annotations

import functools
import gzip
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import pytest

from alerts.errors import FetchFailed, MalformedFile
from alerts.fetch import fetch, make_client
from alerts.sources import SOURCES, get_source
from alerts.sources.base import DEFAULT_MAX_BYTES
from tests.support.origin import Origin

MIB = 1024 * 1024
GIB = 1024 * MIB
CAP = 50 * MIB  # the largest declared cap (hkex-quotes)
RSS_LIMIT_MB = 300


def _zeros(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """`total` zero bytes, one chunk at a time (never held whole)."""
    block = bytes(chunk)
    for _ in range(total // chunk):
        yield block


@functools.cache
def gzip_bomb() -> bytes:
    """~1 MB of gzip that inflates to 1 GiB of zeros, compressed block by block (level 9)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    parts = [compressor.compress(block) for block in _zeros(GIB)]
    parts.append(compressor.flush())
    return b"".join(parts)


class Counter:
    """Chunks of 1 MiB zeros up to 1 GiB, counting how many the origin produced."""

    def __init__(self, total: int = GIB) -> None:
        self.total, self.sent = total, 0

    def __call__(self) -> Iterator[bytes]:
        for block in _zeros(self.total):
            self.sent += len(block)
            yield block


def test_caps_are_declared_with_the_sources() -> None:
    assert get_source("hkex-quotes").max_bytes == CAP  # its daily file is ~30 MB of HTML
    # Every other source keeps the 20 MiB default or declares a tighter cap of its own (small daily files).
    assert DEFAULT_MAX_BYTES == 20 * MIB
    assert all(0 < s.max_bytes <= DEFAULT_MAX_BYTES for n, s in SOURCES.items() if n != "hkex-quotes")
    assert get_source("hkex-stock-connect-daily").max_bytes == MIB


async def test_endless_body_is_refused_at_the_cap(origin: Origin) -> None:
    body = Counter()
    origin.add("/huge", chunks=body)
    started = time.monotonic()
    async with make_client() as client:
        with pytest.raises(MalformedFile, match=f"too large: more than {CAP} bytes") as info:
            await fetch(client, origin.url + "/huge", source="hkex-quotes", max_bytes=CAP, retries=0)
    assert time.monotonic() - started < 10
    assert info.value.source == "hkex-quotes" and info.value.url == origin.url + "/huge"
    assert body.sent < 4 * CAP  # the origin stopped soon after the cap (socket buffers aside), not at 1 GiB


async def test_the_registered_cap_applies_when_the_caller_names_none(origin: Origin) -> None:
    origin.add("/huge", chunks=Counter())
    async with make_client() as client:
        with pytest.raises(MalformedFile, match=f"more than {DEFAULT_MAX_BYTES} bytes"):
            await fetch(client, origin.url + "/huge", source="hkex-di", retries=0)
        with pytest.raises(MalformedFile, match=f"more than {CAP} bytes"):
            await fetch(client, origin.url + "/huge", source="hkex-quotes", retries=0)


async def test_gzip_bomb_is_refused_on_its_decoded_size(origin: Origin) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 2 * MIB
    route = origin.add("/bomb", bomb, content_encoding="gzip")
    async with make_client() as client:
        with pytest.raises(MalformedFile, match="too large"):
            await fetch(client, origin.url + "/bomb", max_bytes=CAP, retries=0)
    assert route.hits == 1  # refused, not retried


async def test_declared_length_over_the_cap_is_refused_before_the_body(origin: Origin) -> None:
    body = Counter(total=64 * MIB)
    origin.add("/declared", chunks=body, content_length=GIB, chunk_delay=1.0)  # 1 MiB a second
    started = time.monotonic()
    async with make_client() as client:
        with pytest.raises(MalformedFile, match="too large"):
            await fetch(client, origin.url + "/declared", max_bytes=CAP, retries=0)
    assert time.monotonic() - started < 1.0  # the first chunk alone would take a second to follow


async def test_a_body_at_the_cap_is_accepted_one_byte_more_is_not(origin: Origin) -> None:
    cap = 3 * MIB
    origin.add("/exact", chunks=Counter(total=cap))
    origin.add("/over", chunks=lambda: iter([bytes(cap), b"x"]))
    origin.add("/gz", gzip.compress(b"a,b\n" * (cap // 4)), content_encoding="gzip")
    origin.add("/declared", bytes(cap))  # Content-Length equal to the cap
    async with make_client() as client:
        assert len((await fetch(client, origin.url + "/exact", max_bytes=cap)).content) == cap
        assert (await fetch(client, origin.url + "/gz", max_bytes=cap)).content == b"a,b\n" * (cap // 4)
        assert len((await fetch(client, origin.url + "/declared", max_bytes=cap)).content) == cap
        with pytest.raises(MalformedFile, match="too large"):
            await fetch(client, origin.url + "/over", max_bytes=cap, retries=0)


async def test_trickling_origin_hits_the_total_deadline_and_is_retried(origin: Origin) -> None:
    route = origin.add("/slow", chunks=lambda: iter([b"x"] * 60), chunk_delay=2.0)  # one byte every 2 s
    started = time.monotonic()
    async with make_client() as client:  # per-read timeout 30 s: only the total deadline stops this
        with pytest.raises(
            FetchFailed, match=r"gave up after 2 attempts: timeout \(no complete answer within 1 s\)"
        ):
            await fetch(client, origin.url + "/slow", deadline=1.0, retries=1, backoff=0.01)
    assert time.monotonic() - started < 2 * 1.0 + 1.5
    assert route.hits == 2


# The child fetches the 1 GiB body and the bomb with the largest cap and prints its peak RSS (kB on Linux).
CHILD = """
import asyncio, resource, sys
from alerts.errors import MalformedFile
from alerts.fetch import fetch, make_client

async def main(base):
    async with make_client() as client:
        for path in ("/huge", "/bomb"):
            try:
                await fetch(client, base + path, source="hkex-quotes", retries=0)
            except MalformedFile as exc:
                print(path, "refused:", exc)
            else:
                print(path, "accepted")

asyncio.run(main(sys.argv[1]))
# VmHWM is this program's own peak: ru_maxrss survives execve, so it would report the forking pytest's size.
try:
    peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("maxrss_kb", peak)
"""


def test_peak_memory_of_a_process_fetching_1gib_and_a_gzip_bomb(origin: Origin) -> None:
    origin.add("/huge", chunks=Counter())
    origin.add("/bomb", gzip_bomb(), content_encoding="gzip")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, origin.url], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("/huge refused: too large") and lines[1].startswith("/bomb refused: too large")
    peak_mb = int(lines[-1].split()[1]) / 1024
    assert peak_mb < RSS_LIMIT_MB, result.stdout
