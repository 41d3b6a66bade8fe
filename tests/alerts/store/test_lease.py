"""The Redis leader lease against a real redis-server, including outages through a TCP proxy we can cut."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.lease import Lease, default_owner

TTL = 0.3


class Proxy:
    """A loopback TCP proxy to the test Redis; `stop()` is an outage (refused connections), `start()` ends it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Abort instead of cancelling the tasks (asyncio 3.11 logs an error per cancelled connection task).
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.fixture
async def proxy(redis_url: str, redis: Redis) -> AsyncIterator[Proxy]:
    """A running proxy in front of the (flushed) test Redis."""
    server = Proxy(urlparse(redis_url).port or 6379)
    await server.start()
    yield server
    await server.stop()


def _client(port: int) -> Redis:
    # Short socket timeouts so an outage shows up as errors, not as a hang; Lease.keep bounds each attempt anyway.
    return Redis(host="127.0.0.1", port=port, socket_timeout=0.2, socket_connect_timeout=0.2)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: nothing listens there


async def _pttl(redis: Redis, name: str = "leader") -> int:
    return int(await redis.pttl(keys.leader_lease(name)))


def test_default_owner_names_host_pid_and_random_suffix() -> None:
    host, pid, suffix = default_owner().rsplit(":", 2)
    assert host == socket.gethostname()
    assert pid == str(os.getpid())
    assert len(suffix) == 8
    int(suffix, 16)
    assert default_owner() != default_owner()


def test_key_and_default_ttl() -> None:
    assert keys.leader_lease("leader") == "pb:lease:leader"
    assert keys.LEADER_LEASE_TTL_SECONDS == 30.0
    with pytest.raises(ValueError, match="positive"):
        Lease(Redis(), ttl_seconds=0)


async def test_only_one_of_two_owners_acquires(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=30, owner="a"), Lease(redis, ttl_seconds=30, owner="b")
    assert await a.acquire() is True
    assert await b.acquire() is False
    assert await a.holder() == "a"
    assert await b.holder() == "a"
    assert await redis.get("pb:lease:leader") == b"a"
    assert 29_000 < await _pttl(redis) <= 30_000
    # Acquiring again while holding it is a renewal, not a failure.
    await redis.pexpire("pb:lease:leader", 5_000)
    assert await a.acquire() is True
    assert 29_000 < await _pttl(redis) <= 30_000


async def test_names_are_independent(redis: Redis) -> None:
    assert await Lease(redis, "scheduler", owner="a").acquire()
    assert await Lease(redis, "poller", owner="b").acquire()
    assert await Lease(redis, "scheduler", owner="b").holder() == "a"
    assert await Lease(redis, "poller", owner="a").holder() == "b"


async def test_renew_by_non_owner_fails_and_does_not_extend(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=30, owner="a"), Lease(redis, ttl_seconds=30, owner="b")
    assert await a.acquire()
    await redis.pexpire("pb:lease:leader", 2_000)
    assert await b.renew() is False
    assert await _pttl(redis) <= 2_000
    assert await a.renew() is True
    assert await _pttl(redis) > 29_000


async def test_renew_without_lease_does_not_create_it(redis: Redis) -> None:
    assert await Lease(redis, owner="a").renew() is False
    assert await redis.exists("pb:lease:leader") == 0


async def test_release_only_by_owner(redis: Redis) -> None:
    a, b = Lease(redis, owner="a"), Lease(redis, owner="b")
    assert await a.acquire()
    assert await b.release() is False
    assert await a.holder() == "a"
    assert await a.release() is True
    assert await a.holder() is None
    assert await a.release() is False
    assert await b.acquire() is True


async def test_other_acquires_after_holder_stops_renewing(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=TTL, owner="a"), Lease(redis, ttl_seconds=TTL, owner="b")
    assert await a.acquire()
    assert await b.acquire() is False
    await asyncio.sleep(TTL / 2)
    assert await b.acquire() is False
    await asyncio.sleep(TTL / 2 + 0.1)
    assert await b.acquire() is True
    assert await a.holder() == "b"
    assert await a.renew() is False  # the old holder cannot take it back by renewing


async def test_keep_holds_the_lease_past_its_ttl(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=TTL, owner="a"), Lease(redis, ttl_seconds=TTL, owner="b")
    assert await a.acquire()
    lost, stop = asyncio.Event(), asyncio.Event()
    keeper = asyncio.create_task(a.keep(lost, stop=stop))
    await asyncio.sleep(TTL * 4)
    assert not lost.is_set()
    assert await b.acquire() is False
    assert await a.holder() == "a"
    stop.set()
    await asyncio.wait_for(keeper, timeout=1)
    assert not lost.is_set()
    # stop ends keep() without releasing: the caller decides when to hand over.
    assert await a.holder() == "a"


@pytest.mark.parametrize("steal", [True, False])
async def test_keep_sets_lost_when_key_is_stolen_or_deleted(redis: Redis, steal: bool) -> None:
    a = Lease(redis, ttl_seconds=30, owner="a")
    assert await a.acquire()
    lost = asyncio.Event()
    keeper = asyncio.create_task(a.keep(lost, every_seconds=0.05))
    await asyncio.sleep(0.12)
    assert not lost.is_set()
    if steal:
        await redis.set("pb:lease:leader", "intruder", px=30_000)
    else:
        await redis.delete("pb:lease:leader")
    await asyncio.wait_for(lost.wait(), timeout=1)
    await asyncio.wait_for(keeper, timeout=1)
    assert await a.holder() == ("intruder" if steal else None)
    assert a.valid_for <= 0


async def test_wait_acquire_returns_when_holder_releases(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=30, owner="a"), Lease(redis, ttl_seconds=30, owner="b")
    assert await a.acquire()
    waiter = asyncio.create_task(b.wait_acquire(poll_seconds=0.05))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    await a.release()
    assert await asyncio.wait_for(waiter, timeout=1) is True
    assert await a.holder() == "b"


async def test_wait_acquire_takes_over_a_dead_holder_within_ttl(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=TTL, owner="a"), Lease(redis, ttl_seconds=TTL, owner="b")
    assert await a.acquire()
    started = time.monotonic()
    assert await asyncio.wait_for(b.wait_acquire(poll_seconds=0.02), timeout=2) is True
    assert TTL - 0.05 < time.monotonic() - started < TTL + 0.3
    assert await b.holder() == "b"


async def test_stop_ends_wait_acquire_with_false(redis: Redis) -> None:
    a, b = Lease(redis, ttl_seconds=30, owner="a"), Lease(redis, ttl_seconds=30, owner="b")
    assert await a.acquire()
    stop = asyncio.Event()
    waiter = asyncio.create_task(b.wait_acquire(poll_seconds=10, stop=stop))
    await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(waiter, timeout=1) is False
    assert await a.holder() == "a"
    # Already-set stop: returns False without touching Redis.
    assert await Lease(Redis(port=_dead_port()), owner="c").wait_acquire(stop=stop) is False


async def test_wait_acquire_survives_redis_outage(redis: Redis, proxy: Proxy) -> None:
    await proxy.stop()
    client = _client(proxy.port)
    try:
        lease = Lease(client, ttl_seconds=30, owner="standby")
        waiter = asyncio.create_task(lease.wait_acquire(poll_seconds=0.05))
        await asyncio.sleep(0.5)
        assert not waiter.done()
        await proxy.start()
        assert await asyncio.wait_for(waiter, timeout=3) is True
        assert await redis.get("pb:lease:leader") == b"standby"
    finally:
        await client.aclose()


async def test_keep_steps_down_only_after_ttl_when_redis_is_unreachable(redis: Redis, proxy: Proxy) -> None:
    ttl = 0.6
    client = _client(proxy.port)
    try:
        lease = Lease(client, ttl_seconds=ttl, owner="a")
        assert await lease.acquire()
        acquired = time.monotonic()
        lost = asyncio.Event()
        keeper = asyncio.create_task(lease.keep(lost, every_seconds=0.05))
        await proxy.stop()
        await asyncio.sleep(ttl / 2)
        assert not lost.is_set()
        await asyncio.wait_for(lost.wait(), timeout=ttl + 1)
        waited = time.monotonic() - acquired
        assert ttl - 0.05 <= waited < ttl + 0.4
        await asyncio.wait_for(keeper, timeout=1)
        assert lease.valid_for <= 0
    finally:
        await client.aclose()


async def test_keep_rides_out_a_short_redis_blip(redis: Redis, proxy: Proxy) -> None:
    ttl = 1.0
    client = _client(proxy.port)
    try:
        lease = Lease(client, ttl_seconds=ttl, owner="a")
        assert await lease.acquire()
        lost, stop = asyncio.Event(), asyncio.Event()
        keeper = asyncio.create_task(lease.keep(lost, every_seconds=0.05, stop=stop))
        await asyncio.sleep(0.1)
        await proxy.stop()
        await asyncio.sleep(ttl / 3)
        await proxy.start()
        await asyncio.sleep(ttl)  # renewals have resumed: well past the original expiry
        assert not lost.is_set()
        assert await redis.get("pb:lease:leader") == b"a"
        assert await redis.pttl("pb:lease:leader") > 600
        stop.set()
        await asyncio.wait_for(keeper, timeout=1)
        assert not lost.is_set()
    finally:
        await client.aclose()


async def test_keep_on_client_with_invalid_port_sets_lost_immediately_when_never_acquired() -> None:
    # Never acquired: there is no remaining validity to ride out an outage on.
    client = Redis(host="127.0.0.1", port=_dead_port(), socket_connect_timeout=0.2)
    try:
        lease = Lease(client, ttl_seconds=TTL, owner="a")
        lost = asyncio.Event()
        await asyncio.wait_for(lease.keep(lost, every_seconds=0.01), timeout=2)
        assert lost.is_set()
    finally:
        await client.aclose()
