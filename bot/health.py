"""A tiny HTTP server for orchestrators and Prometheus: GET /healthz and GET /metrics.

Plain asyncio streams (no web framework): one request per connection, answered with `Connection: close`.
Every read, write and health check has a deadline, so a slow, half-open or broken client only ever holds its own
connection, and only for `request_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from alerts.metrics import METRICS, Registry

log = logging.getLogger(__name__)
T = TypeVar("T")

HealthCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
# A POST route: (lower-cased headers, body) -> (status, text answered)
PostHandler = Callable[[dict[str, str], bytes], Awaitable[tuple[HTTPStatus, str]]]

_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/1\.[01]\r?\n")
_MAX_LINE = 8192  # request line or header line; longer is refused with 400
_MAX_HEADERS = 100
_MAX_BODY = 65536  # nothing here takes a body; a larger one is refused
_LINGER_SECONDS = 1.0
_MAX_LINGER_BYTES = 1 << 20

JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass
class TickTimes:
    """When the poll job's ticks started and finished, by a monotonic clock: /healthz tells a stuck or overdue tick.

    `since` is when this process began polling (its leader term); None while it does not poll (standby).
    """

    clock: Callable[[], float] = time.monotonic
    since: float | None = None
    started: float | None = None
    finished: float | None = None
    running: bool = False

    def arm(self) -> None:
        """Polling begins (the leader scheduled the poll job)."""
        self.since, self.started, self.finished, self.running = self.clock(), None, None, False

    def disarm(self) -> None:
        """Polling ends (stepping down or stopping)."""
        self.since, self.running = None, False

    def begin(self) -> None:
        self.started, self.running = self.clock(), True

    def end(self) -> None:
        self.finished, self.running = self.clock(), False

    def problem(self, *, stuck_after: float, overdue_after: float) -> str | None:
        """ "stuck: …" when a tick has run longer than `stuck_after` seconds, "overdue: …" when none has finished
        for `overdue_after` seconds (the poll job no longer runs); None when polling is well or off."""
        if self.since is None:
            return None
        now = self.clock()
        if self.running and self.started is not None:
            running = now - self.started
            if running > stuck_after:
                return f"stuck: a poll tick has been running for {running:.0f} s (limit {stuck_after:g} s)"
            return None
        last = self.finished if self.finished is not None else self.since
        if now - last > overdue_after:
            what = (
                "the last poll tick finished" if self.finished is not None else "polling began without a tick"
            )
            return f"overdue: {what} {now - last:.0f} s ago (limit {overdue_after:g} s)"
        return None


class _BadRequest(Exception):
    """The client sent something that is not an HTTP/1.x request."""


class HealthServer:
    """Serves /healthz (from `check`) and /metrics (from `registry`) on host:port (0 = any free port)."""

    def __init__(
        self,
        check: HealthCheck,
        registry: Registry = METRICS,
        host: str = "0.0.0.0",
        port: int = 0,
        *,
        request_timeout: float = 5.0,
        check_timeout: float = 5.0,
        posts: dict[str, PostHandler] | None = None,
        max_post_body: int = 1 << 20,
    ) -> None:
        self.check = check
        self.posts = posts or {}  # path -> handler (the `web` process's webhook)
        self.max_post_body = max_post_body
        self.registry = registry
        self.host = host
        self.requested_port = port
        self.request_timeout = request_timeout
        self.check_timeout = check_timeout
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The port actually bound (useful with port=0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("health server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start serving in the background."""
        if self._server is not None:
            raise RuntimeError("health server already started")
        self._server = await asyncio.start_server(
            self._handle, self.host, self.requested_port, limit=_MAX_LINE
        )
        log.info("health server listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop connections still being served."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self.posts and self._handlers:
            # A webhook post being answered finishes first: an update Redis took is then answered 200, not reset
            # (Telegram would post it again; it would be dropped as a duplicate, but only within the dedupe window).
            await asyncio.wait(list(self._handlers), timeout=self.request_timeout)
        # Abort the connections rather than cancel their tasks: a stalled read then ends at once and the handler
        # finishes normally (asyncio < 3.12 logs an error for every cancelled connection task).
        for writer in list(self._writers):
            writer.transport.abort()
        handlers = list(self._handlers)
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=self.check_timeout + 1.0)
            for task in pending:  # stuck somewhere without a deadline of its own
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        try:
            if self._server is None:
                return  # accepted just as stop() began
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stalled while we wrote: nothing left to tell it
        except Exception:
            log.exception("health server: unexpected error serving a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ok, request = await self._in_time(reader, writer, _read_request(reader))
        if not ok:
            return
        if request is None:
            return  # connected and closed without a byte: a TCP probe
        method, path, headers = request
        if method == "POST" and path in self.posts:
            await self._post(reader, writer, self.posts[path], headers)
            return
        ok, _ = await self._in_time(reader, writer, _discard_body(reader, headers.get("content-length", "0")))
        if not ok:
            return
        if method != "GET":
            await self._reply(
                writer,
                HTTPStatus.METHOD_NOT_ALLOWED,
                TEXT_TYPE,
                "method not allowed\n",
                extra={"Allow": "GET"},
            )
        elif path in self.posts:
            await self._reply(
                writer,
                HTTPStatus.METHOD_NOT_ALLOWED,
                TEXT_TYPE,
                "method not allowed\n",
                extra={"Allow": "POST"},
            )
        elif path == "/healthz":
            status, body = await self._health()
            await self._reply(writer, status, JSON_TYPE, json.dumps(body, default=str) + "\n")
        elif path == "/metrics":
            await self._reply(writer, HTTPStatus.OK, METRICS_TYPE, self.registry.render())
        else:
            await self._reply(writer, HTTPStatus.NOT_FOUND, TEXT_TYPE, "not found\n")

    async def _in_time(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, step: Awaitable[T]
    ) -> tuple[bool, T | None]:
        """Run one step of reading a request within request_timeout; (False, None) once it was answered with
        408 (too slow) or 400 (malformed), the connection then being done."""
        try:
            return True, await asyncio.wait_for(step, timeout=self.request_timeout)
        except TimeoutError:
            await self._reply(writer, HTTPStatus.REQUEST_TIMEOUT, TEXT_TYPE, "request timeout\n")
        except _BadRequest as exc:
            await self._reply(writer, HTTPStatus.BAD_REQUEST, TEXT_TYPE, f"bad request: {exc}\n")
            await self._linger(reader, writer)
        return False, None

    async def _post(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: PostHandler,
        headers: dict[str, str],
    ) -> None:
        """Read a bounded body (413 when larger than max_post_body) and answer what `handler` says."""
        length = headers.get("content-length", "")
        if not length.isdigit():
            await self._reply(writer, HTTPStatus.LENGTH_REQUIRED, TEXT_TYPE, "Content-Length required\n")
            await self._linger(reader, writer)
            return
        if int(length) > self.max_post_body:
            await self._reply(writer, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, TEXT_TYPE, "body too large\n")
            await self._linger(reader, writer)
            return
        try:
            body = await asyncio.wait_for(reader.readexactly(int(length)), timeout=self.request_timeout)
        except asyncio.IncompleteReadError:
            return  # the client went away mid-body
        except TimeoutError:
            await self._reply(writer, HTTPStatus.REQUEST_TIMEOUT, TEXT_TYPE, "request timeout\n")
            return
        status, text = await handler(headers, body)
        await self._reply(writer, status, TEXT_TYPE, text)

    async def _health(self) -> tuple[HTTPStatus, dict[str, Any]]:
        """Run the check with a deadline; a check that fails or hangs is itself a reason to be unhealthy."""
        try:
            healthy, details = await asyncio.wait_for(self.check(), timeout=self.check_timeout)
        except TimeoutError:
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                "status": "unhealthy",
                "reason": f"health check timed out after {self.check_timeout:g} s",
            }
        except Exception as exc:
            log.warning("health check raised %s: %s", type(exc).__name__, exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                "status": "unhealthy",
                "reason": f"health check failed: {type(exc).__name__}: {exc}",
            }
        rest = {k: v for k, v in details.items() if k not in ("status", "reason")}
        if healthy:
            return HTTPStatus.OK, {"status": "ok", **rest}
        reason = details.get("reason") or "unhealthy"
        return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unhealthy", "reason": reason, **rest}

    async def _reply(
        self,
        writer: asyncio.StreamWriter,
        status: HTTPStatus,
        content_type: str,
        body: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        if writer.is_closing():
            return  # aborted by stop() or reset by the client: nobody to answer
        payload = body.encode("utf-8")
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(payload)),
            "Cache-Control": "no-store",
            "Connection": "close",
            **(extra or {}),
        }
        head = f"HTTP/1.1 {status.value} {status.phrase}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write(head.encode("latin-1") + b"\r\n" + payload)
        await asyncio.wait_for(writer.drain(), timeout=self.request_timeout)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Drain what a refused client is still sending (bounded), so closing does not reset the connection."""
        # Closing a socket with unread input sends a TCP reset, which can destroy the 400 before the client reads it.
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(min(self.request_timeout, _LINGER_SECONDS)):
                drained = 0
                while drained < _MAX_LINGER_BYTES and (chunk := await reader.read(65536)):
                    drained += len(chunk)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError as exc:  # the StreamReader limit: a line longer than _MAX_LINE
        raise _BadRequest("line too long") from exc


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
    """(method, path without query, lower-cased headers) of one request, its body left unread; None on immediate
    EOF."""
    line = await _read_line(reader)
    if not line:
        return None
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise _BadRequest("malformed request line")
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        header = await _read_line(reader)
        if header in (b"\r\n", b"\n"):
            break
        name, colon, value = header.decode("latin-1").partition(":")
        if not colon or not header.endswith(b"\n"):
            raise _BadRequest("malformed header line")
        headers[name.strip().lower()] = value.strip()
    else:
        raise _BadRequest("too many headers")
    method, target = match.group(1).decode("ascii"), match.group(2).decode("latin-1")
    return method, target.split("?", 1)[0], headers


async def _discard_body(reader: asyncio.StreamReader, content_length: str) -> None:
    # Reading a (small) body before answering keeps the kernel from resetting the connection on close, which
    # could destroy our 405 before the client reads it.
    if not content_length.isdigit():
        raise _BadRequest("invalid Content-Length")
    if int(content_length) > _MAX_BODY:
        raise _BadRequest("body too large")
    with contextlib.suppress(asyncio.IncompleteReadError):
        await reader.readexactly(int(content_length))
