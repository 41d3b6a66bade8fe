"""`positioning-bot doctor`: a live, read-only self-check of every source against its configured base URL.

Per source: fetch the file of the latest due date (falling back to the previous due date while the newest is not
published yet), parse it, and report the HTTP status and redirects, bytes, which known layout the parser recognised,
rows, the file's own totals against the rows, the publication lag and the last good file in Redis. Nothing is
stored: this is fetch + parse only, so running it on a live deployment changes nothing.

`now` is always passed in (timezone-aware); each source runs under its own deadline, all sources concurrently.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar, cast

import httpx
import pandas as pd
from redis.asyncio import Redis
from redis.exceptions import RedisError

from alerts.calendar import HK_TZ, Schedule, schedule_for
from alerts.errors import MalformedFile, NotPublishedYet, SourceError
from alerts.fetch import Fetched, fetch, make_client
from alerts.hsi import host_path
from alerts.ingest import check_date, follow_form, urls_for
from alerts.sources import SOURCES, get_source, hsi_index_reviews, sec_13d_13g, sec_edgar, sec_form4
from alerts.sources.base import Source
from alerts.store.connect import connect
from alerts.store.frames import FrameStore
from alerts.windows import window_failed
from config.settings import Settings

T = TypeVar("T")

DEFAULT_DEADLINE_S = 30.0  # per source: a hanging origin shows as "timeout" instead of hanging the command
NONE = "—"
# Rows against the file's own total. Parsers refuse a file whose rows do not add up, each within its own slack
# (hkex-short: 0.5 %, for the HKD equivalent of non-HKD rows); doctor must not be stricter than the pipeline, so
# it flags only what is off by more than that, and shows "≈" for a sum inside the slack, "=" for an exact one.
_REL_TOLERANCE, _ABS_TOLERANCE = 0.005, 1.0
_CELL_WIDTH = 40  # longer reconciled texts are summed up in the table ("6/6 ✓"); JSON has them whole
# Where redis-py reports an unreachable server: its own errors and socket errors.
_REDIS_DOWN = (RedisError, OSError)


@dataclass(frozen=True)
class Redirect:
    """One redirect the origin answered on the way to the file."""

    status: int
    from_url: str
    to_url: str


@dataclass(frozen=True)
class SourceCheck:
    """What doctor found for one source; `healthy` is False exactly when `problem` is set."""

    source: str
    day: date | None  # the file date checked (the latest due, or the previous one when that is not out yet)
    url: str  # the file's URL (the failing one when a multi-file source failed)
    urls: tuple[str, ...]
    status: str  # HTTP status of the last answer per URL ("200", "200/404"), "timeout", or an error class
    redirects: tuple[Redirect, ...]
    bytes: int | None
    layout: str  # the layout the parser recognised, "unrecognised", or "—" when the parser does not say
    rows: int | None
    reconciled: str  # e.g. "shares 1.2e+10=1.2e+10 ✓", or "—" when the file carries no totals
    lag: str  # now − the scheduled publication of `day`, or "not due"
    lag_seconds: float | None
    last_good: str  # last stored file per Redis, "never", or "—" without Redis
    healthy: bool
    problem: str = ""
    note: str = ""


@dataclass
class _Exchange:
    """One request doctor made: the URL asked for, the final status (or error class) and the redirects."""

    url: str
    status: str
    redirects: tuple[Redirect, ...] = ()


class _Recorder:
    """What alerts.fetch.fetch needs of a client (get/post/stream), remembering each answer's status and redirects.

    fetch() raises on a 404 without returning the response: the recorder keeps what the origin said anyway.
    """

    def __init__(self, client: httpx.AsyncClient, headers: Mapping[str, str] | None = None) -> None:
        self._client, self._headers = client, dict(headers or {})
        self.exchanges: list[_Exchange] = []
        self.in_flight: str | None = None  # the URL being fetched, for a timeout's message

    async def get(self, url: str, headers: Mapping[str, str] | None = None, **options: Any) -> httpx.Response:
        return await self._record(
            url, self._client.get(url, headers={**(headers or {}), **self._headers}, **options)
        )

    async def post(self, url: str, data: Mapping[str, str] | None = None, **options: Any) -> httpx.Response:
        return await self._record(
            url, self._client.post(url, data=dict(data or {}), headers=self._headers, **options)
        )

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **options: Any
    ) -> AsyncIterator[httpx.Response]:
        """What fetch() streams bodies through: the answer is recorded even when fetch() then raises."""
        self.in_flight = url
        exchange: _Exchange | None = None
        try:
            async with self._client.stream(
                method, url, headers={**(headers or {}), **self._headers}, **options
            ) as response:
                exchange = _Exchange(url, str(response.status_code), _redirects(response))
                yield response
        except httpx.HTTPError as exc:
            exchange = _Exchange(url, type(exc).__name__)
            raise
        finally:
            self.in_flight = None
            if exchange is not None:
                self.exchanges.append(exchange)

    async def _record(self, url: str, call: Awaitable[httpx.Response]) -> httpx.Response:
        self.in_flight = url
        try:
            response = await call
        except httpx.HTTPError as exc:
            self.exchanges.append(_Exchange(url, type(exc).__name__))
            raise
        finally:
            self.in_flight = None
        self.exchanges.append(_Exchange(url, str(response.status_code), _redirects(response)))
        return response

    def as_client(self) -> httpx.AsyncClient:
        """Typed as the client fetch() expects; only get/post/stream are used."""
        return cast(httpx.AsyncClient, self)


def _redirects(response: httpx.Response) -> tuple[Redirect, ...]:
    hops = [str(r.url) for r in response.history] + [str(response.url)]
    return tuple(Redirect(r.status_code, hops[i], hops[i + 1]) for i, r in enumerate(response.history))


@dataclass
class _Attempt:
    """Fetching and parsing the file(s) of one date."""

    day: date
    recorder: _Recorder
    files: list[Fetched] = field(default_factory=list)
    frames: list[pd.DataFrame] = field(default_factory=list)  # parsed main tables, before the date check
    rows: int | None = None  # set when rows are not the frames' length (EDGAR: filings listed in the index)
    error: Exception | None = None
    unrecognised: bool = False  # the parser refused the layout (not a wrong date or a missing file)


async def check_source(
    source: Source,
    settings: Settings,
    client: httpx.AsyncClient,
    now: datetime,
    store: FrameStore | None = None,
    *,
    deadline: float = DEFAULT_DEADLINE_S,
    backoff: float = 0.5,
) -> SourceCheck:
    """Fetch and parse the latest due file of `source` (read-only) and judge it; never raises for the source."""
    last_good = await _last_good(store, source.name)
    schedule = schedule_for(source.name)
    # Weekly files come out "about a week" after their date: two fallbacks, as `fetch` without --date does.
    candidates = schedule.due_dates(now, 3 if schedule.dates == "week_end" else 2)
    if not candidates:
        return _unchecked(source, settings, now, "—", "no due date within the exchange calendar", last_good)
    headers: dict[str, str] = {}
    if source.fetch_day in _EDGAR_SAMPLES:
        if not settings.sec_user_agent:
            return _unchecked(
                source,
                settings,
                now,
                "config",
                "SEC_USER_AGENT is not set: SEC answers only clients "
                "that name the operator and a contact e-mail, so EDGAR polling is off",
                last_good,
            )
        headers["User-Agent"] = settings.sec_user_agent
    attempts: list[_Attempt] = []
    timed_out = False
    try:
        async with asyncio.timeout(deadline):
            for day in candidates:
                attempt = _Attempt(day, _Recorder(client, headers))
                attempts.append(attempt)
                await _attempt(source, settings, attempt, backoff)
                if not isinstance(attempt.error, NotPublishedYet):
                    break
    except TimeoutError:
        timed_out = True
    return _verdict(source, settings, schedule, now, attempts, last_good, deadline if timed_out else None)


async def run_checks(
    settings: Settings,
    client: httpx.AsyncClient,
    now: datetime,
    store: FrameStore | None = None,
    names: Sequence[str] | None = None,
    *,
    deadline: float = DEFAULT_DEADLINE_S,
    backoff: float = 0.5,
) -> list[SourceCheck]:
    """Check the named sources (default: all) concurrently, in the order given."""
    chosen = [get_source(name) for name in (names or list(SOURCES))]
    return list(
        await asyncio.gather(
            *(
                check_source(source, settings, client, now, store, deadline=deadline, backoff=backoff)
                for source in chosen
            )
        )
    )


async def run_doctor(
    settings: Settings, names: Sequence[str] | None, *, now: datetime, deadline: float = DEFAULT_DEADLINE_S
) -> tuple[list[SourceCheck], list[str]]:
    """The CLI's run: own HTTP client, Redis only for "last good" (unreachable → a note, not a failure)."""
    notes: list[str] = []
    redis = connect(settings, socket_connect_timeout=3, socket_timeout=3)
    try:
        store: FrameStore | None = FrameStore(redis)
        try:
            await redis.ping()
        except _REDIS_DOWN as exc:
            store = None
            notes.append(f"Redis unreachable ({type(exc).__name__}): last good shows {NONE}")
        async with make_client() as client:
            checks = await run_checks(settings, client, now, store, names, deadline=deadline)
    finally:
        await redis.aclose()
    return checks, notes


async def daily_doctor(
    settings: Settings,
    client: httpx.AsyncClient,
    redis: Redis,
    now: datetime,
    names: Sequence[str] | None = None,
    *,
    deadline: float = DEFAULT_DEADLINE_S,
) -> str | None:
    """The admins' message (Telegram HTML) naming the unhealthy sources; None when every source is healthy."""
    checks = await run_checks(settings, client, now, FrameStore(redis), names, deadline=deadline)
    bad = [check for check in checks if not check.healthy]
    if not bad:
        return None
    lines = [f"🩺 doctor: {len(bad)} of {len(checks)} source(s) unhealthy"]
    for check in bad:
        day = check.day.isoformat() if check.day else NONE
        lines.append(
            f"• <b>{_esc(check.source)}</b> {day} [{_esc(check.status)}]: {_esc(check.problem[:300])}"
        )
    lines.append("Details: <code>positioning-bot doctor</code>")
    return "\n".join(lines)


def exit_code(checks: Iterable[SourceCheck]) -> int:
    """0 when every source is healthy, else 1."""
    return 0 if all(check.healthy for check in checks) else 1


# --- fetching and parsing one date ------------------------------------------------------------------------------


async def _attempt(source: Source, settings: Settings, attempt: _Attempt, backoff: float) -> None:
    """Fill `attempt`; a failure is recorded in attempt.error, never raised (except cancellation)."""
    url = ""
    try:
        if source.fetch_day in _EDGAR_SAMPLES:
            await _attempt_edgar(source, settings, attempt, backoff)
            return
        if source.fetch_day == hsi_index_reviews.DAY_KIND:
            await _attempt_hsi(source, settings, attempt, backoff)
            return
        http = attempt.recorder.as_client()
        for url in urls_for(source, settings, attempt.day):
            fetched = await fetch(http, url, source=source.name, backoff=backoff)
            try:
                fetched = await follow_form(source, http, url, fetched, attempt.day, backoff)
            except MalformedFile:
                attempt.unrecognised = True  # the page or its form is not a layout the parser knows
                raise
            attempt.files.append(fetched)
            main = _parse(source, attempt, fetched.content)["main"]
            attempt.frames.append(main)
            check_date(source, main, attempt.day, fetched.url)
    except Exception as exc:  # any failure of one source is reported, not raised: the others still run
        if isinstance(exc, SourceError):
            exc.source, exc.url = exc.source or source.name, exc.url or url or None
        attempt.error = exc


def _parse(source: Source, attempt: _Attempt, data: bytes) -> dict[str, pd.DataFrame]:
    try:
        return source.parse_all(data)
    except MalformedFile:
        attempt.unrecognised = True
        raise


# EDGAR day kinds -> (the index rows of that source's filings, the form types a sample may be taken from, the
# parser of one filing's XML). Only the XML schedules (since December 2024) make a 13D/13G sample: the paper-era
# SC 13D/13G filings have no XML.
_EDGAR_SAMPLES: dict[
    str,
    tuple[Callable[[pd.DataFrame], pd.DataFrame], tuple[str, ...], Callable[[bytes, str, str], pd.DataFrame]],
] = {
    sec_form4.DAY_KIND: (
        sec_edgar.form4_filings,
        sec_form4.FORM_TYPES,
        lambda data, a, f: sec_form4.parse_filing(data, a, f),
    ),
    sec_13d_13g.DAY_KIND: (
        sec_13d_13g.filings,
        sec_13d_13g.XML_FORM_TYPES,
        lambda data, a, f: sec_13d_13g.parse_filing(data, a, f),
    ),
}


async def _attempt_edgar(source: Source, settings: Settings, attempt: _Attempt, backoff: float) -> None:
    """EDGAR: the day's form index (how many of the source's filings), then one filing as a sample of its layout.

    The full day is hundreds of filings at ≤ 10 requests/s: far too slow for a self-check, and one filing shows
    whether the XML layout is still the one the parser knows.
    """
    select, sample_types, parse_filing = _EDGAR_SAMPLES[str(source.fetch_day)]
    http = attempt.recorder.as_client()
    url = urls_for(source, settings, attempt.day)[0]
    index = await fetch(http, url, source=source.name, backoff=backoff)
    attempt.files.append(index)
    filings = sec_edgar.dedupe_accessions(
        select(_located(attempt, url, lambda: sec_edgar.parse_daily_index(index.content)))
    )
    attempt.rows = len(filings)
    samples = filings[filings["form_type"].isin(sample_types)]
    if samples.empty:
        return
    first = samples.iloc[0]
    base = settings.base_url(source.base_setting)
    listing_url = base + sec_edgar.filing_index_path(first["file_name"])
    listing = await fetch(http, listing_url, source=source.name, backoff=backoff)
    xml_name = _located(attempt, listing_url, lambda: sec_edgar.parse_filing_index_json(listing.content))
    if xml_name is None:
        raise MalformedFile("filing index.json lists no XML document", source=source.name, url=listing_url)
    xml_url = base + sec_edgar.filing_xml_path(first["file_name"], xml_name)
    document = await fetch(http, xml_url, source=source.name, backoff=backoff)
    attempt.frames.append(
        _located(
            attempt,
            xml_url,
            lambda: parse_filing(document.content, str(first["accession"]), str(first["form_type"])),
        )
    )


async def _attempt_hsi(source: Source, settings: Settings, attempt: _Attempt, backoff: float) -> None:
    """Hang Seng: the notices catalogue (rows: the review workbooks it lists for the day, most days none), then the
    newest review workbook it lists, whatever its date, as a sample of the layout: reviews are quarterly, so the
    day's own workbook would leave the layout unchecked most days."""
    http = attempt.recorder.as_client()
    url = urls_for(source, settings, attempt.day)[0]
    catalogue = await fetch(http, url, source=source.name, backoff=backoff)
    attempt.files.append(catalogue)
    notices = _located(attempt, url, lambda: hsi_index_reviews.parse_notices(catalogue.content))
    attempt.rows = len(hsi_index_reviews.review_workbooks(notices, attempt.day))
    listed = notices[notices["path"].str.contains("/indexChgNotice/", regex=False)]
    listed = listed[listed["path"].str.lower().str.endswith(".xlsx")].sort_values("published")
    if listed.empty:
        return
    sample = settings.base_url(source.base_setting) + host_path(str(listed["path"].iloc[-1]))
    workbook = await fetch(http, sample, source=source.name, backoff=backoff)
    attempt.files.append(workbook)
    attempt.frames.append(_located(attempt, sample, lambda: hsi_index_reviews.parse(workbook.content)))


def _located(attempt: _Attempt, url: str, parse: Callable[[], T]) -> T:
    """Run a parser; a MalformedFile it raises marks the layout unrecognised and names the URL."""
    try:
        return parse()
    except MalformedFile as exc:
        attempt.unrecognised = True
        exc.url = exc.url or url
        raise


# --- judging --------------------------------------------------------------------------------------------------


def _verdict(
    source: Source,
    settings: Settings,
    schedule: Schedule,
    now: datetime,
    attempts: list[_Attempt],
    last_good: str,
    timed_out_after: float | None,
) -> SourceCheck:
    """Turn the attempts (newest date first, the last one is reported) into a SourceCheck."""
    final = attempts[-1] if attempts else None
    if final is None:  # the deadline passed before the first request could start
        return _unchecked(
            source, settings, now, "timeout", f"no answer within {timed_out_after:g} s", last_good
        )
    problems: list[str] = []
    notes: list[str] = []
    if len(attempts) > 1:
        newest = attempts[0]
        skipped = ", ".join(f"{a.day.isoformat()} ({_message(a.error)})" for a in attempts[:-1])
        notes.append(f"not published yet: {skipped}; checked {final.day.isoformat()}")
        if window_failed(source.name, newest.day, now, False):
            problems.append(f"no file for {newest.day.isoformat()} by the end of its publication window")
    urls = tuple(urls_for(source, settings, final.day))
    url = urls[0]
    if timed_out_after is not None:
        status = "timeout"
        url = final.recorder.in_flight or url
        problems.append(f"no answer within {timed_out_after:g} s from {url}")
    else:
        status = _status(final.recorder.exchanges) or (type(final.error).__name__ if final.error else NONE)
        if final.error is not None:
            url = getattr(final.error, "url", None) or url
            if isinstance(final.error, NotPublishedYet) and not schedule.expected:
                # A revisions list (e.g. hkex-shortable-list) has no file on most dates: not a fault.
                notes.append(f"no revision takes effect on {final.day.isoformat()} (normal for this list)")
            else:
                problems.append(_describe(final.error))
    reconciled, agreed = _reconciled(final.frames)
    if not agreed:
        problems.append(f"rows do not add up to the file's totals: {reconciled}")
    redirects = tuple(r for exchange in final.recorder.exchanges for r in exchange.redirects)
    notes.extend(f"redirected {r.status}: {r.from_url} → {r.to_url}" for r in _unique(redirects))
    published = schedule.published_at(final.day)
    lag_seconds = (now - published).total_seconds()
    rows = (
        final.rows
        if final.rows is not None
        else (sum(len(f) for f in final.frames) if final.frames else None)
    )
    return SourceCheck(
        source=source.name,
        day=final.day,
        url=url,
        urls=urls,
        status=status,
        redirects=redirects,
        bytes=sum(len(f.content) for f in final.files) if final.files else None,
        layout=_layout(final),
        rows=rows,
        reconciled=reconciled,
        lag=_duration(lag_seconds) if lag_seconds >= 0 else "not due",
        lag_seconds=lag_seconds,
        last_good=last_good,
        healthy=not problems,
        problem="; ".join(problems),
        note="; ".join(notes),
    )


def _unchecked(
    source: Source, settings: Settings, now: datetime, status: str, problem: str, last_good: str
) -> SourceCheck:
    """A source that could not be checked at all (configuration, calendar); its URL is today's, for the shape."""
    urls = tuple(urls_for(source, settings, now.astimezone(HK_TZ).date()))
    return SourceCheck(
        source=source.name,
        day=None,
        url=urls[0],
        urls=urls,
        status=status,
        redirects=(),
        bytes=None,
        layout=NONE,
        rows=None,
        reconciled=NONE,
        lag="not due",
        lag_seconds=None,
        last_good=last_good,
        healthy=False,
        problem=problem,
    )


def _status(exchanges: list[_Exchange]) -> str:
    """The last answer per URL, in the order the URLs were first asked for: "200", or "200/404"."""
    last: dict[str, str] = {}
    for exchange in exchanges:
        last[exchange.url] = exchange.status
    return "/".join(_unique(last.values()))


def _layout(attempt: _Attempt) -> str:
    error = attempt.error
    if attempt.unrecognised:
        # A parser that knew the layout but refused the content (rows not adding up to the file's totals) names the
        # layout without header evidence; a changed header comes with the headers expected and found.
        known = (
            isinstance(error, MalformedFile)
            and error.layout
            and error.expected is None
            and error.found is None
        )
        return str(error.layout) if known and isinstance(error, MalformedFile) else "unrecognised"
    layouts = _unique(str(f.attrs["layout"]) for f in attempt.frames if f.attrs.get("layout"))
    return "+".join(layouts) or NONE


def _reconciled(frames: list[pd.DataFrame]) -> tuple[str, bool]:
    """Text of every (rows sum, file total) check the parsers recorded, and whether all agree."""
    parts: list[str] = []
    agreed = True
    for frame in frames:
        checks: Mapping[str, tuple[float, float]] = frame.attrs.get("reconciled") or {}
        for name, (rows_sum, total) in checks.items():
            ok = math.isclose(float(rows_sum), float(total), rel_tol=_REL_TOLERANCE, abs_tol=_ABS_TOLERANCE)
            agreed = agreed and ok
            sign = "=" if float(rows_sum) == float(total) else "≈" if ok else "≠"
            parts.append(f"{name} {_number(rows_sum)}{sign}{_number(total)} {'✓' if ok else '✗'}")
    return ("; ".join(parts) or NONE), agreed


def _describe(exc: Exception) -> str:
    """One line naming the error class and its message, plus a changed header's evidence when the parser gave it."""
    text = f"{type(exc).__name__}: {_message(exc)}"
    if isinstance(exc, MalformedFile) and exc.expected is not None and exc.found is not None:
        missing = [cell for cell in exc.expected if cell not in exc.found]
        new = [cell for cell in exc.found if cell not in exc.expected]
        if missing or new:
            text += f" (new header(s): {new}; missing: {missing})"
        if exc.layout:
            text += f" (layout tried: {exc.layout})"
    return text


def _message(exc: Exception | None) -> str:
    """The error's own message, on one line, without the [source] <url> suffix SourceError adds."""
    if exc is None:
        return ""
    raw = str(exc.args[0]) if isinstance(exc, SourceError) and exc.args else str(exc)
    return " ".join(raw.split()) or type(exc).__name__


async def _last_good(store: FrameStore | None, name: str) -> str:
    """The last stored file of a source ("2025-11-20 @11-20 16:02" HKT), "never", or "—" without Redis."""
    if store is None:
        return NONE
    try:
        status = await store.status(name)
    except _REDIS_DOWN:
        return NONE
    if "ok_date" not in status:
        return "never"
    if "ok_at" not in status:
        return status["ok_date"]
    fetched = datetime.fromisoformat(status["ok_at"]).astimezone(HK_TZ)
    return f"{status['ok_date']} @{fetched:%m-%d %H:%M}"


# --- rendering --------------------------------------------------------------------------------------------------

_COLUMNS = (
    "source",
    "date",
    "status",
    "redirects",
    "bytes",
    "layout",
    "rows",
    "reconciled",
    "lag",
    "last good",
    "verdict",
    "url",
)


def render_table(
    checks: Sequence[SourceCheck], *, now: datetime | None = None, notes: Sequence[str] = ()
) -> str:
    """Aligned text columns, one row per source, then the problems, the notes and a one-line summary."""
    rows = [_COLUMNS, *(_cells(check) for check in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [f"doctor at {now.astimezone(HK_TZ):%Y-%m-%d %H:%M} HKT"] if now is not None else []
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    problems = [f"  {check.source}: {check.problem}" for check in checks if check.problem]
    remarks = [f"  {check.source}: {check.note}" for check in checks if check.note] + [
        f"  {n}" for n in notes
    ]
    if problems:
        lines += ["", "problems:", *problems]
    if remarks:
        lines += ["", "notes:", *remarks]
    bad = [check.source for check in checks if not check.healthy]
    lines += [
        "",
        f"{len(bad)} of {len(checks)} source(s) unhealthy: {', '.join(bad)}"
        if bad
        else f"all {len(checks)} source(s) healthy",
    ]
    return "\n".join(lines) + "\n"


def render_json(
    checks: Sequence[SourceCheck], *, now: datetime | None = None, notes: Sequence[str] = ()
) -> str:
    """One JSON object: overall `healthy`, per-source fields (dates ISO) and general notes."""
    sources = []
    for check in checks:
        item = asdict(check)
        item["date"] = item.pop("day").isoformat() if check.day else None
        sources.append(item)
    payload = {
        "checked_at": now.isoformat() if now is not None else None,
        "healthy": all(check.healthy for check in checks),
        "sources": sources,
        "notes": list(notes),
    }
    return json.dumps(payload, ensure_ascii=False, indent=2) + "\n"


def _cells(check: SourceCheck) -> tuple[str, ...]:
    redirects = ",".join(str(r.status) for r in check.redirects) or NONE
    reconciled = check.reconciled
    if len(reconciled) > _CELL_WIDTH:
        good, bad = reconciled.count("✓"), reconciled.count("✗")
        reconciled = f"{good}/{good + bad} ✓" if not bad else f"{bad}/{good + bad} ✗"
    return (
        check.source,
        check.day.isoformat() if check.day else NONE,
        check.status,
        redirects,
        f"{check.bytes:,}" if check.bytes is not None else NONE,
        check.layout,
        f"{check.rows:,}" if check.rows is not None else NONE,
        reconciled,
        check.lag,
        check.last_good,
        "ok" if check.healthy else "FAIL",
        check.url + (f" (+{len(check.urls) - 1})" if len(check.urls) > 1 else ""),
    )


def _duration(seconds: float) -> str:
    """Compact duration: 45s, 12m, 16h45m, 2d03h."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{whole}s"


def _number(value: float) -> str:
    """Exact for whole numbers under 10 million, else 4 significant digits (1.235e+10)."""
    number = float(value)
    if number.is_integer() and abs(number) < 1e7:
        return f"{int(number)}"
    return f"{number:.4g}"


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


def _esc(text: str) -> str:
    return html.escape(text, quote=False)
