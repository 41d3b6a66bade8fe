"""HTTP fetching of source files: declared User-Agent, timeouts, retries with backoff, conditional GET, redirects.

Fetching never parses; it returns bytes (or "not modified") and raises from alerts.errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import httpx

from alerts.errors import FetchFailed, NotPublishedYet
from alerts.store.frames import FetchState

log = logging.getLogger(__name__)

USER_AGENT = "positioning-bot/0.1 (market data alerts; +https://github.com/positioning-bot)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A dated file that does not exist yet answers 404 (HKEX, SFC) or 403 (FINRA, per third-party notes).
MISSING_STATUSES = frozenset({403, 404, 410})


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
    return NotPublishedYet(f"HTTP {code} after redirect {url} → {response.url}: not published", source=source,
                           url=url)


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    state: FetchState | None = None,
    form: Mapping[str, str] | None = None,
    source: str | None = None,
    retries: int = 3,
    backoff: float = 0.5,
) -> Fetched:
    """GET (or POST `form` to) `url`, redirects followed; retry 5xx/429/timeouts with backoff; 304 → not_modified."""
    headers = {} if form else _conditional_headers(state)
    last_error = "no attempt"
    for attempt in range(retries + 1):
        response: httpx.Response | None = None
        try:
            # Redirects are followed whatever the client's default: a moved file is still the file.
            if form is None:
                response = await client.get(url, headers=headers, follow_redirects=True)
            else:
                response = await client.post(url, data=dict(form), follow_redirects=True)
        except httpx.TooManyRedirects as exc:
            raise FetchFailed(f"redirect loop ({exc})", source=source, url=url) from None
        except httpx.TimeoutException as exc:
            last_error = f"timeout ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last_error = f"network error ({type(exc).__name__}: {exc})"
        else:
            code = response.status_code
            if code == 304:
                return Fetched(url, "not_modified", etag=state.etag if state else None,
                               last_modified=state.last_modified if state else None,
                               redirects=_redirects(response))
            if code == 200:
                return Fetched(url, "ok", response.content, response.headers.get("ETag"),
                               response.headers.get("Last-Modified"), _redirects(response))
            if code in MISSING_STATUSES:
                raise _missing(code, url, response, source)
            if code not in RETRY_STATUSES:
                raise FetchFailed(f"unexpected HTTP {code}", source=source, url=url)
            last_error = f"HTTP {code}"
        if attempt < retries:
            delay = _retry_delay(attempt, backoff, response)
            log.info("retrying %s after %s (attempt %d/%d, sleeping %.1fs)", url, last_error, attempt + 1,
                     retries, delay)
            await asyncio.sleep(delay)
    raise FetchFailed(f"gave up after {retries + 1} attempts: {last_error}", source=source, url=url)
