"""The outbox against a real redis-server: idempotent put, leased claims, parts, retries and dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.store import keys
from alerts.store import outbox as outbox_module
from alerts.store.outbox import AlertRow, Outbox, OutboxItem, item_id
from tests.support.bothelpers import TOKEN  # the one documented test token: redact() must catch it

NOW = datetime(2025, 11, 24, 16, 30, tzinfo=HK_TZ)


def _text_item(chat: int, text: str) -> OutboxItem:
    return OutboxItem(id=item_id(chat, "text", [text]), chat_id=chat, kind="text", text=text)


async def _stored(redis: Redis, item: OutboxItem) -> OutboxItem:
    raw = await redis.get(keys.outbox_item(item.id))
    assert raw is not None
    return OutboxItem.from_json(raw)


async def test_outbox_claim_lease_parts_and_dead_letters(redis: Redis) -> None:
    outbox = Outbox(redis)
    item = OutboxItem(id=item_id(5, "text", ["hello"]), chat_id=5, kind="text", text="hello")
    assert await outbox.put(item, NOW) is True
    assert await outbox.put(item, NOW) is False  # idempotent
    assert [i.id for i in await outbox.claim(NOW)] == [item.id]
    assert await outbox.claim(NOW) == []  # leased
    assert [i.id for i in await outbox.claim(NOW + timedelta(seconds=keys.CLAIM_SECONDS + 1))] == [item.id]
    await outbox.mark_part_sent(item.id, 0)
    assert await outbox.is_part_sent(item.id, 0) and not await outbox.is_part_sent(item.id, 1)
    moved = await outbox.move_chat(item, -1009)
    assert moved.chat_id == -1009 and moved.id == item.id
    await outbox.dead_letter(moved, "Bad Request: chat not found", NOW)
    assert await outbox.pending() == 0
    (dead,) = await outbox.dead()
    assert dead["reason"] == "Bad Request: chat not found" and dead["item"]["chat_id"] == -1009


async def test_put_many_is_put_for_each(redis: Redis) -> None:
    outbox = Outbox(redis)
    first = OutboxItem(id=item_id(1, "text", ["a"]), chat_id=1, kind="text", text="a")
    await outbox.put(first, NOW)
    second = OutboxItem(id=item_id(2, "text", ["b"]), chat_id=2, kind="text", text="b")
    later = NOW + timedelta(seconds=keys.CLAIM_SECONDS // 2)  # inside the lease of the first claim
    assert await outbox.put_many([(first, later), (second, later)]) == [False, True]
    assert [i.id for i in await outbox.claim(NOW, 10)] == [first.id]  # the existing item kept its due time
    assert [i.text for i in await outbox.claim(later, 10)] == ["b"]


# --- ids and the stored form ------------------------------------------------------------------------------------


def test_item_id_is_deterministic_and_ignores_fingerprint_order() -> None:
    assert item_id(1, "alerts", ["a", "b"]) == item_id(1, "alerts", ["b", "a"])
    assert len(item_id(1, "alerts", ["a"])) == 24
    assert int(item_id(1, "alerts", ["a"]), 16) >= 0  # hex
    others = {item_id(2, "alerts", ["a", "b"]), item_id(1, "digest", ["a", "b"]), item_id(1, "alerts", ["a"])}
    assert item_id(1, "alerts", ["a", "b"]) not in others and len(others) == 3


def test_item_json_round_trips_and_keeps_referenced_alerts_out() -> None:
    inline = OutboxItem(
        id="i1", chat_id=-5, kind="alerts", alerts=[{"code": "01810"}], silent=True, attempts=2
    )
    assert OutboxItem.from_json(inline.to_json()) == inline
    by_ref = OutboxItem(id="i2", chat_id=5, kind="alerts", alerts=[{"code": "00700"}], refs=["fp"])
    assert OutboxItem.from_json(by_ref.to_json()).alerts == []  # the body lives under outbox_alert
    assert OutboxItem.from_json(by_ref.to_json(with_alerts=True)) == by_ref
    text = OutboxItem(id="i3", chat_id=5, kind="text", text="港股 <b>")
    assert "港股" in text.to_json() and OutboxItem.from_json(text.to_json().encode()) == text


# --- put: once, with a TTL, redacted ----------------------------------------------------------------------------


async def test_put_stores_the_item_with_its_ttl_and_schedules_it_at_due(redis: Redis) -> None:
    outbox = Outbox(redis)
    item = _text_item(3, "later")
    due = NOW + timedelta(minutes=5)
    assert await outbox.put(item, due) is True
    assert await _stored(redis, item) == item
    assert (
        keys.OUTBOX_ITEM_TTL_SECONDS - 60
        < await redis.ttl(keys.outbox_item(item.id))
        <= (keys.OUTBOX_ITEM_TTL_SECONDS)
    )
    assert await redis.zscore(keys.OUTBOX_DUE, item.id) == pytest.approx(due.timestamp())
    assert await outbox.claim(due - timedelta(seconds=1)) == []  # not due yet
    assert [i.id for i in await outbox.claim(due)] == [item.id]


async def test_a_second_put_keeps_the_first_payload_and_due_time(redis: Redis) -> None:
    outbox = Outbox(redis)
    first = _text_item(3, "same")
    assert await outbox.put(first, NOW + timedelta(hours=1)) is True
    rival = OutboxItem(id=first.id, chat_id=3, kind="text", text="changed", attempts=4)
    assert await outbox.put(rival, NOW) is False
    assert await outbox.put_many([(rival, NOW)]) == [False]
    assert await _stored(redis, first) == first
    assert await outbox.claim(NOW) == []  # still due in an hour, not moved forward
    assert await outbox.pending() == 1


async def test_put_and_put_many_redact_tokens_from_texts(redis: Redis) -> None:
    outbox = Outbox(redis)
    single = _text_item(1, f"error from /bot{TOKEN}/sendMessage")
    many = _text_item(2, f"token {TOKEN} again")
    assert await outbox.put(single, NOW)
    assert await outbox.put_many([(many, NOW)]) == [True]
    for item in (single, many):
        stored = await _stored(redis, item)
        assert TOKEN not in stored.text and "<token>" in stored.text
    assert {i.chat_id for i in await outbox.claim(NOW)} == {1, 2}


async def test_put_many_sets_the_ttl_and_takes_an_empty_list(redis: Redis) -> None:
    outbox = Outbox(redis)
    assert await outbox.put_many([]) == []
    assert await outbox.pending() == 0
    item = _text_item(4, "bulk")
    assert await outbox.put_many([(item, NOW)]) == [True]
    assert 0 < await redis.ttl(keys.outbox_item(item.id)) <= keys.OUTBOX_ITEM_TTL_SECONDS
    assert await redis.zscore(keys.OUTBOX_DUE, item.id) == pytest.approx(NOW.timestamp())


# --- alert bodies and load ----------------------------------------------------------------------------------------


async def test_store_alerts_keeps_the_first_body_and_renews_its_ttl(redis: Redis) -> None:
    outbox = Outbox(redis)
    await outbox.store_alerts({})  # nothing to do, no round trip needed
    assert await redis.dbsize() == 0
    await outbox.store_alerts({"fp1": '{"code": "01810"}'})
    await redis.expire(keys.outbox_alert("fp1"), 100)
    await outbox.store_alerts({"fp1": '{"code": "changed"}', "fp2": '{"code": "00700"}'})
    assert await redis.get(keys.outbox_alert("fp1")) == b'{"code": "01810"}'
    for fingerprint in ("fp1", "fp2"):
        ttl = await redis.ttl(keys.outbox_alert(fingerprint))
        assert keys.OUTBOX_ALERT_TTL_SECONDS - 60 < ttl <= keys.OUTBOX_ALERT_TTL_SECONDS


async def test_load_fills_alerts_by_reference_and_skips_bodies_that_are_gone(redis: Redis) -> None:
    outbox = Outbox(redis)
    assert await outbox.load([]) == []
    await outbox.store_alerts({"fp1": json.dumps({"code": "01810"})})
    item = OutboxItem(id=item_id(6, "alerts", ["fp1", "fp2"]), chat_id=6, kind="alerts", refs=["fp1", "fp2"])
    await outbox.put(item, NOW)
    (loaded,) = await outbox.load([item.id])
    assert loaded.alerts == [{"code": "01810"}] and loaded.refs == ["fp1", "fp2"]
    assert await outbox.pending() == 1  # load does not claim


async def test_load_forgets_ids_whose_payload_expired(redis: Redis) -> None:
    outbox = Outbox(redis)
    kept, expired = _text_item(1, "kept"), _text_item(2, "expired")
    await outbox.put_many([(kept, NOW), (expired, NOW)])
    await redis.delete(keys.outbox_item(expired.id))  # as its TTL would
    assert [i.id for i in await outbox.load([kept.id, expired.id])] == [kept.id]
    assert await redis.zscore(keys.OUTBOX_DUE, expired.id) is None
    assert await outbox.pending() == 1


# --- claim: leased, limited, never twice at once -----------------------------------------------------------------


async def test_claim_takes_due_items_oldest_first_up_to_the_limit_and_leases_them(redis: Redis) -> None:
    outbox = Outbox(redis)
    items = [_text_item(10 + n, f"m{n}") for n in range(5)]
    for n, item in enumerate(items):
        await outbox.put(item, NOW - timedelta(seconds=10 - n))
    future = _text_item(99, "future")
    await outbox.put(future, NOW + timedelta(seconds=1))
    assert [i.id for i in await outbox.claim(NOW, limit=2)] == [items[0].id, items[1].id]
    lease_end = NOW.timestamp() + keys.CLAIM_SECONDS
    assert await redis.zscore(keys.OUTBOX_DUE, items[0].id) == pytest.approx(lease_end)
    assert [i.id for i in await outbox.claim(NOW, limit=10)] == [i.id for i in items[2:]]
    assert await outbox.claim(NOW, limit=10) == []
    assert await outbox.pending() == 6  # claimed items stay until done


async def test_concurrent_claims_never_hand_out_an_item_twice(redis: Redis) -> None:
    outbox = Outbox(redis)
    items = [_text_item(100 + n, f"c{n}") for n in range(40)]
    await outbox.put_many([(item, NOW) for item in items])
    workers = [Outbox(redis) for _ in range(5)]
    batches = await asyncio.gather(*(w.claim(NOW, limit=10) for w in workers))
    claimed = [i.id for batch in batches for i in batch]
    assert len(claimed) == len(set(claimed)) == len(items)
    assert set(claimed) == {i.id for i in items}


async def test_a_worker_that_dies_mid_item_leaves_it_due_again_with_its_sent_parts(redis: Redis) -> None:
    """Nothing lost: the item comes back after the lease; nothing doubled: the recorded part is skipped."""
    outbox = Outbox(redis)
    item = _text_item(7, "two parts")
    await outbox.put(item, NOW)
    (taken,) = await outbox.claim(NOW)
    await outbox.mark_part_sent(taken.id, 0)  # then the worker dies: no done()
    assert await outbox.claim(NOW + timedelta(seconds=keys.CLAIM_SECONDS - 1)) == []
    (again,) = await Outbox(redis).claim(NOW + timedelta(seconds=keys.CLAIM_SECONDS))
    assert again == item
    assert await outbox.is_part_sent(again.id, 0) and not await outbox.is_part_sent(again.id, 1)


async def test_release_hands_claimed_items_back_but_never_revives_finished_ones(redis: Redis) -> None:
    outbox = Outbox(redis)
    held, finished = _text_item(1, "held"), _text_item(2, "finished")
    await outbox.put_many([(held, NOW), (finished, NOW)])
    assert len(await outbox.claim(NOW)) == 2
    await outbox.done(finished.id)
    await outbox.release([], NOW)  # nothing to hand back
    await outbox.release([held.id, finished.id], NOW)
    assert await redis.zscore(keys.OUTBOX_DUE, finished.id) is None
    assert await outbox.pending() == 1
    assert [i.id for i in await outbox.claim(NOW)] == [held.id]  # due again at once, not after the lease


# --- parts, done, reschedule, dead letters, moves ----------------------------------------------------------------


async def test_sent_parts_are_per_item_and_part_and_outlive_the_item(redis: Redis) -> None:
    outbox = Outbox(redis)
    item, other = _text_item(1, "a"), _text_item(1, "b")
    await outbox.put_many([(item, NOW), (other, NOW)])
    await outbox.mark_part_sent(item.id, 1)
    assert [await outbox.is_part_sent(item.id, p) for p in (0, 1, 2)] == [False, True, False]
    assert not await outbox.is_part_sent(other.id, 1)
    ttl = await redis.ttl(keys.sent_part(item.id, 1))
    assert keys.SENT_TTL_SECONDS - 60 < ttl <= keys.SENT_TTL_SECONDS
    assert keys.SENT_TTL_SECONDS > keys.OUTBOX_ITEM_TTL_SECONDS  # a re-put item still finds its parts
    await outbox.done(item.id)
    assert await outbox.is_part_sent(item.id, 1)


async def test_done_removes_the_item_and_its_schedule(redis: Redis) -> None:
    outbox = Outbox(redis)
    item, other = _text_item(1, "done"), _text_item(2, "other")
    await outbox.put_many([(item, NOW), (other, NOW)])
    await outbox.claim(NOW)
    await outbox.done(item.id)
    assert await redis.exists(keys.outbox_item(item.id)) == 0
    assert await outbox.pending() == 1
    later = NOW + timedelta(seconds=keys.CLAIM_SECONDS)
    assert [i.id for i in await outbox.claim(later)] == [other.id]  # the finished item never comes back


async def test_reschedule_counts_an_attempt_and_moves_the_due_time(redis: Redis) -> None:
    outbox = Outbox(redis)
    item = _text_item(8, "retry")
    await outbox.put(item, NOW)
    (claimed,) = await outbox.claim(NOW)
    await redis.expire(keys.outbox_item(item.id), 100)
    retry_at = NOW + timedelta(seconds=30)  # sooner than the lease would give it back
    updated = await outbox.reschedule(claimed, retry_at)
    assert updated.attempts == 1 and (await _stored(redis, item)).attempts == 1
    assert await redis.ttl(keys.outbox_item(item.id)) > keys.OUTBOX_ITEM_TTL_SECONDS - 60  # renewed
    assert await outbox.claim(retry_at - timedelta(seconds=1)) == []
    (again,) = await outbox.claim(retry_at)
    same = await outbox.reschedule(again, retry_at + timedelta(seconds=5), count_attempt=False)  # a 429
    assert same.attempts == 1 and (await _stored(redis, item)).attempts == 1
    assert await redis.zscore(keys.OUTBOX_DUE, item.id) == pytest.approx(retry_at.timestamp() + 5)


async def test_dead_letter_keeps_the_whole_item_the_reason_and_the_time_redacted(redis: Redis) -> None:
    outbox = Outbox(redis)
    await outbox.store_alerts({"fp": json.dumps({"code": "01810"})})
    first = OutboxItem(id=item_id(9, "alerts", ["fp"]), chat_id=9, kind="alerts", refs=["fp"])
    second = _text_item(10, "second")
    await outbox.put_many([(first, NOW), (second, NOW)])
    loaded = {i.id: i for i in await outbox.claim(NOW)}
    await outbox.dead_letter(loaded[first.id], f"403 Forbidden for /bot{TOKEN}/sendMessage", NOW)
    await outbox.dead_letter(loaded[second.id], "400 Bad Request", NOW + timedelta(seconds=1))
    dead = await outbox.dead()
    assert [d["item"]["id"] for d in dead] == [first.id, second.id]  # in the order they died
    assert dead[0]["item"]["alerts"] == [{"code": "01810"}]  # the body itself, for the admins to read
    assert TOKEN not in dead[0]["reason"] and "<token>" in dead[0]["reason"]
    assert dead[1]["at"] == (NOW + timedelta(seconds=1)).isoformat()
    assert await outbox.pending() == 0
    assert await redis.exists(keys.outbox_item(first.id), keys.outbox_item(second.id)) == 0


async def test_move_chat_readdresses_the_stored_item_and_keeps_its_parts(redis: Redis) -> None:
    outbox = Outbox(redis)
    item = _text_item(-4001, "to the supergroup")
    await outbox.put(item, NOW)
    await outbox.mark_part_sent(item.id, 0)
    await redis.expire(keys.outbox_item(item.id), 100)
    moved = await outbox.move_chat(item, -1004001)
    assert (moved.id, moved.chat_id, moved.text) == (item.id, -1004001, item.text)
    assert await _stored(redis, item) == moved
    assert await redis.ttl(keys.outbox_item(item.id)) > keys.OUTBOX_ITEM_TTL_SECONDS - 60
    assert await outbox.is_part_sent(moved.id, 0)
    assert [i.chat_id for i in await outbox.claim(NOW)] == [-1004001]


async def test_pending_counts_waiting_and_claimed_items(redis: Redis) -> None:
    outbox = Outbox(redis)
    assert await outbox.pending() == 0
    items = [_text_item(1, "x"), _text_item(2, "y"), _text_item(3, "z")]
    await outbox.put(items[0], NOW)
    await outbox.put_many([(items[1], NOW + timedelta(hours=1)), (items[2], NOW)])
    assert await outbox.pending() == 3
    await outbox.claim(NOW, limit=1)
    assert await outbox.pending() == 3
    await outbox.done(items[0].id)
    assert await outbox.pending() == 2


async def test_put_many_keeps_texts_with_tabs_and_newlines_intact(redis: Redis) -> None:
    """Items travel to Redis as lines of tab-separated fields: the JSON of a text escapes its tabs and newlines."""
    outbox = Outbox(redis)
    item = OutboxItem(id="t1", chat_id=5, kind="text", text="a\tb\nc\r\n端")
    assert await outbox.put_many([(item, NOW), (item, NOW)]) == [True, False]
    (loaded,) = await outbox.claim(NOW, 10)
    assert loaded.text == item.text and await outbox.pending() == 1


# --- the compact layout of a fan-out pass (put_alerts) -------------------------------------------------------------

CREATED = NOW.isoformat()


async def _compact(outbox: Outbox, chats: list[int], refs: list[str], due: datetime = NOW) -> list[str]:
    """A pass's items: chat n gets refs[0], and refs[1] too for odd chats; chat 3 silent. Their ids."""
    await outbox.store_alerts({fp: json.dumps({"fingerprint": fp}) for fp in refs})
    rows = []
    for chat in chats:
        shape = [0, 1] if chat % 2 else [0]
        ids = item_id(chat, "alerts", [refs[i] for i in shape])
        rows.append((ids, due.timestamp(), chat, chat == 3, ",".join(map(str, shape))))
    assert await outbox.put_alerts(refs, CREATED, rows) == [True] * len(rows)
    return [row[0] for row in rows]


async def test_put_alerts_stores_one_hash_entry_per_item_and_one_record_per_pass(redis: Redis) -> None:
    outbox = Outbox(redis)
    assert await outbox.put_alerts(["fp1"], CREATED, []) == []
    assert await redis.dbsize() == 0
    ids = await _compact(outbox, [1, 2, 3], ["fp1", "fp2"])
    assert [k async for k in redis.scan_iter(match=keys.outbox_item("*"))] == []
    assert await redis.hlen(keys.OUTBOX_ITEMS) == 3 and await outbox.pending() == 3
    (record,) = [k async for k in redis.scan_iter(match=keys.outbox_batch("*"))]
    assert keys.OUTBOX_ITEM_TTL_SECONDS - 60 < await redis.ttl(record) <= keys.OUTBOX_ITEM_TTL_SECONDS
    items = {i.chat_id: i for i in await outbox.claim(NOW, 10)}
    assert items[1] == OutboxItem(
        id=ids[0],
        chat_id=1,
        kind="alerts",
        refs=["fp1", "fp2"],
        alerts=[{"fingerprint": "fp1"}, {"fingerprint": "fp2"}],
        created_at=CREATED,
    )
    assert (items[2].refs, items[2].silent, items[3].silent) == (["fp1"], False, True)


async def test_put_alerts_is_idempotent_across_passes_and_layouts(redis: Redis) -> None:
    outbox = Outbox(redis)
    ids = await _compact(outbox, [1, 2], ["fp1", "fp2"])
    later = (NOW + timedelta(hours=1)).timestamp()
    # A re-run of the pass (another record: another clock) finds its items queued: nothing stored twice or moved.
    again = [(ids[0], later, 1, True, "0,1"), (ids[1], later, 2, False, "0")]
    assert await outbox.put_alerts(["fp1", "fp2"], "later", again) == [False, False]
    assert await redis.hlen(keys.OUTBOX_ITEMS) == 2
    assert await redis.zscore(keys.OUTBOX_DUE, ids[0]) == pytest.approx(NOW.timestamp())
    # The same id twice in one call is one item; and put() of an id queued compactly is refused as well.
    twice = item_id(7, "alerts", ["fp1"])
    rows = [(twice, later, 7, False, "0"), (twice, later, 7, False, "0")]
    assert await outbox.put_alerts(["fp1"], CREATED, rows) == [True, False]
    refs_item = OutboxItem(id=ids[1], chat_id=2, kind="alerts", refs=["fp1"])
    assert await outbox.put(refs_item, NOW) is False
    assert await redis.exists(keys.outbox_item(ids[1])) == 0
    assert await outbox.pending() == 3


async def test_compact_items_are_leased_rescheduled_moved_and_finished(redis: Redis) -> None:
    outbox = Outbox(redis)
    ids = await _compact(outbox, [1, 2, 4], ["fp1", "fp2"])
    claimed = {i.chat_id: i for i in await outbox.claim(NOW, 10)}
    assert await outbox.claim(NOW, 10) == []  # leased
    # A retry moves the item to its own key (with its attempts); the entry goes, so it is never read twice.
    retry_at = NOW + timedelta(seconds=30)
    await outbox.reschedule(claimed[1], retry_at)
    assert await redis.hget(keys.OUTBOX_ITEMS, ids[0]) is None
    assert (await _stored(redis, claimed[1])).attempts == 1
    moved = await outbox.move_chat(claimed[2], -1002)
    assert await redis.hget(keys.OUTBOX_ITEMS, ids[1]) is None and await _stored(
        redis, claimed[2]
    ) == replace(moved, alerts=[])
    await outbox.done(ids[2])
    assert await redis.hlen(keys.OUTBOX_ITEMS) == 0 and await outbox.pending() == 2
    (retried,) = await outbox.claim(retry_at, 10)
    assert (retried.id, retried.attempts, retried.alerts) == (ids[0], 1, claimed[1].alerts)
    await outbox.dead_letter(retried, "400 Bad Request", NOW)
    (again,) = await outbox.claim(NOW + timedelta(seconds=keys.CLAIM_SECONDS), 10)
    assert again.chat_id == -1002  # the moved item comes back after its lease, readdressed
    await outbox.done(again.id)
    assert await outbox.pending() == 0
    assert [k async for k in redis.scan_iter(match=keys.outbox_item("*"))] == []


async def test_items_of_the_old_layout_are_delivered_beside_compact_ones(redis: Redis) -> None:
    """Queued before the upgrade: one key per item, the JSON holding the refs; read and finished as ever."""
    outbox = Outbox(redis)
    ids = await _compact(outbox, [2], ["fp1"])
    old = OutboxItem(id=item_id(5, "alerts", ["fp1"]), chat_id=5, kind="alerts", refs=["fp1"], created_at="x")
    await redis.set(keys.outbox_item(old.id), old.to_json(), ex=keys.OUTBOX_ITEM_TTL_SECONDS)
    await redis.zadd(keys.OUTBOX_DUE, {old.id: NOW.timestamp() - 1})
    assert await outbox.put(old, NOW) is False  # still idempotent against it
    assert await outbox.put_alerts(["fp1"], CREATED, [(old.id, NOW.timestamp(), 5, False, "0")]) == [False]
    claimed = await outbox.claim(NOW, 10)
    assert [(i.id, i.chat_id, i.alerts) for i in claimed] == [
        (old.id, 5, [{"fingerprint": "fp1"}]),
        (ids[0], 2, [{"fingerprint": "fp1"}]),
    ]
    for item in claimed:
        await outbox.done(item.id)
    assert await outbox.pending() == 0 and await redis.exists(keys.outbox_item(old.id)) == 0


async def test_compact_items_whose_record_expired_are_dropped_and_may_be_put_again(redis: Redis) -> None:
    outbox = Outbox(redis)
    ids = await _compact(outbox, [1, 2], ["fp1", "fp2"])
    (record,) = [k async for k in redis.scan_iter(match=keys.outbox_batch("*"))]
    await redis.delete(record)  # as its TTL would
    assert await outbox.claim(NOW, 10) == []
    assert await outbox.pending() == 0 and await redis.hlen(keys.OUTBOX_ITEMS) == 0
    # An id whose payload expired while still queued is stored again, as an expired item key always allowed.
    await _compact(outbox, [1], ["fp1", "fp2"])
    await redis.delete(*[k async for k in redis.scan_iter(match=keys.outbox_batch("*"))])
    rows = [(ids[0], NOW.timestamp(), 1, False, "0,1")]
    assert await outbox.put_alerts(["fp1", "fp2"], "again", rows) == [True]
    assert [i.id for i in await outbox.claim(NOW, 10)] == [ids[0]]


async def test_concurrent_claims_of_compact_items_never_hand_one_out_twice(redis: Redis) -> None:
    outbox = Outbox(redis)
    ids = await _compact(outbox, list(range(1, 41)), ["fp1", "fp2"])
    batches = await asyncio.gather(*(Outbox(redis).claim(NOW, limit=10) for _ in range(5)))
    claimed = [i.id for batch in batches for i in batch]
    assert len(claimed) == len(set(claimed)) == len(ids) and set(claimed) == set(ids)


async def test_put_alerts_sends_chunks_as_rows_are_drawn_and_counts_a_repeat_once(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "PUT_CHUNK", 2)  # five calls, two in flight at a time
    outbox = Outbox(redis)
    drawn: list[int] = []

    def rows() -> Iterator[AlertRow]:
        for chat in (1, 2, 3, 1, 4, 5, 6, 7, 2):
            drawn.append(chat)
            yield item_id(chat, "alerts", ["fp1"]), NOW.timestamp(), chat, False, "0"

    flags = await outbox.put_alerts(["fp1"], CREATED, rows())
    assert flags == [True, True, True, False, True, True, True, True, False]
    assert len(drawn) == 9 and await outbox.pending() == 7 == await redis.hlen(keys.OUTBOX_ITEMS)
