"""A local HTTP origin that serves fixture bytes at the sources' real URL paths, with scripted failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Route:
    """What the origin answers for one path (path includes the query string)."""

    body: bytes = b""
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = "application/octet-stream"
    delay: float = 0.0  # seconds to wait before answering (simulate a hang)
    fail_first: int = 0  # answer `fail_status` this many times first
    fail_status: int = 500
    on_post: Callable[[dict[str, str]], bytes] | None = None
    location: str | None = None  # sent as the Location header (with status=301/302: a redirect)
    hits: int = 0
    # A body produced lazily, chunk by chunk (a 1 GiB file never held in memory); replaces `body` for a 200 GET.
    chunks: Callable[[], Iterable[bytes]] | None = None
    chunk_delay: float = 0.0  # seconds between chunks (a trickling origin)
    content_length: int | None = (
        None  # Content-Length declared for `chunks` (None: the body ends when it closes)
    )
    content_encoding: str | None = (
        None  # sent as Content-Encoding: `body`/`chunks` are already encoded (gzip)
    )


@dataclass
class Request:
    """A request the origin received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)


class Origin:
    """Threaded HTTP server on 127.0.0.1:<free port>; `url` is the base to put in *_URL settings."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                origin._answer(self, "GET", {})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode("utf-8")))
                origin._answer(self, "POST", form)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, body: bytes = b"", **kwargs: object) -> Route:
        """Serve `body` at `path` (exact match including query)."""
        route = Route(body=body, **kwargs)  # type: ignore[arg-type]
        self.routes[path] = route
        return route

    def _answer(self, handler: BaseHTTPRequestHandler, method: str, form: dict[str, str]) -> None:
        self.requests.append(Request(method, handler.path, dict(handler.headers.items()), form))
        route = self.routes.get(handler.path)
        if route is None:
            self._send(
                handler, 404, b"<html><title>404 Not Found</title></html>", {"Content-Type": "text/html"}
            )
            return
        route.hits += 1
        if route.delay:
            time.sleep(route.delay)
        if route.hits <= route.fail_first:
            self._send(handler, route.fail_status, b"<html>Service Unavailable</html>", {})
            return
        headers = {"Content-Type": route.content_type}
        if route.location:
            headers["Location"] = route.location
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        if route.content_encoding:
            headers["Content-Encoding"] = route.content_encoding
        if method == "GET" and route.etag and handler.headers.get("If-None-Match") == route.etag:
            self._send(handler, 304, b"", headers)
            return
        if method == "GET" and route.chunks is not None and route.status == 200:
            self._stream(handler, route, headers)
            return
        body = route.on_post(form) if method == "POST" and route.on_post else route.body
        self._send(handler, route.status, body, headers)

    @staticmethod
    def _stream(handler: BaseHTTPRequestHandler, route: Route, headers: dict[str, str]) -> None:
        """Send `route.chunks` as they come; without a declared length the body ends when the connection closes."""
        assert route.chunks is not None
        try:
            handler.send_response(200)
            for name, value in headers.items():
                handler.send_header(name, value)
            if route.content_length is not None:
                handler.send_header("Content-Length", str(route.content_length))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.flush()
            for chunk in route.chunks():
                handler.wfile.write(chunk)
                if route.chunk_delay:
                    handler.wfile.flush()
                    time.sleep(route.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client refused the body (too large) or gave up (deadline)
        handler.close_connection = True

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if status != 304:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def __enter__(self) -> Origin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
