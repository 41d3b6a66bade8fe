"""One source file for one date: fetch → parse → check → store. Nothing is stored unless every step passed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import httpx
import pandas as pd

from alerts import edgar, hsi
from alerts.calendar import schedule_for
from alerts.edgar import DayFetcher
from alerts.errors import MalformedFile, NotAvailable, NotPublishedYet, SourceError
from alerts.fetch import Fetched, fetch
from alerts.links import urls_for
from alerts.sources.base import Source
from alerts.sources.common import conform
from alerts.sources.sec_edgar import fill_tickers
from alerts.store.failed import FailedFiles
from alerts.store.frames import FetchState, FrameStore, dump_frame
from alerts.store.tickermap import tickers_by_cik
from config.settings import Settings, redact

log = logging.getLogger(__name__)

# Source.fetch_day kind -> the function assembling such a day (EDGAR's filings, Hang Seng's review workbooks).
DAY_FETCHERS: dict[str, DayFetcher] = {**edgar.DAY_FETCHERS, **hsi.DAY_FETCHERS}


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did: `stored` new data, or found it `unchanged`."""

    source: str
    day: date
    status: str  # stored | unchanged
    rows: dict[str, int] = field(default_factory=dict)
    urls: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for the CLI and logs."""
        rows = ", ".join(f"{table}={n}" for table, n in self.rows.items()) or "no new rows"
        return f"{self.source} {self.day.isoformat()}: {self.status} ({rows}) from {len(self.urls)} file(s)"


def known_at(source: Source, day: date, now: datetime) -> datetime:
    """When a file stored at `now` became known: the schedule's due moment, or the fetch time when later."""
    try:
        return schedule_for(source.name).known_at(day, now)
    except KeyError:  # a source without a schedule (tests register some): the fetch is all we know
        return now


def check_date(source: Source, frame: pd.DataFrame, day: date, url: str) -> None:
    file_date = frame.attrs.get("file_date")
    if not source.check_file_date or file_date is None or file_date == day:
        return
    if file_date < day and not source.dated_url:
        # A "latest only" page still showing an earlier session: today's file is not out yet.
        raise NotPublishedYet(
            f"file still shows {file_date.isoformat()}, not {day.isoformat()}", source=source.name, url=url
        )
    if not source.history:
        raise NotAvailable(
            f"page now shows {file_date.isoformat()}; {day.isoformat()} is no longer served",
            source=source.name,
            url=url,
        )
    raise MalformedFile(
        f"file is dated {file_date.isoformat()}, expected {day.isoformat()}", source=source.name, url=url
    )


def _parse(source: Source, fetched: Fetched, day: date) -> dict[str, pd.DataFrame]:
    try:
        tables = source.parse_all(fetched.content)
    except SourceError as exc:
        exc.source, exc.url = exc.source or source.name, exc.url or fetched.url
        raise
    check_date(source, tables["main"], day, fetched.url)
    return tables


def _form_for_date(source: Source, data: bytes, day: date) -> Mapping[str, str]:
    """The source's form for `day`, read from its page: like a parser, any failure means the page is malformed."""
    assert source.form_for_date is not None
    try:
        return source.form_for_date(data, day)
    except SourceError:
        raise
    except Exception as exc:
        raise MalformedFile(
            f"{source.name}: form for {day.isoformat()}: {type(exc).__name__}: {exc}", source=source.name
        ) from exc


FileResult = tuple[Fetched, dict[str, pd.DataFrame] | None]  # the file, and its tables (None: not modified)


async def follow_form(
    source: Source, client: httpx.AsyncClient, url: str, fetched: Fetched, day: date, backoff: float
) -> Fetched:
    """For pages that default to their latest date: the page for `day`, asked for through the page's own form."""
    if source.form_for_date is None:
        return fetched
    first = source.parse_all(fetched.content)["main"]
    if first.attrs.get("file_date") == day:
        return fetched
    form = _form_for_date(source, fetched.content, day)
    return await fetch(
        client, url, form=form, source=source.name, backoff=backoff, max_bytes=source.max_bytes
    )


async def _fetch_for_date(
    source: Source,
    client: httpx.AsyncClient,
    url: str,
    day: date,
    state: FetchState | None,
    backoff: float,
    failed: FailedFiles,
    now: datetime,
) -> FileResult:
    fetched = await fetch(
        client, url, state=state, source=source.name, backoff=backoff, max_bytes=source.max_bytes
    )
    if fetched.status == "not_modified":
        return fetched, None
    try:
        fetched = await follow_form(source, client, url, fetched, day, backoff)
        return fetched, _parse(source, fetched, day)
    except MalformedFile as exc:
        # Nothing is stored, but the bytes are kept: after a parser upgrade `reparse` turns them into data.
        exc.source, exc.url = exc.source or source.name, exc.url or fetched.url
        await failed.put(
            source.name,
            day,
            url=fetched.url,
            content=fetched.content,
            now=now,
            error=exc,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
        )
        raise


async def _fetch_all(
    source: Source,
    client: httpx.AsyncClient,
    urls: list[str],
    day: date,
    states: dict[str, FetchState | None],
    backoff: float,
    failed: FailedFiles,
    now: datetime,
) -> list[FileResult]:
    """Fetch and parse each file of a date; when some do not parse, keep every one of them, then raise the first."""
    results: list[FileResult] = []
    malformed: list[MalformedFile] = []
    for url in urls:
        try:
            results.append(await _fetch_for_date(source, client, url, day, states[url], backoff, failed, now))
        except MalformedFile as exc:
            malformed.append(exc)  # go on: the day's other files may fail too, and each is kept
        except SourceError:
            if malformed:
                raise malformed[0] from None  # the layout problem is the news, not a sibling not out yet
            raise
    if malformed:
        for fetched, tables in results:
            if (
                tables is not None
            ):  # parsed, but kept beside the failing file so a reparse can rebuild the day
                await failed.put(
                    source.name,
                    day,
                    url=fetched.url,
                    content=fetched.content,
                    now=now,
                    etag=fetched.etag,
                    last_modified=fetched.last_modified,
                )
        raise malformed[0]
    return results


async def ingest(
    source: Source,
    day: date,
    *,
    settings: Settings,
    client: httpx.AsyncClient,
    store: FrameStore,
    now: datetime,
    backoff: float = 0.5,
) -> IngestReport:
    """Fetch, parse and store one source's file(s) for `day`; raise a SourceError and store nothing on failure."""
    assemble = day_fetcher(source)
    if assemble is not None:
        return await _ingest_assembled(
            source, assemble, day, settings=settings, client=client, store=store, now=now
        )
    urls = urls_for(source, settings, day)
    have_data = bool(await store.dates(source.name, "main", day, day))
    states = {url: (await store.fetch_state(url)) if have_data else None for url in urls}
    failed = FailedFiles(store.redis)
    try:
        results = await _fetch_all(source, client, urls, day, states, backoff, failed, now)
        if all(tables is None for _, tables in results):
            return IngestReport(source.name, day, "unchanged", urls=tuple(urls))
        if any(tables is None for _, tables in results):
            # Some files changed, some did not: refetch the unchanged ones in full so the day is rebuilt whole.
            results = await _fetch_all(source, client, urls, day, dict.fromkeys(urls), backoff, failed, now)
        fresh = [f for f, _ in results]
        if have_data and all(f.sha256 == (states[f.url] or FetchState()).sha256 for f in fresh):
            return IngestReport(source.name, day, "unchanged", urls=tuple(urls))
        combined = _combine(source, [tables for _, tables in results if tables is not None])
        await _store(store, source, day, combined, fresh, now)
    except SourceError as exc:
        await _record_failure(store, source, day, now, exc)
        raise
    return await _record_stored(store, source, day, now, combined, tuple(urls))


async def store_files(
    source: Source, day: date, files: Sequence[Fetched], *, store: FrameStore, now: datetime
) -> IngestReport:
    """Parse, check and store files already in hand (kept ones, for `reparse`) as `ingest` would; raise on failure."""
    combined = _combine(source, [_parse(source, f, day) for f in files])
    await _store(store, source, day, combined, list(files), now)
    return await _record_stored(store, source, day, now, combined, tuple(f.url for f in files))


async def _store(
    store: FrameStore,
    source: Source,
    day: date,
    tables: dict[str, pd.DataFrame],
    files: list[Fetched],
    now: datetime,
) -> None:
    """Store a date's tables, then the validators of its files; kept failed files of that date are superseded."""
    await store.put(source.name, tables, day, known_at=known_at(source, day, now))
    for f in files:
        await store.save_fetch_state(f.url, f.state(), now)
    await FailedFiles(store.redis).forget_day(source.name, day)


async def _record_failure(
    store: FrameStore, source: Source, day: date, now: datetime, exc: SourceError
) -> None:
    """Log a failed file and remember it as the source's last error."""
    # "Not published yet" is routine inside a publication window; real failures are warnings.
    level = logging.INFO if isinstance(exc, NotPublishedYet) else logging.WARNING
    log.log(level, "%s %s failed: %s", source.name, day.isoformat(), exc)
    # Redact before cutting to length: half a token cut off is still half a token.
    message = redact(str(exc))[:500]
    await store.record_status(
        source.name, now, ok=False, detail={"date": day.isoformat(), "message": message}
    )


async def _record_stored(
    store: FrameStore,
    source: Source,
    day: date,
    now: datetime,
    tables: dict[str, pd.DataFrame],
    urls: tuple[str, ...],
) -> IngestReport:
    """Remember a stored file as the source's last success and report it."""
    rows = {table: len(frame) for table, frame in tables.items()}
    await store.record_status(
        source.name, now, ok=True, detail={"date": day.isoformat(), "rows": str(rows.get("main", 0))}
    )
    log.info("%s %s stored %s", source.name, day.isoformat(), rows)
    return IngestReport(source.name, day, "stored", rows, urls)


def day_fetcher(source: Source) -> DayFetcher | None:
    """The function assembling a whole day of `source` (the kind it declares), or None for file-by-file sources."""
    if source.fetch_day is None:
        return None
    try:
        return DAY_FETCHERS[source.fetch_day]
    except KeyError:
        raise KeyError(f"{source.name}: no day-fetcher of kind {source.fetch_day!r}") from None


async def _ingest_assembled(
    source: Source,
    assemble: DayFetcher,
    day: date,
    *,
    settings: Settings,
    client: httpx.AsyncClient,
    store: FrameStore,
    now: datetime,
) -> IngestReport:
    """A day built from many files: fetch it whole, store it when its content changed (digest of the frames)."""
    # The day's entry point (e.g. the EDGAR daily index) names its state.
    key = urls_for(source, settings, day)[0]
    try:
        try:
            tables = await assemble(client, settings, day)
        except SourceError:
            raise
        except Exception as exc:  # a parser of one of the day's files failed outside alerts.errors
            raise MalformedFile(
                f"{source.name}: {type(exc).__name__}: {exc}", source=source.name, url=key
            ) from exc
        for name, table in source.tables.items():
            if list(tables[name].columns) != list(table.schema):
                raise MalformedFile(
                    f"{source.name}.{name}: columns differ from schema", source=source.name, url=key
                )
    except SourceError as exc:
        exc.source, exc.url = exc.source or source.name, exc.url or key
        await _record_failure(store, source, day, now, exc)
        raise
    if source.before_pass == "ticker-map":  # filings that name no ticker get it from SEC's map by issuer CIK
        by_cik = await tickers_by_cik(store.redis)
        tables = {name: fill_tickers(frame, by_cik) for name, frame in tables.items()}
    digest = hashlib.sha256(b"".join(dump_frame(tables[name]) for name in sorted(tables))).hexdigest()
    if (await store.fetch_state(key)).sha256 == digest:
        return IngestReport(source.name, day, "unchanged", urls=(key,))
    await store.put(source.name, tables, day, known_at=known_at(source, day, now))
    await store.save_fetch_state(key, FetchState(sha256=digest), now)
    return await _record_stored(store, source, day, now, tables, (key,))


def _combine(source: Source, parts: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for table_name, table in source.tables.items():
        frames = [p[table_name] for p in parts if len(p[table_name])]
        out[table_name] = (
            conform(pd.concat(frames, ignore_index=True), table.schema) if frames else parts[0][table_name]
        )
    return out
