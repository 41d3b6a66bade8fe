"""Telegram updates through Redis Streams: `web` processes append, `worker` processes consume, chat by chat in order.

* Partitions. An update belongs to a chat (`chat_of_update`); chat id mod K picks one of K streams
  (keys.update_stream). One consumer group (keys.UPDATE_GROUP) reads every stream.
* Appending (`UpdateStream.add`). One script per update, in the partition's slot: SET NX a marker of the update id
  (keys.update_seen, UPDATE_SEEN_TTL_SECONDS) and XADD only when the marker is new, so an update Telegram posts
  again (our 200 was lost) is queued once within that window. The stream is capped (XADD MAXLEN ~).
* Ownership (`UpdateConsumer`). A worker reads a partition only while it holds the partition's lease
  (alerts/store/lease.py, keys.update_lease, a few seconds, renewed every tick). Live workers keep a heartbeat in
  keys.UPDATE_WORKERS; each takes a fair share, ceil(K / live), and a worker over its share stops reading the
  extra partitions, finishes what it read from them, then releases them. The heartbeat is a wall-clock expiry, so
  the workers' clocks must agree within a fraction of the lease (NTP); the leases themselves expire on Redis's clock. One partition has one reader, so one
  chat's updates come out of it in order.
* Take-over. A worker that acquires a partition first claims (XAUTOCLAIM) the entries still pending for other
  consumers (a worker that died before acknowledging them) and handles them in ID order, then reads new entries
  (XREADGROUP ">"). A dead worker's partitions are taken over once its lease and heartbeat expire.
* Losing a lease while alive (a stall or a Redis outage longer than the lease): entries not yet started are
  handled only if still pending for this worker, not claimed by the new owner.
* Acknowledgement. Within a worker, each chat has a lane: its updates run one after another, chats in parallel. An
  entry is acknowledged (XACK) only after its handler returned, a handler error included (the handler reports its
  own errors). Delivery is at least once: a worker that dies after handling an update and before acknowledging it,
  or that stalls longer than its lease, has that update handled again by the next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from alerts.store import keys
from alerts.store.lease import Lease, default_owner

log = logging.getLogger(__name__)

REDIS_DOWN = (RedisError, OSError, TimeoutError)
Handler = Callable[[dict[str, Any]], Awaitable[None]]
_Read = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]]  # XREADGROUP's answer (RESP2)

# Update kinds whose object carries the chat it happened in (PTB's Update.effective_chat reads the same fields).
_CHAT_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "message_reaction",
    "message_reaction_count",
    "chat_boost",
    "removed_chat_boost",
)
# Chat-less kinds and the field naming their sender: a user's id is the id of its private chat with the bot.
_USER_KINDS = (
    ("callback_query", "from"),
    ("inline_query", "from"),
    ("chosen_inline_result", "from"),
    ("shipping_query", "from"),
    ("pre_checkout_query", "from"),
    ("purchased_paid_media", "from"),
    ("poll_answer", "user"),
)

# Queue an update once: the marker and the entry live in the partition's slot, so one script does both.
_ADD = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'u', ARGV[1])
end
return false
"""


def _id_of(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _chat_id(body: object) -> int | None:
    if not isinstance(body, dict):
        return None
    chat = body.get("chat")
    return _id_of(chat.get("id")) if isinstance(chat, dict) else None


def chat_of_update(update: Mapping[str, Any]) -> int | None:
    """The chat an update (Telegram's JSON) belongs to, its sender's for chat-less kinds; None when neither."""
    for kind in _CHAT_KINDS:
        if (chat := _chat_id(update.get(kind))) is not None:
            return chat
    query = update.get("callback_query")
    if isinstance(query, dict) and (chat := _chat_id(query.get("message"))) is not None:
        return chat  # a button under a message: that message's chat
    for kind, sender in _USER_KINDS:
        body = update.get(kind)
        person = body.get(sender) if isinstance(body, dict) else None
        if isinstance(person, dict) and (user := _id_of(person.get("id"))) is not None:
            return user
    return None


def partition_of(chat: int | None, partitions: int) -> int:
    """The partition of a chat: chat id mod K (non-negative for negative group ids too); 0 for no chat."""
    return 0 if chat is None else chat % partitions


class PartitionMismatch(Exception):
    """UPDATE_PARTITIONS differs from the K the update stream was laid out with."""

    def __init__(self, stored: int, configured: int) -> None:
        super().__init__(
            f"configuration error: UPDATE_PARTITIONS: is {configured} but the update stream in Redis has {stored} "
            f"partitions; to change it, stop every web and worker, let the streams empty, then delete "
            f"{keys.UPDATE_LAYOUT}"
        )
        self.stored, self.configured = stored, configured


class UpdateStream:
    """The K partition streams: append an update (deduplicated by update_id), create the consumer group."""

    def __init__(
        self,
        redis: Redis,
        partitions: int = keys.UPDATE_PARTITIONS,
        *,
        maxlen: int = keys.UPDATE_STREAM_MAXLEN,
        seen_seconds: int = keys.UPDATE_SEEN_TTL_SECONDS,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be positive, got {partitions}")
        self.redis = redis
        self.partitions = partitions
        self.maxlen = maxlen
        self.seen_seconds = seen_seconds
        self._add = redis.register_script(_ADD)

    def partition(self, update: Mapping[str, Any]) -> int:
        """The partition `update` goes to."""
        return partition_of(chat_of_update(update), self.partitions)

    async def add(self, update: Mapping[str, Any], raw: bytes | None = None) -> str | None:
        """Append `update` (its JSON `raw` as received, else serialised) to its partition; the entry id, or None
        when an update with this update_id was queued within the dedupe window."""
        update_id = _id_of(update.get("update_id"))
        if update_id is None:
            raise ValueError("an update needs an integer update_id")
        part = self.partition(update)
        body = raw if raw is not None else json.dumps(update, separators=(",", ":")).encode()
        entry = await self._add(
            keys=[keys.update_stream(part), keys.update_seen(part, update_id)],
            args=[body, self.seen_seconds, self.maxlen],
        )
        return _text(entry) if entry else None

    async def check_layout(self) -> None:
        """Record K on first use; raise PartitionMismatch when Redis has another K (see keys.UPDATE_LAYOUT)."""
        await self.redis.set(keys.UPDATE_LAYOUT, self.partitions, nx=True)
        stored = int(await self.redis.get(keys.UPDATE_LAYOUT) or self.partitions)
        if stored != self.partitions:
            raise PartitionMismatch(stored, self.partitions)

    async def ensure_groups(self) -> None:
        """Create the consumer group of every partition (and the stream itself) unless it exists."""
        for part in range(self.partitions):
            try:
                await self.redis.xgroup_create(
                    keys.update_stream(part), keys.UPDATE_GROUP, id="0", mkstream=True
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def pending(self) -> int:
        """Entries delivered to a worker and not yet acknowledged, over all partitions."""
        total = 0
        for part in range(self.partitions):
            with contextlib.suppress(ResponseError):  # no group yet: nothing pending
                info = await self.redis.xpending(keys.update_stream(part), keys.UPDATE_GROUP)
                total += int(info["pending"])
        return total


async def live_workers(redis: Redis) -> int:
    """Workers whose heartbeat has not expired (`positioning-bot status`)."""
    return int(await redis.zcount(keys.UPDATE_WORKERS, int(time.time() * 1000), "+inf"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(eq=False)
class _Partition:
    """A partition this worker holds: its lease, its reader task and what it read and has not finished."""

    number: int
    lease: Lease
    reader: asyncio.Task[None] | None = None
    draining: bool = False  # over our share: read no more, release once in-flight entries are done
    lost: bool = False  # the lease is gone: entries not started are handled only if still pending for us
    inflight: int = 0
    unacked: list[str] = field(default_factory=list)  # handled, but XACK failed: retried every tick


@dataclass(eq=False)
class _Entry:
    part: _Partition
    entry_id: str
    update: dict[str, Any]


class UpdateConsumer:
    """One worker's reading of the partitions (see the module docstring): `run(stop)` until stop, then drain."""

    def __init__(
        self,
        stream: UpdateStream,
        handle: Handler,
        *,
        owner: str | None = None,
        lease_seconds: float = keys.UPDATE_LEASE_TTL_SECONDS,
        tick_seconds: float | None = None,
        batch: int = 64,
        max_inflight: int = 256,
        block_ms: int = 500,
        grace_seconds: float = 30.0,
    ) -> None:
        self.stream = stream
        self.redis = stream.redis
        self.handle = handle
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.tick_seconds = tick_seconds if tick_seconds is not None else lease_seconds / 3
        self.batch = batch
        self.max_inflight = max_inflight
        self.block_ms = block_ms
        self.grace_seconds = grace_seconds
        self.handled = 0  # entries handled and acknowledged by this worker
        self.claimed = 0  # entries taken over from other consumers
        self._parts: dict[int, _Partition] = {}
        self._lanes: dict[object, deque[_Entry]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0
        self._room = asyncio.Event()
        self._stopping = False
        self._first = zlib.crc32(self.owner.encode()) % stream.partitions  # where this worker starts looking

    @property
    def owned(self) -> list[int]:
        """Partitions held now (draining ones included), in order."""
        return sorted(self._parts)

    async def run(self, stop: asyncio.Event) -> None:
        """Hold a fair share of partitions and handle their updates until `stop`; then finish in-flight updates,
        acknowledge them and release the partitions. Cancelled instead, it abandons everything as a crash would."""
        groups = False
        try:
            while not stop.is_set():
                try:
                    if not groups:  # at the first tick Redis answers
                        await self.stream.check_layout()
                        await self.stream.ensure_groups()
                        groups = True
                    await self._tick()
                except REDIS_DOWN as exc:
                    log.warning("update worker: Redis error (%s: %s); retrying", type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.tick_seconds)
        except asyncio.CancelledError:
            self.abandon()
            raise
        await self._shutdown()

    # ---- ownership ------------------------------------------------------------------------------------------

    async def _tick(self) -> None:
        live = await self._heartbeat()
        await self._renew()
        await self._retry_acks()
        share = math.ceil(self.stream.partitions / max(live, 1))
        active = [p for p in self._parts.values() if not (p.draining or p.lost)]
        for part in sorted(active, key=lambda p: p.number, reverse=True)[: max(len(active) - share, 0)]:
            log.info("update worker: partition %d over our share of %d, handing it over", part.number, share)
            part.draining = True
        await self._release_finished()
        await self._acquire(share - len(active))

    async def _heartbeat(self) -> int:
        """Mark this worker alive for a lease period; the number of live workers (itself included)."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.UPDATE_WORKERS, {self.owner: now_ms + int(self.lease_seconds * 1000)})
            pipe.zremrangebyscore(keys.UPDATE_WORKERS, "-inf", now_ms)
            pipe.zcard(keys.UPDATE_WORKERS)
            _, _, live = await pipe.execute()
        return int(live)

    async def _renew(self) -> None:
        for part in list(self._parts.values()):
            if part.lost:
                continue
            try:
                renewed = await part.lease.renew()
            except REDIS_DOWN:
                renewed = part.lease.valid_for > 0  # still ours by our own clock; retried next tick
            if not renewed:
                log.error("update worker: lease of partition %d lost", part.number)
                part.lost = True

    async def _release_finished(self) -> None:
        for part in list(self._parts.values()):
            if not (part.draining or part.lost) or part.inflight or part.unacked:
                continue
            if part.reader is not None and not part.reader.done():
                continue
            del self._parts[part.number]
            if not part.lost:
                await part.lease.release_quietly()

    async def _acquire(self, wanted: int) -> None:
        count = self.stream.partitions
        for step in range(count):
            if wanted <= 0 or self._stopping:
                return
            number = (self._first + step) % count
            if number in self._parts:
                continue
            lease = Lease(
                self.redis, ttl_seconds=self.lease_seconds, owner=self.owner, key=keys.update_lease(number)
            )
            if await lease.acquire():
                part = _Partition(number, lease)
                self._parts[number] = part
                part.reader = asyncio.create_task(self._read(part), name=f"updates-{number}")
                wanted -= 1

    # ---- reading ----------------------------------------------------------------------------------------------

    async def _read(self, part: _Partition) -> None:
        """Take over what other consumers left pending, then read new entries, while the partition is ours."""
        stream = keys.update_stream(part.number)
        try:
            await self._take_over(part, stream)
            while not (part.draining or part.lost or self._stopping):
                if self._inflight >= self.max_inflight:
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), timeout=self.block_ms / 1000)
                    continue
                answer = await self.redis.xreadgroup(
                    keys.UPDATE_GROUP, self.owner, {stream: ">"}, count=self.batch, block=self.block_ms
                )
                for _name, entries in cast("_Read", answer or []):
                    for entry_id, fields in entries:
                        await self._admit(part, entry_id, fields)
        except REDIS_DOWN as exc:
            # The partition is handed back (its entries stay pending) and taken again, with a take-over, next tick.
            log.warning(
                "update worker: reading partition %d failed (%s: %s)", part.number, type(exc).__name__, exc
            )
            part.draining = True

    async def _take_over(self, part: _Partition, stream: str) -> None:
        start = "0-0"
        while True:
            answer = await self.redis.xautoclaim(
                stream, keys.UPDATE_GROUP, self.owner, min_idle_time=0, start_id=start, count=self.batch
            )
            cursor, entries = answer[0], answer[1]
            for entry_id, fields in entries:
                self.claimed += 1
                await self._admit(part, entry_id, fields)
            if _text(cursor) == "0-0":
                break
            start = _text(cursor)
        await self._forget_idle_consumers(stream)

    async def _forget_idle_consumers(self, stream: str) -> None:
        """Delete other consumers with nothing pending (workers that ended): the group's list stays short."""
        with contextlib.suppress(ResponseError):
            for consumer in await self.redis.xinfo_consumers(stream, keys.UPDATE_GROUP):
                name = _text(consumer["name"])
                if name != self.owner and int(consumer["pending"]) == 0:
                    await self.redis.xgroup_delconsumer(stream, keys.UPDATE_GROUP, name)

    async def _admit(
        self, part: _Partition, entry_id: bytes | str, fields: Mapping[bytes, bytes] | None
    ) -> None:
        """Queue one entry in its chat's lane (starting the lane if idle)."""
        ident = _text(entry_id)
        raw = (fields or {}).get(b"u")
        try:
            update = json.loads(raw) if raw is not None else None
        except ValueError:
            update = None
        if not isinstance(update, dict):
            log.error("update worker: entry %s of partition %d is not an update; dropped", ident, part.number)
            part.unacked.append(ident)  # acknowledged with the next retry: nothing to handle
            return
        chat = chat_of_update(update)
        entry = _Entry(part, ident, update)
        part.inflight += 1
        self._inflight += 1
        lane_key: object = chat if chat is not None else ("entry", ident)
        lane = self._lanes.get(lane_key)
        if lane is not None:
            lane.append(entry)
            return
        self._lanes[lane_key] = deque([entry])
        task = asyncio.create_task(self._run_lane(lane_key))
        self._lane_tasks.add(task)
        task.add_done_callback(self._lane_tasks.discard)

    async def _run_lane(self, lane_key: object) -> None:
        lane = self._lanes[lane_key]
        try:
            while lane:
                entry = lane[0]
                try:
                    if not entry.part.lost or await self._still_mine(entry):
                        await self._handle(entry)
                finally:
                    lane.popleft()
                    entry.part.inflight -= 1
                    self._inflight -= 1
                    self._room.set()
        finally:
            del self._lanes[lane_key]

    async def _still_mine(self, entry: _Entry) -> bool:
        """After losing a partition: whether an entry read from it is still pending for us (the next owner claimed
        only what was pending when it took over; an entry delivered to us later is ours to handle, or nobody's)."""
        try:
            rows = await self.redis.xpending_range(
                keys.update_stream(entry.part.number), keys.UPDATE_GROUP, entry.entry_id, entry.entry_id, 1
            )
        except REDIS_DOWN:
            return False  # left pending: the next take-over handles it
        return bool(rows) and _text(cast("bytes", rows[0]["consumer"])) == self.owner

    async def _handle(self, entry: _Entry) -> None:
        try:
            await self.handle(entry.update)
        except Exception:  # the handler reports its own errors; an update that fails is not retried forever
            log.exception("update worker: handling entry %s failed", entry.entry_id)
        try:
            await self.redis.xack(keys.update_stream(entry.part.number), keys.UPDATE_GROUP, entry.entry_id)
        except REDIS_DOWN:
            entry.part.unacked.append(entry.entry_id)
        self.handled += 1

    async def _retry_acks(self) -> None:
        for part in self._parts.values():
            if part.unacked:
                ids, part.unacked = part.unacked, []
                try:
                    await self.redis.xack(keys.update_stream(part.number), keys.UPDATE_GROUP, *ids)
                except REDIS_DOWN:
                    part.unacked = ids + part.unacked

    # ---- stopping ---------------------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Stop reading, finish and acknowledge what was read, release the partitions and the heartbeat."""
        self._stopping = True
        readers = [p.reader for p in self._parts.values() if p.reader is not None]
        await asyncio.gather(*readers, return_exceptions=True)
        if self._lane_tasks:
            _, late = await asyncio.wait(set(self._lane_tasks), timeout=self.grace_seconds)
            for task in late:  # their entries stay pending: the next owner handles them
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):
            await self._retry_acks()
        for part in list(self._parts.values()):
            if not part.lost:
                await part.lease.release_quietly()
        self._parts.clear()
        with contextlib.suppress(*REDIS_DOWN):
            await self.redis.zrem(keys.UPDATE_WORKERS, self.owner)

    def abandon(self) -> None:
        """Drop everything without a word, as a crashed worker would (tests): leases and entries are left to expire."""
        for part in self._parts.values():
            if part.reader is not None:
                part.reader.cancel()
        for task in self._lane_tasks:
            task.cancel()
        self._parts.clear()
