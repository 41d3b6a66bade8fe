"""Store normalized frames and fetch state in Redis; load history ranges back as typed frames."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

import pandas as pd
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT, ZSetRangeResponse

from alerts.calendar import schedule_for
from alerts.sources.common import conform, empty_frame
from alerts.store import keys
from config.settings import redact


def dump_frame(frame: pd.DataFrame) -> bytes:
    """Serialize a frame as gzip'd JSON (split orient, ISO dates)."""
    text = frame.to_json(orient="split", date_format="iso", index=False, date_unit="s")
    return gzip.compress(text.encode("utf-8"), compresslevel=5, mtime=0)  # deterministic bytes for digests


def load_frame(blob: bytes, schema: Mapping[str, str]) -> pd.DataFrame:
    """Deserialize a frame written by dump_frame and restore the schema's dtypes."""
    payload = json.loads(gzip.decompress(blob))
    return _typed(pd.DataFrame(payload["data"], columns=payload["columns"], dtype=object), schema)


KNOWN_COLUMN = "published_at"  # added centrally on load: when each row's file became known (UTC)


def with_known(frame: pd.DataFrame, moments: Sequence[datetime], counts: Sequence[int]) -> pd.DataFrame:
    """`frame` (the concatenation of files with `counts` rows each) with each file's moment as `published_at`."""
    values = pd.DatetimeIndex(
        [pd.Timestamp(m).tz_convert("UTC") for m in moments], dtype="datetime64[ns, UTC]"
    )
    out = frame.copy()
    out[KNOWN_COLUMN] = values.repeat(list(counts)) if len(values) else values
    return out


def load_frames(
    blobs: Sequence[bytes], schema: Mapping[str, str], counts: list[int] | None = None
) -> pd.DataFrame:
    """Deserialize many frames written by dump_frame into one frame.

    One pandas construction for all days instead of one per day: a history load reads about a thousand frames,
    and building each on its own cost seconds.
    """
    columns: list[str] | None = None
    rows: list[list[object]] = []
    for blob in blobs:
        payload = json.loads(gzip.decompress(blob))
        if counts is not None:
            counts.append(len(payload["data"]))  # rows per blob, for with_known
        if columns is None:
            columns = payload["columns"]
        elif payload["columns"] != columns:  # stored before a schema change: the slow, general path
            frames = [load_frame(b, schema) for b in blobs]
            if counts is not None:
                counts[:] = [len(f) for f in frames]
            return conform(pd.concat(frames, ignore_index=True), schema)
        rows.extend(payload["data"])
    if columns is None:
        return empty_frame(schema)
    return _typed(pd.DataFrame(rows, columns=columns, dtype=object), schema)


def _typed(raw: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    for col, dtype in schema.items():
        if dtype == "datetime64[ns]" and col in raw:
            raw[col] = pd.to_datetime(raw[col].where(raw[col].notna(), None))
    return conform(raw, schema)


@dataclass(frozen=True)
class FetchState:
    """Validators remembered for a URL."""

    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None


class FrameStore:
    """Frames per (source, table, date) plus fetch state, in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def put(
        self, source: str, tables: Mapping[str, pd.DataFrame], day: date, known_at: datetime | None = None
    ) -> None:
        """Store every table of one source file for `day` atomically (MULTI), with when it became known."""
        await self.put_dumped(
            [(source, table, day, dump_frame(frame)) for table, frame in tables.items()],
            {(source, day): known_at} if known_at is not None else None,
        )

    async def put_dumped(
        self,
        items: Sequence[tuple[str, str, date, bytes]],
        known_at: Mapping[tuple[str, date], datetime] | None = None,
    ) -> None:
        """Store already dumped tables (source, table, day, blob), one MULTI per source: a bulk load dumps each frame
        once. A source's keys share one hash slot (keys.source_tag), so its MULTI also works on a Redis Cluster."""
        by_source: dict[str, list[tuple[str, date, bytes]]] = defaultdict(list)
        moments: dict[str, list[tuple[date, datetime]]] = defaultdict(list)
        for source, table, day, blob in items:
            by_source[source].append((table, day, blob))
        for (source, day), moment in (known_at or {}).items():
            moments[source].append((day, moment))
        for source in dict.fromkeys([*by_source, *moments]):
            async with self.redis.pipeline(transaction=True) as pipe:
                for day, moment in moments[source]:
                    pipe.hsetnx(keys.frame_known(source), day.isoformat(), moment.isoformat())
                for table, day, blob in by_source[source]:
                    pipe.set(keys.frame(source, table, day), blob, ex=keys.FRAME_TTL_SECONDS)
                    pipe.zadd(keys.frame_index(source, table), {day.isoformat(): day.toordinal()})
                await pipe.execute()

    async def get(self, source: str, table: str, day: date, schema: Mapping[str, str]) -> pd.DataFrame | None:
        """Load one stored table, or None when nothing is stored for that date."""
        blob = await self.redis.get(keys.frame(source, table, day))
        return None if blob is None else load_frame(_blob(blob), schema)

    async def dates(
        self, source: str, table: str = "main", start: date | None = None, end: date | None = None
    ) -> list[date]:
        """Stored dates of a table within [start, end], oldest first."""
        lo = start.toordinal() if start else "-inf"
        hi = end.toordinal() if end else "+inf"
        members = await self.redis.zrangebyscore(keys.frame_index(source, table), lo, hi)
        return [date.fromisoformat(m) for m in _members(members)]

    async def load_range(
        self, source: str, schema: Mapping[str, str], start: date, end: date, table: str = "main"
    ) -> pd.DataFrame:
        """Concatenate a table's stored frames for dates in [start, end] (oldest first)."""
        days = await self.dates(source, table, start, end)
        if not days:
            return empty_frame(schema)
        blobs = await self.redis.mget([keys.frame(source, table, d) for d in days])
        # Decoding takes a while for a long range: off the event loop, so commands are answered meanwhile.
        return await asyncio.to_thread(load_frames, [_blob(b) for b in blobs if b is not None], schema)

    async def known_range(
        self, source: str, schema: Mapping[str, str], start: date, end: date, table: str = "main"
    ) -> pd.DataFrame:
        """Like load_range, plus a `published_at` column: the moment each row's file became known.

        Dates stored without a recorded moment (stored before it was kept, or written by hand) get the schedule's
        due moment.
        """
        days = await self.dates(source, table, start, end)
        blobs = await self.redis.mget([keys.frame(source, table, d) for d in days]) if days else []
        present = [(d, _blob(b)) for d, b in zip(days, blobs, strict=True) if b is not None]
        if not present:
            return with_known(empty_frame(schema), [], [])
        raw = await self.redis.hmget(keys.frame_known(source), [d.isoformat() for d, _ in present])
        schedule = schedule_for(source)
        moments = [
            datetime.fromisoformat(_text(m)) if m else schedule.published_at(d)
            for (d, _), m in zip(present, raw, strict=True)
        ]
        counts: list[int] = []
        frame = await asyncio.to_thread(load_frames, [b for _, b in present], schema, counts)
        return with_known(frame, moments, counts)

    async def fetch_state(self, url: str) -> FetchState:
        """Validators remembered for `url` (empty when never fetched)."""
        raw = await self.redis.hgetall(keys.fetch_state(url))
        data = {_text(k): _text(v) for k, v in raw.items()}
        return FetchState(data.get("etag"), data.get("last_modified"), data.get("sha256"))

    async def save_fetch_state(self, url: str, state: FetchState, at: datetime) -> None:
        """Remember validators for `url`; called only after the file's frames were stored."""
        mapping: dict[FieldT, EncodableT] = {
            k: redact(v)
            for k, v in (
                ("etag", state.etag),
                ("last_modified", state.last_modified),
                ("sha256", state.sha256),
                ("fetched_at", at.isoformat()),
            )
            if v
        }
        key = keys.fetch_state(url)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, keys.FETCH_STATE_TTL_SECONDS)
            await pipe.execute()

    async def record_status(self, source: str, at: datetime, *, ok: bool, detail: Mapping[str, str]) -> None:
        """Remember the last success or failure of a source (for /status and `positioning-bot status`).

        Values are redacted here: an error message may quote a URL or an answer with a token in it.
        """
        prefix = "ok" if ok else "error"
        mapping: dict[FieldT, EncodableT] = {
            f"{prefix}_at": at.isoformat(),
            **{f"{prefix}_{k}": redact(v) for k, v in detail.items()},
        }
        await self.redis.hset(keys.source_status(source), mapping=mapping)

    async def status(self, source: str) -> dict[str, str]:
        """The recorded status of a source."""
        raw = await self.redis.hgetall(keys.source_status(source))
        return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; a client decoding replies returns str)."""
    return value.decode() if isinstance(value, bytes) else value


def _blob(value: bytes | str) -> bytes:
    """A stored frame as Redis returns it: gzip bytes (a client decoding replies could not have read them)."""
    if isinstance(value, str):
        raise TypeError("stored frames are gzip bytes: read them with a client that does not decode replies")
    return value


def _members(reply: ZSetRangeResponse) -> list[str]:
    """Members of a ZRANGE/ZRANGEBYSCORE reply without scores, decoded (redis-py types every range reply alike)."""
    return [_text(m) for m in cast("list[bytes | str]", reply)]
