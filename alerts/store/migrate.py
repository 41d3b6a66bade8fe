"""One-time renaming of keys written before the hash-tag layout (alerts/store/keys.py) to their tagged names.

Releases before Redis Cluster support named a source's frames `pb:frame:hkex-quotes:main:2025-11-20`, a chat's
watchlist `pb:wl:123`, the outbox `pb:outbox:due`...; the keys that must change together now share a hash tag
(`pb:frame:{src:hkex-quotes}:main:2025-11-20`, `pb:wl:{chat:123}`, `pb:{outbox}:due`). `migrate_keys` walks the
keyspace once (SCAN) and renames every old-layout key to its new name:

- on one server with RENAMENX (atomic; the TTL moves with the key);
- on a Redis Cluster, where old and new names usually live in different slots, with DUMP + RESTORE (the remaining
  TTL kept) and then DEL of the old key.

It is idempotent: new names never match an old pattern, so a second run finds nothing to do; a key present under
both names (the new one written since) is left as it is and reported, never overwritten. When a pass ends, the
layout marker `keys.KEY_LAYOUT` is set, and the leader's start-up check (`only_once`) is then one GET.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from alerts.store import keys
from alerts.store.connect import is_cluster

log = logging.getLogger(__name__)

_P = re.escape(keys.PREFIX)
_SOURCE = r"([^{}:]+)"  # a source name as the old layout wrote it (no colon, no brace)
_CHAT = r"(-?\d+)"  # a chat id (negative for groups)

# Old name pattern → new name; the new names come from keys.py, so the layout stays written down in one place.
RENAMES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(rf"^{_P}frame:{_SOURCE}:(.+)$"),
        lambda m: f"{keys.PREFIX}frame:{keys.source_tag(m[1])}:{m[2]}",
    ),
    (
        re.compile(rf"^{_P}frames:{_SOURCE}:(.+)$"),
        lambda m: f"{keys.PREFIX}frames:{keys.source_tag(m[1])}:{m[2]}",
    ),
    (re.compile(rf"^{_P}failed:index:{_SOURCE}$"), lambda m: keys.failed_index(m[1])),
    (
        re.compile(rf"^{_P}failed:{_SOURCE}:(\d{{4}}-\d{{2}}-\d{{2}}:[0-9a-f]+)$"),
        lambda m: f"{keys.PREFIX}failed:{keys.source_tag(m[1])}:{m[2]}",
    ),
    (re.compile(rf"^{_P}wl:{_CHAT}$"), lambda m: keys.watchlist(int(m[1]))),
    (re.compile(rf"^{_P}chat:{_CHAT}$"), lambda m: keys.chat_settings(int(m[1]))),
    (re.compile(rf"^{_P}mutes:{_CHAT}$"), lambda m: keys.mutes(int(m[1]))),
    (re.compile(rf"^{_P}digest:{_CHAT}$"), lambda m: keys.digest_queue(int(m[1]))),
    (re.compile(rf"^{_P}outbox:due$"), lambda m: keys.OUTBOX_DUE),
    (re.compile(rf"^{_P}outbox:dead$"), lambda m: keys.OUTBOX_DEAD),
    (re.compile(rf"^{_P}outbox:item:(.+)$"), lambda m: keys.outbox_item(m[1])),
    (re.compile(rf"^{_P}outbox:alert:(.+)$"), lambda m: keys.outbox_alert(m[1])),
)
_BATCH = 500  # renames per pipeline on one server


def new_name(old: str) -> str | None:
    """The tagged name of an old-layout key; None for a key that keeps its name."""
    for pattern, rename in RENAMES:
        match = pattern.match(old)
        if match is not None:
            return rename(match)
    return None


@dataclass
class MigrationReport:
    """What a pass did: keys renamed, keys left because the new name exists, keys that vanished meanwhile."""

    moved: int = 0
    conflicts: list[str] = field(default_factory=list)
    gone: int = 0
    skipped: bool = False  # the layout marker said an earlier pass had finished

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.skipped:
            return "key layout already migrated"
        text = f"renamed {self.moved} keys to the hash-tag layout"
        if self.conflicts:
            text += f"; {len(self.conflicts)} left under their old names (the new name exists): " + ", ".join(
                self.conflicts[:5]
            )
        return text


async def migrate_keys(redis: Redis, *, only_once: bool = False) -> MigrationReport:
    """Rename every old-layout key to its tagged name (see the module docstring); safe to run again.

    With `only_once` (the leader's start-up), a Redis whose layout marker is set is not scanned again.
    """
    if only_once and await redis.get(keys.KEY_LAYOUT) == keys.KEY_LAYOUT_VERSION.encode():
        return MigrationReport(skipped=True)
    report = MigrationReport()
    move = _restore if is_cluster(redis) else _rename
    batch: list[tuple[str, str]] = []
    async for raw in redis.scan_iter(match=f"{keys.PREFIX}*", count=1000):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        new = new_name(old)
        if new is not None:
            batch.append((old, new))
        if len(batch) >= _BATCH:
            await move(redis, batch, report)
            batch = []
    if batch:
        await move(redis, batch, report)
    await redis.set(keys.KEY_LAYOUT, keys.KEY_LAYOUT_VERSION)
    for old in report.conflicts:
        log.warning("migrate-keys: %s kept: %s exists already", old, new_name(old))
    return report


async def _rename(redis: Redis, batch: list[tuple[str, str]], report: MigrationReport) -> None:
    """One server: RENAMENX each pair in one pipeline (atomic per key, TTL kept)."""
    async with redis.pipeline(transaction=False) as pipe:
        for old, new in batch:
            pipe.renamenx(old, new)
        results = await pipe.execute(raise_on_error=False)
    for (old, _new), result in zip(batch, results, strict=True):
        if isinstance(result, ResponseError):  # "no such key": it expired between SCAN and RENAMENX
            report.gone += 1
        elif result:
            report.moved += 1
        else:
            report.conflicts.append(old)


async def _restore(redis: Redis, batch: list[tuple[str, str]], report: MigrationReport) -> None:
    """A cluster: old and new names are in different slots, so copy (DUMP/RESTORE, TTL kept), then delete."""
    for old, new in batch:
        payload = await redis.dump(old)
        ttl_ms = await redis.pttl(old)
        if payload is None or ttl_ms == -2:
            report.gone += 1
            continue
        try:
            await redis.restore(new, max(ttl_ms, 0), payload)
        except ResponseError as exc:
            if "BUSYKEY" not in str(exc):
                raise
            # A pass cut short after RESTORE left the same value under both names: finish it; else keep both.
            if await redis.dump(new) != payload:
                report.conflicts.append(old)
                continue
        await redis.delete(old)
        report.moved += 1
