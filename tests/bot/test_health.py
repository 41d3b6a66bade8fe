"""The metrics registry's exposition output and the health/metrics HTTP server over real sockets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from alerts.metrics import METRICS, Registry, escape_label_value, format_value
from bot.health import HealthServer

# ---- metrics ---------------------------------------------------------------------------------------------------


def test_render_small_registry_exactly() -> None:
    reg = Registry()
    reg.gauge("positioning_leader", "1 when this process holds the lease").set(1)
    stored = reg.counter(
        "positioning_cycles_total", "Cycles run", labels={"source": "hkex-quotes", "status": "stored"}
    )
    stored.inc()
    stored.inc(2)
    reg.counter(
        "positioning_cycles_total", "Cycles run", labels={"status": "failed", "source": "hkex-short"}
    ).inc()
    reg.counter(
        "positioning_cycles_total", "Cycles run", labels={"source": "hkex-buybacks", "status": "stored"}
    )
    reg.gauge("positioning_outbox_pending", "Items waiting in the outbox").set(2.5)
    reg.counter("positioning_alerts_total", "Alerts routed").inc(0)
    assert reg.render() == (
        "# HELP positioning_alerts_total Alerts routed\n"
        "# TYPE positioning_alerts_total counter\n"
        "positioning_alerts_total 0\n"
        "# HELP positioning_cycles_total Cycles run\n"
        "# TYPE positioning_cycles_total counter\n"
        'positioning_cycles_total{source="hkex-buybacks",status="stored"} 0\n'
        'positioning_cycles_total{source="hkex-quotes",status="stored"} 3\n'
        'positioning_cycles_total{source="hkex-short",status="failed"} 1\n'
        "# HELP positioning_leader 1 when this process holds the lease\n"
        "# TYPE positioning_leader gauge\n"
        "positioning_leader 1\n"
        "# HELP positioning_outbox_pending Items waiting in the outbox\n"
        "# TYPE positioning_outbox_pending gauge\n"
        "positioning_outbox_pending 2.5\n"
    )
    assert reg.render() == reg.render()
    assert reg.value("positioning_cycles_total", {"status": "stored", "source": "hkex-quotes"}) == 3
    assert reg.value("positioning_cycles_total", {"source": "nope"}) is None
    assert reg.value("nope") is None


def test_empty_registry_renders_nothing() -> None:
    assert Registry().render() == ""


def test_label_values_and_help_are_escaped() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    reg = Registry()
    reg.gauge("g", 'Help with \\ backslash,\nnewline and "quotes"', labels={"path": 'C:\\x "y"\nz'}).set(-1)
    assert reg.render() == (
        '# HELP g Help with \\\\ backslash,\\nnewline and "quotes"\n'
        "# TYPE g gauge\n"
        'g{path="C:\\\\x \\"y\\"\\nz"} -1\n'
    )


def test_format_value() -> None:
    assert format_value(3.0) == "3"
    assert format_value(-0.25) == "-0.25"
    assert format_value(1e20) == "1e+20"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("-inf")) == "-Inf"
    assert format_value(float("nan")) == "NaN"


def test_counter_only_increases() -> None:
    reg = Registry()
    counter = reg.counter("c_total", "C")
    counter.inc(5)
    with pytest.raises(ValueError, match="only increase"):
        counter.inc(-1)
    with pytest.raises(ValueError, match="only increase"):
        counter.inc(float("nan"))
    assert counter.value == 5
    assert not hasattr(counter, "set")
    assert not hasattr(counter, "dec")


def test_gauge_goes_both_ways() -> None:
    gauge = Registry().gauge("g", "G")
    gauge.set(10)
    gauge.inc(2)
    gauge.dec(5)
    assert gauge.value == 7


def test_same_name_and_labels_is_the_same_child_and_types_cannot_mix() -> None:
    reg = Registry()
    assert reg.counter("c_total", "C", {"a": "1"}) is reg.counter("c_total", "C", {"a": "1"})
    assert reg.counter("c_total", "C", {"a": "1"}) is not reg.counter("c_total", "C", {"a": "2"})
    with pytest.raises(ValueError, match="is a counter, not a gauge"):
        reg.gauge("c_total", "C")
    with pytest.raises(ValueError, match="invalid metric name"):
        reg.counter("bad-name", "x")
    with pytest.raises(ValueError, match="invalid label name"):
        reg.counter("ok_total", "x", labels={"bad-label": "v"})


def test_counter_is_thread_safe() -> None:
    counter = Registry().counter("c_total", "C")

    def work() -> None:
        for _ in range(10_000):
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value == 80_000


def test_module_registry_exists() -> None:
    assert isinstance(METRICS, Registry)


# ---- health server -----------------------------------------------------------------------------------------------


class Check:
    """A controllable health check."""

    def __init__(self) -> None:
        self.result: tuple[bool, dict[str, Any]] = (True, {"leader": "host:1:abcd1234", "outbox": 0})
        self.error: Exception | None = None
        self.delay = 0.0
        self.calls = 0

    async def __call__(self) -> tuple[bool, dict[str, Any]]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def check() -> Check:
    return Check()


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.gauge("positioning_leader", "1 when this process holds the lease").set(1)
    reg.counter(
        "positioning_cycles_total", "Cycles run", labels={"source": "hkex-quotes", "status": "stored"}
    ).inc(4)
    return reg


@pytest.fixture
async def server(check: Check, registry: Registry) -> AsyncIterator[HealthServer]:
    srv = HealthServer(
        check, registry=registry, host="127.0.0.1", port=0, request_timeout=0.5, check_timeout=0.3
    )
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def http(server: HealthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
        yield client


async def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout=3)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_healthz_ok(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert response.json() == {"status": "ok", "leader": "host:1:abcd1234", "outbox": 0}
    assert list(response.json()) == ["status", "leader", "outbox"]


async def test_healthz_ignores_query_string(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz?verbose=1")
    assert response.status_code == 200


async def test_healthz_unhealthy(http: httpx.AsyncClient, check: Check) -> None:
    check.result = (False, {"reason": "redis unreachable", "leader": None})
    response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "unhealthy", "reason": "redis unreachable", "leader": None}


async def test_healthz_unhealthy_without_reason(http: httpx.AsyncClient, check: Check) -> None:
    check.result = (False, {})
    response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "reason": "unhealthy"}


async def test_healthz_check_raising_is_unhealthy(http: httpx.AsyncClient, check: Check) -> None:
    check.error = ConnectionError("redis down")
    response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "reason": "health check failed: ConnectionError: redis down",
    }


async def test_healthz_check_hanging_is_unhealthy(http: httpx.AsyncClient, check: Check) -> None:
    check.delay = 5
    response = await http.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "reason": "health check timed out after 0.3 s"}


async def test_healthz_details_are_json_safe(http: httpx.AsyncClient, check: Check) -> None:
    from datetime import datetime

    check.result = (True, {"status": "ignored", "since": datetime(2025, 3, 4, 5, 6, 7)})  # noqa: DTZ001
    response = await http.get("/healthz")
    assert response.json() == {"status": "ok", "since": "2025-03-04 05:06:07"}


async def test_metrics(http: httpx.AsyncClient, registry: Registry) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.text == (
        "# HELP positioning_cycles_total Cycles run\n"
        "# TYPE positioning_cycles_total counter\n"
        'positioning_cycles_total{source="hkex-quotes",status="stored"} 4\n'
        "# HELP positioning_leader 1 when this process holds the lease\n"
        "# TYPE positioning_leader gauge\n"
        "positioning_leader 1\n"
    )
    registry.gauge("positioning_leader", "").set(0)
    assert "positioning_leader 0\n" in (await http.get("/metrics")).text


async def test_unknown_path_is_404(http: httpx.AsyncClient) -> None:
    for path in ("/", "/health", "/metrics/x", "/healthz/"):
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.text == "not found\n"


async def test_non_get_is_405(http: httpx.AsyncClient, check: Check) -> None:
    response = await http.post("/healthz", content=b'{"x": 1}')
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    response = await http.delete("/metrics")
    assert response.status_code == 405
    assert check.calls == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS ClientHello on the plain port
        b"hello\r\n\r\n",
        b"GET /healthz\r\n\r\n",  # HTTP/0.9 style, no version
        b"GET /healthz HTTP/2.0\r\n\r\n",
        b"GET  /healthz HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n",
    ],
)
async def test_garbage_is_400(server: HealthServer, check: Check, garbage: bytes) -> None:
    answer = await _raw(server.port, garbage)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:80]
    assert b"\r\nConnection: close\r\n" in answer
    assert check.calls == 0


async def test_raw_request_with_headers_and_http10(server: HealthServer) -> None:
    answer = await _raw(server.port, b"GET /healthz HTTP/1.0\r\nHost: x\r\nUser-Agent: probe\r\n\r\n")
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body)["status"] == "ok"


async def test_empty_connection_gets_no_answer(server: HealthServer) -> None:
    assert await _raw(server.port, b"") == b""


async def test_half_open_client_does_not_block_others_and_times_out(
    server: HealthServer, http: httpx.AsyncClient
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /hea")  # never finishes the request line
        await writer.drain()
        await asyncio.sleep(0.05)
        first, second = await asyncio.wait_for(
            asyncio.gather(http.get("/healthz"), http.get("/metrics")), timeout=0.4
        )  # well before the stalled client's 0.5 s deadline
        assert first.status_code == 200
        assert second.status_code == 200
        # The stalled client is told off and dropped once its request timeout passes.
        answer = await asyncio.wait_for(reader.read(), timeout=2)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_stop_drops_stalled_connections(check: Check, registry: Registry) -> None:
    srv = HealthServer(check, registry=registry, host="127.0.0.1", port=0, request_timeout=30)
    await srv.start()
    port = srv.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # headers never end
        await writer.drain()
        await asyncio.sleep(0.05)
        await asyncio.wait_for(srv.stop(), timeout=2)
        assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    finally:
        writer.close()
        await writer.wait_closed()
    with pytest.raises(RuntimeError, match="not running"):
        _ = srv.port
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_default_host_binds_all_interfaces(check: Check) -> None:
    srv = HealthServer(check)
    assert srv.registry is METRICS
    await srv.start()
    try:
        assert srv.port > 0
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{srv.port}/metrics")).status_code == 200
    finally:
        await srv.stop()


async def test_oversized_request_gets_400_even_while_client_keeps_sending(server: HealthServer) -> None:
    # Without draining the unread input before closing, the kernel resets the connection and the 400 is lost.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /" + b"a" * 300_000 + b" HTTP/1.1\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=3)
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert answer.endswith(b"bad request: line too long\n")
    finally:
        writer.close()
        await writer.wait_closed()
