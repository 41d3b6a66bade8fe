"""The outbox: messages waiting for Telegram, in Redis, claimed atomically and acknowledged per part.

At-least-once with idempotency: an item is put once (an id already queued with its payload is not stored again), a
worker claims due items by pushing their due time forward (a lease), records each part as sent right after Telegram
accepts it, and removes the item when every part is sent. A worker that dies mid-item leaves it due again after
`CLAIM_SECONDS`; the restarted worker skips parts already recorded, so the only possible duplicate is a send whose
record (one Redis write) was lost.

Two layouts of an item's payload, both read by `load`:
- its own key (`keys.outbox_item`, JSON, with a TTL): texts, digests, and any item once it was rescheduled or moved
  (it then leaves the compact layout), as well as every item written before the compact layout existed;
- compact (`put_alerts`): a fan-out pass's alert items are fields of one hash (`keys.OUTBOX_ITEMS`, item id ->
  "batch chat silent indices") referring to one record of the pass (`keys.outbox_batch`: its fingerprints, kind and
  creation time). 100k recipients are then a few native commands, not 100k keys with an expiry each; the record's
  TTL is the items' lifetime (an item whose record expired is dropped when claimed, like an expired item key).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from itertools import islice
from typing import Any

from redis.asyncio import Redis

from alerts.store import keys
from config.settings import redact

# Atomically take up to ARGV[3] items due at ARGV[1] and lease them until ARGV[2].
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""

# Read items in both layouts at once (atomic: a reschedule moving an item from the hash to its own key is never seen
# half-done). KEYS: the compact hash, then the item keys; ARGV: the item ids. Returns {item JSONs, compact entries}.
_LOAD = """
local raws = redis.call('MGET', unpack(KEYS, 2, #ARGV + 1))
local entries = redis.call('HMGET', KEYS[1], unpack(ARGV))
return {raws, entries}
"""
LOAD_CHUNK = 1000  # ids per read: Lua's unpack takes a few thousand values at most

# Whether a queued item still has its payload: its own key (`key`), or a compact entry whose batch record lives.
# KEYS[2] is the compact items' hash; ARGV[2] the batch record's key prefix (the same hash tag: the same slot).
_PRESENT = """
local function present(key, id)
  if redis.call('EXISTS', key) == 1 then return true end
  local entry = redis.call('HGET', KEYS[2], id)
  return entry and redis.call('EXISTS', ARGV[2] .. string.match(entry, '^(%S+)')) == 1
end
"""

# Store many items under their own keys (SET with a TTL) and schedule the new ones (ZADD NX), in one call. KEYS: the
# due ZSET, the compact hash, then the item keys; ARGV: the TTL, the batch prefix, then one text of
# "id<TAB>due<TAB>item JSON" lines in KEYS order (JSON text holds no raw newline). An item already queued with its
# payload (in either layout) is left alone. Returns one "1"/"0" per item (new or not) as one string: an argument, a
# command or a reply per item is what takes the time in bulk. All keys carry the outbox's hash tag: one slot.
_PUT_MANY = (
    _PRESENT
    + """
local out = {}
local i = 0
for id, due, body in string.gmatch(ARGV[3], '([^\\t\\n]*)\\t([^\\t\\n]*)\\t([^\\n]*)') do
  i = i + 1
  if redis.call('ZSCORE', KEYS[1], id) and present(KEYS[i + 2], id) then
    out[i] = '0'
  else
    redis.call('SET', KEYS[i + 2], body, 'EX', ARGV[1])
    redis.call('ZADD', KEYS[1], 'NX', due, id)
    out[i] = '1'
  end
end
return table.concat(out)
"""
)

# Store a pass's alert items compactly: KEYS the due ZSET and the compact hash; ARGV the item key prefix, the batch
# prefix, then "id<TAB>due<TAB>entry" lines (distinct ids). Which ids are queued is asked with one ZMSCORE per slice,
# and the new ones are written with one HSET and one ZADD NX per slice: native commands over many members, not calls
# per item (the per-item checks run only for ids already queued: a re-run). Returns "1"/"0" per line, as _PUT_MANY.
_PUT_COMPACT = (
    _PRESENT
    + """
local ids, dues, entries = {}, {}, {}
local n = 0
for id, due, entry in string.gmatch(ARGV[3], '([^\\t\\n]*)\\t([^\\t\\n]*)\\t([^\\n]*)') do
  n = n + 1
  ids[n], dues[n], entries[n] = id, due, entry
end
local out, scored, fields = {}, {}, {}
local m = 0
for first = 1, n, 1000 do
  local last = math.min(n, first + 999)
  local queued = redis.call('ZMSCORE', KEYS[1], unpack(ids, first, last))
  for j = first, last do
    local id = ids[j]
    if queued[j - first + 1] and present(ARGV[1] .. id, id) then
      out[j] = '0'
    else
      out[j] = '1'
      m = m + 2
      scored[m - 1], scored[m] = dues[j], id
      fields[m - 1], fields[m] = id, entries[j]
    end
  end
end
for first = 1, m, 2000 do
  local last = math.min(m, first + 1999)
  redis.call('HSET', KEYS[2], unpack(fields, first, last))
  redis.call('ZADD', KEYS[1], 'NX', unpack(scored, first, last))
end
return table.concat(out)
"""
)
PUT_CHUNK = 5000  # items per script call: a call blocks Redis for a few ms, not for the whole fan-out
# put_alerts' calls outstanding at once: Redis stores one chunk while the caller's generator computes the next.
IN_FLIGHT = 2
# A row of put_alerts: item id, due epoch seconds, chat id, silent, alert indices (comma-separated).
AlertRow = tuple[str, float, int, bool, str]


@dataclass(frozen=True)
class OutboxItem:
    """One message (or group of messages) for one chat."""

    id: str
    chat_id: int
    kind: str  # alerts | digest | text
    alerts: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    silent: bool = False
    attempts: int = 0
    created_at: str = ""
    # Fingerprints of the alerts, whose bodies are stored once under keys.outbox_alert; loading fills `alerts`.
    refs: list[str] = field(default_factory=list)

    def to_json(self, *, with_alerts: bool = False) -> str:
        """Serialized form stored in Redis: alerts by reference when the item has refs (unless `with_alerts`)."""
        # Field by field rather than asdict(): asdict deep-copies every alert dict, and fan-out writes thousands.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.refs and not with_alerts:
            data["alerts"] = []
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> OutboxItem:
        """Inverse of to_json."""
        return cls(**json.loads(raw))


def _redacted(item: OutboxItem) -> OutboxItem:
    """The item with bot tokens redacted from its text (alert items carry none: their text is empty)."""
    text = redact(item.text) if item.text else item.text
    return item if text == item.text else replace(item, text=text)


def item_id(chat_id: int, kind: str, identities: list[str]) -> str:
    """Deterministic id: the same chat, kind and fingerprints always give the same item (idempotent put)."""
    return item_id_of(chat_id, kind, ",".join(sorted(identities)))


def item_id_of(chat_id: int, kind: str, joined: str) -> str:
    """`item_id` from the identities already sorted and joined with commas (fan-out reuses one text per set)."""
    return hashlib.sha256(f"{chat_id}|{kind}|{joined}".encode()).hexdigest()[:24]


def _batch_record(refs: list[str], created_at: str, kind: str) -> tuple[str, str]:
    """(batch id, record JSON) of one pass: the id is a digest of the record, so equal records share one key."""
    record = json.dumps({"created_at": created_at, "kind": kind, "refs": refs}, ensure_ascii=False)
    return hashlib.sha256(record.encode()).hexdigest()[:16], record


def _from_compact(item: str, entry: str, records: dict[str, dict[str, Any] | None]) -> OutboxItem | None:
    """The item of a compact entry, or None when its batch record expired (the payload is gone)."""
    batch, chat, silent, indices = entry.split(" ")
    record = records.get(batch)
    if record is None:
        return None
    refs: list[str] = record["refs"]
    return OutboxItem(
        id=item,
        chat_id=int(chat),
        kind=record["kind"],
        silent=silent == "1",
        created_at=record["created_at"],
        refs=[refs[int(i)] for i in indices.split(",")],
    )


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class Outbox:
    """Redis-backed outbox."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._put_many = redis.register_script(_PUT_MANY)
        self._put_compact = redis.register_script(_PUT_COMPACT)
        self._load = redis.register_script(_LOAD)

    async def put(self, item: OutboxItem, due: datetime) -> bool:
        """Store an item and schedule it; False when an item with this id is queued already.

        A text item's text is redacted here (admin notices quote exception texts): no caller can forget it.
        """
        return (await self.put_many([(item, due)]))[0]

    async def put_many(self, items: list[tuple[OutboxItem, datetime]]) -> list[bool]:
        """`put` for many (item, due) pairs, a script call per PUT_CHUNK; True for each item that was new."""
        return await self.put_encoded(
            [(item.id, _redacted(item).to_json(), when.timestamp()) for item, when in items]
        )

    async def put_encoded(self, rows: list[tuple[str, str, float]]) -> list[bool]:
        """`put_many` of (item id, item JSON, due epoch seconds) rows already encoded; True for each new item."""
        created: list[bool] = []
        for start in range(0, len(rows), PUT_CHUNK):
            chunk = rows[start : start + PUT_CHUNK]
            flags = await self._put_many(
                keys=[keys.OUTBOX_DUE, keys.OUTBOX_ITEMS, *(keys.outbox_item(row[0]) for row in chunk)],
                args=[
                    keys.OUTBOX_ITEM_TTL_SECONDS,
                    keys.outbox_batch(""),
                    "\n".join(f"{i}\t{due!r}\t{body}" for i, body, due in chunk),
                ],
            )
            created += _flags(flags)
        return created

    async def put_alerts(
        self, refs: list[str], created_at: str, rows: Iterable[AlertRow], kind: str = "alerts"
    ) -> list[bool]:
        """Store one pass's alert items compactly; True for each new item (an id repeated in `rows`: once).

        `refs` are the pass's alert fingerprints; `rows` are (item id, due epoch seconds, chat id, silent, indices),
        the indices into `refs`, comma-separated, in the item's order. The pass's record (fingerprints, kind,
        `created_at`) is written first, with the items' TTL, so an entry never refers to a missing record. `rows`
        may be a generator: chunks go to Redis as they are drawn, so Redis stores one while the next is computed.
        """
        it = iter(rows)
        chunk = list(islice(it, PUT_CHUNK))
        if not chunk:
            return []
        batch, record = _batch_record(refs, created_at, kind)
        await self.redis.set(keys.outbox_batch(batch), record, ex=keys.OUTBOX_ITEM_TTL_SECONDS)
        seen: set[str] = set()
        calls: list[asyncio.Future[list[bool]]] = []
        try:
            return await self._put_chunks(batch, chunk, it, seen, calls)
        finally:  # on an error, no call is left running unwatched
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)

    async def _put_chunks(
        self,
        batch: str,
        chunk: list[AlertRow],
        it: Iterator[AlertRow],
        seen: set[str],
        calls: list[asyncio.Future[list[bool]]],
    ) -> list[bool]:
        """put_alerts' loop: encode a chunk, send it, draw the next while at most IN_FLIGHT calls are outstanding."""
        while chunk:
            fresh, lines = [], []
            for n, (item, due, chat, silent, indices) in enumerate(chunk):
                if item not in seen:
                    seen.add(item)
                    fresh.append(n)
                    # The entry: "<batch> <chat> <silent 0|1> <indices>" (see keys.OUTBOX_ITEMS, _from_compact).
                    lines.append(f"{item}\t{due!r}\t{batch} {chat} {1 if silent else 0} {indices}")
            calls.append(asyncio.ensure_future(self._put_chunk("\n".join(lines), fresh, len(chunk))))
            await asyncio.sleep(0)  # the call goes out before the next chunk is drawn
            if len(calls) >= IN_FLIGHT:
                await calls[-IN_FLIGHT]
            chunk = list(islice(it, PUT_CHUNK))
        return [flag for flags in await asyncio.gather(*calls) for flag in flags]

    async def _put_chunk(self, lines: str, fresh: list[int], size: int) -> list[bool]:
        """One _PUT_COMPACT call for the `fresh` positions of a chunk of `size` rows (the others are repeats)."""
        flags = [False] * size
        if fresh:
            reply = await self._put_compact(
                keys=[keys.OUTBOX_DUE, keys.OUTBOX_ITEMS],
                args=[keys.outbox_item(""), keys.outbox_batch(""), lines],
            )
            for position, flag in zip(fresh, _flags(reply), strict=True):
                flags[position] = flag
        return flags

    async def store_alerts(self, bodies: dict[str, str]) -> None:
        """Store alert JSON by fingerprint for items to refer to (the first body stays; its TTL is renewed)."""
        if not bodies:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for fingerprint, body in bodies.items():
                pipe.set(keys.outbox_alert(fingerprint), body, nx=True, ex=keys.OUTBOX_ALERT_TTL_SECONDS)
                pipe.expire(keys.outbox_alert(fingerprint), keys.OUTBOX_ALERT_TTL_SECONDS)
            await pipe.execute()

    async def claim(self, now: datetime, limit: int = 50) -> list[OutboxItem]:
        """Lease up to `limit` due items for `CLAIM_SECONDS`; items whose payload expired are dropped."""
        ids = await self._claim(
            keys=[keys.OUTBOX_DUE], args=[now.timestamp(), now.timestamp() + keys.CLAIM_SECONDS, limit]
        )
        return await self.load([_text(raw) for raw in ids])

    async def load(self, item_ids: list[str]) -> list[OutboxItem]:
        """The stored items with these ids (either layout), alerts filled in from bodies; expired ones dropped."""
        if not item_ids:
            return []
        raws, entries = [], []
        for start in range(0, len(item_ids), LOAD_CHUNK):
            chunk = item_ids[start : start + LOAD_CHUNK]
            got, compact_got = await self._load(
                keys=[keys.OUTBOX_ITEMS, *(keys.outbox_item(i) for i in chunk)], args=chunk
            )
            raws += got
            entries += compact_got
        compact = {
            i: _text(e) for i, raw, e in zip(item_ids, raws, entries, strict=True) if raw is None and e
        }
        records = await self._records({entry.split(" ", 1)[0] for entry in compact.values()})
        items, gone = [], []
        for item_key, raw in zip(item_ids, raws, strict=True):
            entry = compact.get(item_key)
            if raw is not None:  # its own key first: a rescheduled or moved item left the compact layout
                item: OutboxItem | None = OutboxItem.from_json(raw)
            else:
                item = None if entry is None else _from_compact(item_key, entry, records)
            if item is None:  # no payload in either layout (expired, or its batch record did)
                gone.append(item_key)
            else:
                items.append(item)
        refs = sorted({ref for item in items for ref in item.refs})
        bodies = (
            dict(zip(refs, await self.redis.mget([keys.outbox_alert(r) for r in refs]), strict=True))
            if refs
            else {}
        )
        out = []
        for item in items:
            if item.refs:
                alerts = [json.loads(body) for ref in item.refs if (body := bodies[ref]) is not None]
                if (
                    not alerts
                ):  # every body expired: nothing left to say (bodies outlive items, so only by hand)
                    gone.append(item.id)
                    continue
                item = replace(item, alerts=alerts)
            out.append(item)
        if gone:
            async with self.redis.pipeline(transaction=False) as pipe:
                for item_key in gone:
                    pipe.zrem(keys.OUTBOX_DUE, item_key)
                    pipe.delete(keys.outbox_item(item_key))
                pipe.hdel(keys.OUTBOX_ITEMS, *gone)
                await pipe.execute()
        return out

    async def _records(self, batches: set[str]) -> dict[str, dict[str, Any] | None]:
        """The batch records of these ids (None for an expired one)."""
        if not batches:
            return {}
        names = sorted(batches)
        raws = await self.redis.mget([keys.outbox_batch(b) for b in names])
        return {b: None if raw is None else json.loads(raw) for b, raw in zip(names, raws, strict=True)}

    async def release(self, item_ids: list[str], now: datetime) -> None:
        """Hand claimed items back, due at `now`, when a stopping worker will not send them."""
        if item_ids:
            await self.redis.zadd(keys.OUTBOX_DUE, {i: now.timestamp() for i in item_ids}, xx=True)

    async def is_part_sent(self, item_id: str, part: int) -> bool:
        """True when Telegram already accepted this part."""
        return bool(await self.redis.exists(keys.sent_part(item_id, part)))

    async def mark_part_sent(self, item_id: str, part: int) -> None:
        """Record an accepted part: the one write between Telegram's answer and safety from duplicates."""
        await self.redis.set(keys.sent_part(item_id, part), "1", ex=keys.SENT_TTL_SECONDS)

    async def done(self, item_id: str) -> None:
        """Remove a fully sent item (whichever layout holds it)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.OUTBOX_DUE, item_id)
            pipe.delete(keys.outbox_item(item_id))
            pipe.hdel(keys.OUTBOX_ITEMS, item_id)
            await pipe.execute()

    async def reschedule(self, item: OutboxItem, due: datetime, *, count_attempt: bool = True) -> OutboxItem:
        """Put an item back for a later try (429, timeout, 5xx); a compact item moves to its own key."""
        updated = replace(item, attempts=item.attempts + 1) if count_attempt else item
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.outbox_item(item.id), updated.to_json(), ex=keys.OUTBOX_ITEM_TTL_SECONDS)
            pipe.hdel(keys.OUTBOX_ITEMS, item.id)
            pipe.zadd(keys.OUTBOX_DUE, {item.id: due.timestamp()})
            await pipe.execute()
        return updated

    async def dead_letter(self, item: OutboxItem, reason: str, now: datetime) -> None:
        """Give up on an item: keep it in the dead-letter list with the reason (redacted: it quotes an error)."""
        record = json.dumps(
            {"item": json.loads(item.to_json(with_alerts=True)), "reason": reason, "at": now.isoformat()},
            ensure_ascii=False,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.OUTBOX_DEAD, redact(record))  # JSON stays valid: `<token>` needs no escaping
            pipe.zrem(keys.OUTBOX_DUE, item.id)
            pipe.delete(keys.outbox_item(item.id))
            pipe.hdel(keys.OUTBOX_ITEMS, item.id)
            await pipe.execute()

    async def move_chat(self, item: OutboxItem, new_chat_id: int) -> OutboxItem:
        """Re-address an item to a migrated chat id (same item id, so parts already sent stay sent)."""
        moved = replace(item, chat_id=new_chat_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.outbox_item(item.id), moved.to_json(), ex=keys.OUTBOX_ITEM_TTL_SECONDS)
            pipe.hdel(keys.OUTBOX_ITEMS, item.id)
            await pipe.execute()
        return moved

    async def pending(self) -> int:
        """Number of items waiting or in flight."""
        return int(await self.redis.zcard(keys.OUTBOX_DUE))

    async def dead(self) -> list[dict[str, Any]]:
        """Dead-lettered items with their reasons."""
        return [json.loads(r) for r in await self.redis.lrange(keys.OUTBOX_DEAD, 0, -1)]


def _flags(reply: bytes | str) -> list[bool]:
    """The "1"/"0" string of a put script as booleans."""
    return [flag == ord("1") for flag in (reply.encode() if isinstance(reply, str) else reply)]
