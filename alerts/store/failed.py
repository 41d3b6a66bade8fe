"""Source files that failed to parse, kept raw (bounded) with the evidence, so `positioning-bot reparse` can run them
through an upgraded parser later: a layout change loses nothing."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from alerts.errors import MalformedFile, SourceError
from alerts.store import keys
from config.settings import redact

log = logging.getLogger(__name__)
_FIELDS = (
    "url",
    "date",
    "kept_at",
    "size",
    "etag",
    "last_modified",
    "error",
    "error_type",
    "expected",
    "found",
    "layout",
    "failed",
)


@dataclass(frozen=True)
class KeptFile:
    """What is known about one kept file (its bytes are read separately: they can be megabytes)."""

    source: str
    day: date
    sha256: str
    url: str
    kept_at: datetime
    size: int = 0
    etag: str | None = None
    last_modified: str | None = None
    error: str = ""
    error_type: str = ""
    expected: tuple[str, ...] | None = None
    found: tuple[str, ...] | None = None
    layout: str | None = None
    failed: bool = True  # False: a sibling of a failing multi-file day that parsed, kept to rebuild the day

    @property
    def name(self) -> str:
        """The file's name as the operator knows it: the last path segment (plus query), else the path."""
        return file_name(self.url)


def file_name(url: str) -> str:
    """Last path segment of a URL with its query (`SRRPT20260909.xls`, `mutualmarket.aspx?t=hk`)."""
    parts = urlsplit(url)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.path or url
    return f"{name}?{parts.query}" if parts.query else name


def layout_signature(exc: SourceError) -> str:
    """A short id of what failed: the expected/found evidence when the parser gave it, else the error's kind.

    Numbers are blanked in messages so that the same change seen on two dates (or two rows) is one signature.
    """
    if isinstance(exc, MalformedFile) and (exc.expected is not None or exc.found is not None):
        basis = json.dumps([type(exc).__name__, exc.layout, exc.expected, exc.found], ensure_ascii=False)
    else:
        message = str(exc.args[0]) if exc.args else ""
        basis = type(exc).__name__ + ":" + re.sub(r"\d+", "#", message)
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


class FailedFiles:
    """Kept failed files per source in Redis (keys.failed_file / keys.failed_index)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def put(
        self,
        source: str,
        day: date,
        *,
        url: str,
        content: bytes,
        now: datetime,
        error: SourceError | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> KeptFile | None:
        """Keep `content` for 30 days with the failure's evidence (`error` None: a sibling that parsed).

        Returns what was kept, or None when the file is over the size cap. The same bytes are kept once.
        """
        if len(content) > keys.FAILED_MAX_BYTES:
            log.warning(
                "%s %s: %s failed and is %d bytes, over the %d-byte cap: not kept",
                source,
                day.isoformat(),
                url,
                len(content),
                keys.FAILED_MAX_BYTES,
            )
            return None
        sha = hashlib.sha256(content).hexdigest()
        key = keys.failed_file(source, day, sha)
        if await self.redis.exists(key):
            return await self._read(source, day, sha)  # refetched every poll: the first sighting stands
        kept = KeptFile(
            source,
            day,
            sha,
            url,
            now,
            len(content),
            etag,
            last_modified,
            # Redacted like every text the bot keeps (an error may quote a URL).
            error="" if error is None else redact(str(error.args[0])) if error.args else type(error).__name__,
            error_type="" if error is None else type(error).__name__,
            expected=getattr(error, "expected", None),
            found=getattr(error, "found", None),
            layout=getattr(error, "layout", None),
            failed=error is not None,
        )
        mapping: dict[FieldT, EncodableT] = {"content": content}
        mapping.update(_encode(kept).items())  # pair by pair: typed as hset takes its fields
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, keys.FAILED_TTL_SECONDS)
            pipe.zadd(keys.failed_index(source), {f"{day.isoformat()}:{sha}": now.timestamp()})
            pipe.expire(keys.failed_index(source), keys.FAILED_TTL_SECONDS)
            await pipe.execute()
        await self._trim(source)
        return kept

    async def kept(self, source: str, day: date | None = None) -> list[KeptFile]:
        """Kept files of a source (of one date when given), oldest kept first; forgets index entries that expired."""
        members = [_text(m) for m in await self.redis.zrange(keys.failed_index(source), 0, -1)]
        out: list[KeptFile] = []
        for member in members:
            iso, sha = member.split(":", 1)
            if day is not None and iso != day.isoformat():
                continue
            kept = await self._read(source, date.fromisoformat(iso), sha)
            if kept is None:
                await self.redis.zrem(keys.failed_index(source), member)
            else:
                out.append(kept)
        return out

    async def days(self, source: str) -> list[date]:
        """Dates with at least one kept failing file, oldest first."""
        return sorted({k.day for k in await self.kept(source) if k.failed})

    async def content(self, kept: KeptFile) -> bytes | None:
        """The kept bytes (None once expired)."""
        data: Any = await self.redis.hget(keys.failed_file(kept.source, kept.day, kept.sha256), "content")
        return None if data is None else bytes(data)

    async def delete(self, kept: KeptFile) -> None:
        """Forget one kept file (after it was stored by a reparse)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.failed_file(kept.source, kept.day, kept.sha256))
            pipe.zrem(keys.failed_index(kept.source), f"{kept.day.isoformat()}:{kept.sha256}")
            await pipe.execute()

    async def forget_day(self, source: str, day: date) -> int:
        """Forget every kept file of (source, day): a later fetch of that date was stored, so they are superseded."""
        items = await self.kept(source, day)
        for item in items:
            await self.delete(item)
        return len(items)

    async def _read(self, source: str, day: date, sha: str) -> KeptFile | None:
        values = await self.redis.hmget(keys.failed_file(source, day, sha), list(_FIELDS))
        raw: Mapping[str, str] = {
            name: _text(v) for name, v in zip(_FIELDS, values, strict=True) if v is not None
        }
        if "url" not in raw:
            return None
        return KeptFile(
            source,
            day,
            sha,
            raw["url"],
            datetime.fromisoformat(raw["kept_at"]),
            int(raw.get("size", 0)),
            raw.get("etag") or None,
            raw.get("last_modified") or None,
            raw.get("error", ""),
            raw.get("error_type", ""),
            _tuple(raw.get("expected")),
            _tuple(raw.get("found")),
            raw.get("layout") or None,
            raw.get("failed") == "1",
        )

    async def _trim(self, source: str) -> None:
        """Drop the oldest kept files past the per-source cap."""
        index = keys.failed_index(source)
        extra = await self.redis.zcard(index) - keys.FAILED_MAX_PER_SOURCE
        if extra <= 0:
            return
        popped: Any = await self.redis.zpopmin(index, extra)
        for member, _score in popped:
            iso, sha = _text(member).split(":", 1)
            await self.redis.delete(keys.failed_file(source, date.fromisoformat(iso), sha))
            log.warning(
                "%s: more than %d kept failed files: dropped the oldest (%s)",
                source,
                keys.FAILED_MAX_PER_SOURCE,
                iso,
            )


def _encode(kept: KeptFile) -> dict[str, str]:
    fields = {
        "url": kept.url,
        "date": kept.day.isoformat(),
        "kept_at": kept.kept_at.isoformat(),
        "size": str(kept.size),
        "etag": kept.etag or "",
        "last_modified": kept.last_modified or "",
        "error": kept.error,
        "error_type": kept.error_type,
        "layout": kept.layout or "",
        "failed": "1" if kept.failed else "0",
    }
    for name, value in (("expected", kept.expected), ("found", kept.found)):
        if value is not None:
            fields[name] = json.dumps(list(value), ensure_ascii=False)
    return fields


def _text(value: object) -> str:
    """A Redis reply as text (the client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _tuple(text: str | None) -> tuple[str, ...] | None:
    return None if not text else tuple(str(v) for v in json.loads(text))
