"""HTTP fetching of source files: declared User-Agent, timeouts, retries with backoff, conditional GET, redirects.

Fetching never parses; it returns bytes (or "not modified") and raises from alerts.errors. Bodies are streamed
with a byte cap counted on the decoded bytes (a gzip bomb stops at the cap), and each request has a total deadline
(a server trickling bytes never trips the per-read timeout).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx

from alerts.errors import FetchFailed, MalformedFile, NotPublishedYet
from alerts.sources import SOURCES
from alerts.sources.base import DEFAULT_MAX_BYTES  # the cap of files no registered source declares
from alerts.store.frames import FetchState

log = logging.getLogger(__name__)

USER_AGENT = "positioning-bot/0.1 (market data alerts; +https://github.com/positioning-bot)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A dated file that does not exist yet answers 404 (HKEX, SFC) or 403 (FINRA, per third-party notes).
MISSING_STATUSES = frozenset({403, 404, 410})
# Whole request, headers and body: DEFAULT_TIMEOUT bounds each read, not a body sent one byte every few seconds.
DEFAULT_DEADLINE = 120.0
INFLATE_STEP = 1024 * 1024  # most bytes one inflate step may produce: a gzip bomb is counted as it grows


@dataclass(frozen=True)
class Fetched:
    """Outcome of one fetch: new bytes, or the origin saying nothing changed since our validators."""

    url: str
    status: Literal["ok", "not_modified"]
    content: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    # URLs the origin redirected through, the final one last (empty when the requested URL answered itself).
    redirects: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        """Content hash, used to recognise identical re-publications without validators."""
        return hashlib.sha256(self.content).hexdigest()

    def state(self) -> FetchState:
        """Validators to remember after this fetch was stored."""
        return FetchState(self.etag, self.last_modified, self.sha256)


def make_client(user_agent: str = USER_AGENT, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """An AsyncClient with our User-Agent and timeouts; callers close it."""
    return httpx.AsyncClient(headers={"User-Agent": user_agent}, timeout=timeout, follow_redirects=True)


def _conditional_headers(state: FetchState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if state and state.etag:
        headers["If-None-Match"] = state.etag
    if state and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _retry_delay(attempt: int, backoff: float, response: httpx.Response | None) -> float:
    if response is not None and response.status_code == 429:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return min(float(retry_after), 60.0)
    return backoff * (2**attempt)


def _redirects(response: httpx.Response) -> tuple[str, ...]:
    """The URLs a response was redirected through (history[0] is the request itself), the final one last."""
    if not response.history:
        return ()
    return (*(str(r.url) for r in response.history[1:]), str(response.url))


def _missing(code: int, url: str, response: httpx.Response, source: str | None) -> NotPublishedYet:
    """`not published`, naming where a redirect led: hosts move files (www → www1) and leave the old URL redirecting."""
    if not response.history:
        return NotPublishedYet(f"HTTP {code}: file not published", source=source, url=url)
    return NotPublishedYet(
        f"HTTP {code} after redirect {url} → {response.url}: not published", source=source, url=url
    )


def _declared_cap(source: str | None) -> int:
    registered = SOURCES.get(source) if source else None
    return registered.max_bytes if registered is not None else DEFAULT_MAX_BYTES


def _too_large(max_bytes: int, url: str, source: str | None) -> MalformedFile:
    return MalformedFile(f"too large: more than {max_bytes} bytes", source=source, url=url)


async def _decoded(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's decoded bytes, gzip/deflate inflated here at most INFLATE_STEP bytes at a time.

    httpx inflates each network read whole: 64 KiB of a gzip bomb become 64 MiB at once (twice that while zlib grows
    its buffer). Other codings (identity; br/zstd when their packages are installed) are left to httpx.
    """
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("gzip", "x-gzip", "deflate"):
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or zlib header, detected
    started = False
    async for data in response.aiter_raw():
        while True:
            try:
                out = inflater.decompress(data, INFLATE_STEP)
            except zlib.error:
                if started or coding != "deflate":
                    raise
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, without the zlib header
                started = True
                continue
            started = True
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and len(out) < INFLATE_STEP:  # input used up and nothing left pending
                break
    if rest := inflater.flush():
        yield rest


async def _read_capped(response: httpx.Response, max_bytes: int, url: str, source: str | None) -> bytes:
    """The decoded body of a 200, refused (MalformedFile) as soon as it passes `max_bytes`."""
    declared = response.headers.get("Content-Length", "")
    if (
        declared.isdigit() and int(declared) > max_bytes
    ):  # compressed size over the cap: decoded is larger still
        raise _too_large(max_bytes, url, source)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in _decoded(response):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes, url, source)
            chunks.append(chunk)
    except zlib.error as exc:
        raise MalformedFile(f"body does not decode ({exc})", source=source, url=url) from None
    return b"".join(chunks)


async def _request(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    form: Mapping[str, str] | None,
    max_bytes: int,
    source: str | None,
) -> tuple[httpx.Response, bytes]:
    """One request, redirects followed whatever the client's default (a moved file is still the file); the body is
    read only for a 200."""
    data = dict(form) if form is not None else None
    if not hasattr(client, "stream"):
        # A wrapper offering only get/post (e.g. EDGAR's rate-limited client): buffered, the cap checked after.
        response = await (
            client.get(url, headers=headers, follow_redirects=True)
            if data is None
            else client.post(url, data=data, follow_redirects=True)
        )
        if response.status_code != 200:
            return response, b""
        if len(response.content) > max_bytes:
            raise _too_large(max_bytes, url, source)
        return response, response.content
    method, sent = ("GET", headers) if data is None else ("POST", None)
    async with client.stream(method, url, headers=sent, data=data, follow_redirects=True) as response:
        if response.status_code != 200:
            return response, b""
        return response, await _read_capped(response, max_bytes, url, source)


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    state: FetchState | None = None,
    form: Mapping[str, str] | None = None,
    source: str | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    max_bytes: int | None = None,
    deadline: float = DEFAULT_DEADLINE,
) -> Fetched:
    """GET (or POST `form` to) `url`, redirects followed; retry 5xx/429/timeouts with backoff; 304 → not_modified.

    A body over `max_bytes` decoded bytes (None: the cap the registered `source` declares, else DEFAULT_MAX_BYTES)
    raises MalformedFile "too large"; a request not done within `deadline` seconds counts as a timeout (retried).
    """
    if max_bytes is None:
        max_bytes = _declared_cap(source)
    headers = {} if form else _conditional_headers(state)
    last_error = "no attempt"
    for attempt in range(retries + 1):
        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(deadline):
                response, content = await _request(client, url, headers, form, max_bytes, source)
        except httpx.TooManyRedirects as exc:
            raise FetchFailed(f"redirect loop ({exc})", source=source, url=url) from None
        except httpx.DecodingError as exc:
            raise MalformedFile(f"body does not decode ({exc})", source=source, url=url) from None
        except httpx.TimeoutException as exc:
            last_error = f"timeout ({type(exc).__name__})"
        except TimeoutError:
            last_error = f"timeout (no complete answer within {deadline:g} s)"
        except httpx.TransportError as exc:
            last_error = f"network error ({type(exc).__name__}: {exc})"
        else:
            code = response.status_code
            if code == 304:
                return Fetched(
                    url,
                    "not_modified",
                    etag=state.etag if state else None,
                    last_modified=state.last_modified if state else None,
                    redirects=_redirects(response),
                )
            if code == 200:
                return Fetched(
                    url,
                    "ok",
                    content,
                    response.headers.get("ETag"),
                    response.headers.get("Last-Modified"),
                    _redirects(response),
                )
            if code in MISSING_STATUSES:
                raise _missing(code, url, response, source)
            if code not in RETRY_STATUSES:
                raise FetchFailed(f"unexpected HTTP {code}", source=source, url=url)
            last_error = f"HTTP {code}"
        if attempt < retries:
            delay = _retry_delay(attempt, backoff, response)
            log.info(
                "retrying %s after %s (attempt %d/%d, sleeping %.1fs)",
                url,
                last_error,
                attempt + 1,
                retries,
                delay,
            )
            await asyncio.sleep(delay)
    raise FetchFailed(f"gave up after {retries + 1} attempts: {last_error}", source=source, url=url)
