"""Re-run kept failed files through the current parsers (after an upgrade) and route their alerts, late but once.

A kept date is stored exactly as a live fetch would store it (same checks, frames, fetch state), then the same rules
and routing as a live cycle run for it; routing marks fingerprint × chat, so nobody gets an alert twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis

from alerts.errors import SourceError
from alerts.fetch import Fetched, fetch
from alerts.ingest import store_files, urls_for
from alerts.pipeline import CycleReport, evaluate_and_route
from alerts.rules import RuleParams
from alerts.sources import get_source
from alerts.store.failed import FailedFiles, KeptFile, file_name
from alerts.store.frames import FrameStore
from config.settings import Settings


@dataclass
class ReparseResult:
    """What reparsing one kept date did: `error` is None when it was stored and routed."""

    source: str
    day: date
    files: tuple[str, ...]  # names of the kept files that had failed
    error: SourceError | None = None
    cycle: CycleReport | None = None

    def line(self) -> str:
        """One line for the CLI: the outcome, or the file and the reason it still fails."""
        where = f"reparse {self.source} {self.day.isoformat()}"
        if self.error is not None:
            name = file_name(self.error.url) if self.error.url else ", ".join(self.files)
            reason = " ".join(str(self.error.args[0] if self.error.args else "").split())
            return f"{where} {name}: {type(self.error).__name__}: {reason}"
        assert self.cycle is not None
        routed = (
            "already routed"
            if self.cycle.status == "unchanged"
            else f"alerts={self.cycle.alerts} new={self.cycle.new_alerts} enqueued={self.cycle.enqueued}"
        )
        return f"{where} {', '.join(self.files)}: stored (main={self.cycle.rows}); {routed}"


def _path(url: str) -> str:
    """Path and query of a URL: kept files match the date's URLs even if the base URL setting changed since."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def _files(
    kept: list[KeptFile],
    urls: list[str],
    failed: FailedFiles,
    client: httpx.AsyncClient,
    source: str,
    backoff: float,
) -> list[Fetched]:
    """The date's files: kept bytes where there are some (the newest per URL), else fetched as a live cycle would."""
    newest = {_path(k.url): k for k in kept}  # listed oldest first: a revision kept later wins
    files = []
    for url in urls:
        item = newest.get(_path(url))
        content = None if item is None else await failed.content(item)
        if item is not None and content is not None:
            # Saved under today's URL with the validators of then: the next poll sends them and sees "unchanged".
            files.append(Fetched(url, "ok", content, item.etag, item.last_modified))
        else:
            files.append(await fetch(client, url, source=source, backoff=backoff))
    return files


async def reparse_day(
    source_name: str,
    day: date,
    *,
    settings: Settings,
    redis: Redis,
    client: httpx.AsyncClient,
    now: datetime,
    params: RuleParams | None = None,
    backoff: float = 0.5,
) -> ReparseResult | None:
    """Store the kept file(s) of (source, day) with the current parser and route the alerts; None when none is kept.

    On failure nothing is stored, the files stay kept and the result carries the error.
    """
    source, failed = get_source(source_name), FailedFiles(redis)
    kept = await failed.kept(source_name, day)
    names = tuple(dict.fromkeys(k.name for k in kept if k.failed))
    if not names:
        return None
    result = ReparseResult(source_name, day, names)
    try:
        files = await _files(kept, urls_for(source, settings, day), failed, client, source_name, backoff)
        # Stores frames and fetch state as ingest does, and forgets the kept files of the date.
        ingested = await store_files(source, day, files, store=FrameStore(redis), now=now)
    except SourceError as exc:
        exc.source = exc.source or source_name
        result.error = exc
        return result
    cycle = CycleReport(source_name, day, "processed", rows=ingested.rows.get("main", 0))
    result.cycle = await evaluate_and_route(cycle, settings=settings, redis=redis, now=now, params=params)
    return result
