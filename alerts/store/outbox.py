"""The outbox: messages waiting for Telegram, in Redis, claimed atomically and acknowledged per part.

At-least-once with idempotency: an item is put once (SET NX on its id), a worker claims due items by pushing
their due time forward (a lease), records each part as sent right after Telegram accepts it, and removes the
item when every part is sent. A worker that dies mid-item leaves it due again after `CLAIM_SECONDS`; the
restarted worker skips parts already recorded, so the only possible duplicate is a send whose record (one
Redis write) was lost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
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


# Store many items (SET NX with a TTL) and schedule the new ones (ZADD NX), in one call. KEYS: the due ZSET, then the
# item keys; ARGV: the TTL, then one text of "id<TAB>due<TAB>item JSON" lines in KEYS order (JSON text holds no raw
# newline). Returns one "1"/"0" per item (new or not) as one string: a fan-out writes ~100k items, and an argument,
# a command or a reply per item is what took the time. All keys carry the outbox's hash tag in a cluster: one slot.
_PUT_MANY = """
local out = {}
local i = 0
for id, due, body in string.gmatch(ARGV[2], '([^\\t\\n]*)\\t([^\\t\\n]*)\\t([^\\n]*)') do
  i = i + 1
  if redis.call('SET', KEYS[i + 1], body, 'NX', 'EX', ARGV[1]) then
    redis.call('ZADD', KEYS[1], 'NX', due, id)
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
"""
PUT_CHUNK = 5000  # items per script call: a call blocks Redis for a few ms, not for the whole fan-out


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


def alerts_item_json(item: str, chat_id: int, refs_json: str, silent: bool, created_json: str) -> str:
    """`OutboxItem.to_json()` of an alerts item by reference, from parts already encoded (fan-out writes ~100k)."""
    return (
        f'{{"alerts": [], "attempts": 0, "chat_id": {chat_id}, "created_at": {created_json}, "id": "{item}", '
        f'"kind": "alerts", "refs": {refs_json}, "silent": {"true" if silent else "false"}, "text": ""}}'
    )


def item_id(chat_id: int, kind: str, identities: list[str]) -> str:
    """Deterministic id: the same chat, kind and fingerprints always give the same item (idempotent put)."""
    return item_id_of(chat_id, kind, ",".join(sorted(identities)))


def item_id_of(chat_id: int, kind: str, joined: str) -> str:
    """`item_id` from the identities already sorted and joined with commas (fan-out reuses one text per set)."""
    return hashlib.sha256(f"{chat_id}|{kind}|{joined}".encode()).hexdigest()[:24]


class Outbox:
    """Redis-backed outbox."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim = redis.register_script(_CLAIM)
        self._put_many = redis.register_script(_PUT_MANY)

    async def put(self, item: OutboxItem, due: datetime) -> bool:
        """Store an item and schedule it; False when an item with this id exists already.

        A text item's text is redacted here (admin notices quote exception texts): no caller can forget it.
        """
        created = await self.redis.set(
            keys.outbox_item(item.id), _redacted(item).to_json(), nx=True, ex=keys.OUTBOX_ITEM_TTL_SECONDS
        )
        if created:
            await self.redis.zadd(keys.OUTBOX_DUE, {item.id: due.timestamp()}, nx=True)
        return bool(created)

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
                keys=[keys.OUTBOX_DUE, *(keys.outbox_item(row[0]) for row in chunk)],
                args=[
                    keys.OUTBOX_ITEM_TTL_SECONDS,
                    "\n".join(f"{i}\t{due!r}\t{body}" for i, body, due in chunk),
                ],
            )
            created += [flag == ord("1") for flag in (flags.encode() if isinstance(flags, str) else flags)]
        return created

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
        return await self.load([raw.decode() if isinstance(raw, bytes) else raw for raw in ids])

    async def load(self, item_ids: list[str]) -> list[OutboxItem]:
        """The stored items with these ids, alerts filled in from their bodies; expired ones are dropped."""
        if not item_ids:
            return []
        raws = await self.redis.mget([keys.outbox_item(i) for i in item_ids])
        items = [OutboxItem.from_json(raw) for raw in raws if raw is not None]
        refs = sorted({ref for item in items for ref in item.refs})
        bodies = (
            dict(zip(refs, await self.redis.mget([keys.outbox_alert(r) for r in refs]), strict=True))
            if refs
            else {}
        )
        out, gone = [], [i for i, raw in zip(item_ids, raws, strict=True) if raw is None]
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
                await pipe.execute()
        return out

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
        """Remove a fully sent item."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.OUTBOX_DUE, item_id)
            pipe.delete(keys.outbox_item(item_id))
            await pipe.execute()

    async def reschedule(self, item: OutboxItem, due: datetime, *, count_attempt: bool = True) -> OutboxItem:
        """Put an item back for a later try (429, timeout, 5xx)."""
        updated = replace(item, attempts=item.attempts + 1) if count_attempt else item
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.outbox_item(item.id), updated.to_json(), ex=keys.OUTBOX_ITEM_TTL_SECONDS)
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
            await pipe.execute()

    async def move_chat(self, item: OutboxItem, new_chat_id: int) -> OutboxItem:
        """Re-address an item to a migrated chat id (same item id, so parts already sent stay sent)."""
        moved = replace(item, chat_id=new_chat_id)
        await self.redis.set(keys.outbox_item(item.id), moved.to_json(), ex=keys.OUTBOX_ITEM_TTL_SECONDS)
        return moved

    async def pending(self) -> int:
        """Number of items waiting or in flight."""
        return int(await self.redis.zcard(keys.OUTBOX_DUE))

    async def dead(self) -> list[dict[str, Any]]:
        """Dead-lettered items with their reasons."""
        return [json.loads(r) for r in await self.redis.lrange(keys.OUTBOX_DEAD, 0, -1)]
