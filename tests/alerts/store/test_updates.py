"""The update stream: chat of an update, partitions, dedupe, fair shares, take-over of a dead worker's updates."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pytest
from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.updates import (
    PartitionMismatch,
    UpdateConsumer,
    UpdateStream,
    chat_of_update,
    live_workers,
    partition_of,
)

USER = {"id": 7001, "is_bot": False, "first_name": "A"}


@pytest.mark.parametrize(
    ("update", "chat"),
    [
        ({"update_id": 1, "message": {"chat": {"id": 42}, "from": USER}}, 42),
        ({"update_id": 1, "edited_message": {"chat": {"id": -1001}, "from": USER}}, -1001),
        ({"update_id": 1, "channel_post": {"chat": {"id": -1002}}}, -1002),
        ({"update_id": 1, "callback_query": {"id": "q", "from": USER, "message": {"chat": {"id": -5}}}}, -5),
        ({"update_id": 1, "callback_query": {"id": "q", "from": USER, "inline_message_id": "x"}}, 7001),
        ({"update_id": 1, "inline_query": {"id": "q", "from": USER, "query": "700"}}, 7001),
        ({"update_id": 1, "poll_answer": {"poll_id": "p", "user": USER, "option_ids": []}}, 7001),
        ({"update_id": 1, "poll": {"id": "p"}}, None),
        ({"update_id": 1, "message": {"chat": {"id": "42"}}}, None),  # not an id: no chat rather than a guess
        ({"update_id": 1, "message": {"chat": {"id": True}}}, None),
    ],
)
def test_chat_of_update(update: dict[str, Any], chat: int | None) -> None:
    assert chat_of_update(update) == chat


def test_partition_of_is_chat_mod_k() -> None:
    assert [partition_of(c, 16) for c in (0, 17, -1, -1001234567890)] == [0, 1, 15, -1001234567890 % 16]
    assert partition_of(None, 16) == 0


def _update(update_id: int, chat: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "chat": {"id": chat}, "text": "/help"},
    }


async def test_add_queues_once_per_update_id_in_the_chats_partition(redis: Redis) -> None:
    stream = UpdateStream(redis, partitions=4)
    first = await stream.add(_update(10, 6))
    again = await stream.add(_update(10, 6))  # Telegram re-posting after a lost 200
    assert first is not None and again is None
    assert await redis.xlen(keys.update_stream(2)) == 1
    assert [await redis.xlen(keys.update_stream(p)) for p in (0, 1, 3)] == [0, 0, 0]
    assert 0 < await redis.ttl(keys.update_seen(2, 10)) <= keys.UPDATE_SEEN_TTL_SECONDS
    with pytest.raises(ValueError, match="update_id"):
        await stream.add({"message": {}})


class Recorder:
    """Handlers that record who handled which update, optionally holding one chat until released."""

    def __init__(self) -> None:
        self.seen: dict[int, list[int]] = defaultdict(list)  # chat -> update ids in handling order
        self.by: dict[int, list[str]] = defaultdict(list)  # update id -> workers that handled it
        self.hold: set[int] = set()
        self.release = asyncio.Event()

    def handler(self, name: str) -> Any:
        async def handle(update: dict[str, Any]) -> None:
            chat = update["message"]["chat"]["id"]
            if chat in self.hold and name == "a":
                await self.release.wait()  # never set: "a" dies holding these
            await asyncio.sleep(0.001 * (update["update_id"] % 3))  # chats interleave
            self.seen[chat].append(update["update_id"])
            self.by[update["update_id"]].append(name)

        return handle


def _consumer(stream: UpdateStream, recorder: Recorder, name: str) -> UpdateConsumer:
    return UpdateConsumer(
        stream, recorder.handler(name), owner=name, lease_seconds=1.0, tick_seconds=0.2, block_ms=100
    )


async def _until(predicate: Any, timeout: float = 8.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_two_workers_share_partitions_and_handle_each_update_once_in_chat_order(redis: Redis) -> None:
    stream = UpdateStream(redis, partitions=4)
    recorder = Recorder()
    a, b = _consumer(stream, recorder, "a"), _consumer(stream, recorder, "b")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(a.run(stop))]
    await _until(lambda: len(a.owned) == 4)  # alone: every partition
    tasks.append(asyncio.create_task(b.run(stop)))
    await _until(lambda: len(a.owned) == 2 and len(b.owned) == 2)  # b joined: a handed two over
    assert await live_workers(redis) == 2
    ids = iter(range(1000, 2000))
    expected: dict[int, list[int]] = defaultdict(list)
    for _ in range(10):
        for chat in range(8):
            update_id = next(ids)
            expected[chat].append(update_id)
            assert await stream.add(_update(update_id, chat))
    await _until(lambda: sum(map(len, recorder.seen.values())) == 80)
    stop.set()
    await asyncio.gather(*tasks)
    assert dict(recorder.seen) == expected  # every chat in order
    assert all(len(workers) == 1 for workers in recorder.by.values())  # each update once
    assert {w for workers in recorder.by.values() for w in workers} == {"a", "b"}
    assert await stream.pending() == 0  # all acknowledged
    assert await redis.zcard(keys.UPDATE_WORKERS) == 0  # both signed off
    assert [await redis.exists(keys.update_lease(p)) for p in range(4)] == [0, 0, 0, 0]


async def test_a_dead_workers_pending_updates_are_claimed_within_seconds(redis: Redis) -> None:
    stream = UpdateStream(redis, partitions=4)
    recorder = Recorder()
    recorder.hold = {1, 2}  # "a" hangs on these chats' first updates, holding the rest of them pending
    a, b = _consumer(stream, recorder, "a"), _consumer(stream, recorder, "b")
    stop, a_stop = asyncio.Event(), asyncio.Event()
    a_task = asyncio.create_task(a.run(a_stop))
    await _until(lambda: len(a.owned) == 4)
    b_task = asyncio.create_task(b.run(stop))
    await _until(lambda: len(a.owned) + len(b.owned) == 4 and len(b.owned) == 2)
    for i in range(5):
        for chat in (1, 2, 3, 4):
            assert await stream.add(_update(100 + 10 * chat + i, chat))
    a_parts = set(a.owned)
    # Everything in a's partitions is read by a (held or pending behind the held one) before it dies.
    await _until(lambda: all(len(recorder.seen[c]) == 5 for c in (3, 4) if c % 4 not in a_parts))
    await asyncio.sleep(0.3)
    assert await stream.pending() > 0
    a_task.cancel()  # killed: no hand-over, its leases and pending entries left behind
    died = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await a_task
    await _until(lambda: all(len(recorder.seen[c]) == 5 for c in (1, 2, 3, 4)))
    taken_over = time.monotonic() - died
    stop.set()
    await b_task
    assert taken_over < 5.0  # lease 1 s, tick 0.2 s: seconds, not minutes
    assert b.claimed > 0 and sorted(b.owned) == []
    for chat in (1, 2, 3, 4):
        assert recorder.seen[chat] == [100 + 10 * chat + i for i in range(5)]  # in order, none lost
    assert all(len(w) == 1 for w in recorder.by.values())  # the held updates were never finished by "a"
    assert await stream.pending() == 0


async def test_a_stream_laid_out_with_another_k_is_refused(redis: Redis) -> None:
    await UpdateStream(redis, partitions=4).check_layout()
    await UpdateStream(redis, partitions=4).check_layout()  # the same K: fine, again and again
    with pytest.raises(
        PartitionMismatch, match="UPDATE_PARTITIONS: is 8 but the update stream in Redis has 4"
    ):
        await UpdateStream(redis, partitions=8).check_layout()
