"""The one-time key migration to the hash-tag layout, on one server (RENAMENX) and on the cluster (DUMP/RESTORE)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import CrossSlotTransactionError

from alerts.calendar import HK_TZ
from alerts.store import keys
from alerts.store.failed import FailedFiles
from alerts.store.frames import FrameStore, load_frames
from alerts.store.migrate import RENAMES, migrate_keys, new_name
from alerts.store.outbox import Outbox, OutboxItem
from alerts.store.subscriptions import SubscriptionStore
from alerts.tickers import cik_for
from bot.leader import migrate_layout
from tests.support.bothelpers import demo_blobs

NOW = datetime(2025, 11, 20, 18, 0, tzinfo=HK_TZ)
SHA = "ab" * 32


def _old_frames() -> tuple[str, str, list[tuple[date, bytes]]]:
    """Three demo frames of one source and table, to be written under the old names."""
    source, table = demo_blobs()[0][:2]
    days = [(day, blob) for s, t, day, blob in demo_blobs() if (s, t) == (source, table)][:3]
    return source, table, days


async def _write_old_layout(redis: Redis) -> None:
    """What a release before the hash tags left in Redis: frames, a kept file, a chat, the outbox, the ticker map."""
    source, table, days = _old_frames()
    for day, blob in days:
        await redis.set(f"pb:frame:{source}:{table}:{day.isoformat()}", blob, ex=3600)
        await redis.zadd(f"pb:frames:{source}:{table}", {day.isoformat(): day.toordinal()})
    await redis.hset(f"pb:frames:{source}:known", days[0][0].isoformat(), NOW.isoformat())
    await redis.hset(
        f"pb:failed:{source}:2025-11-20:{SHA}",
        mapping={"content": b"bytes", "url": "https://x/y", "date": "2025-11-20", "kept_at": NOW.isoformat()},
    )
    await redis.zadd(f"pb:failed:index:{source}", {f"2025-11-20:{SHA}": NOW.timestamp()})
    await redis.sadd("pb:wl:-100123", "00700", "00005")
    await redis.sadd("pb:wl:by_code:00700", -100123)  # keeps its name: an index in its own slot
    await redis.hset("pb:chat:-100123", mapping={"lang": "zh", "digest": "1", "active": "1"})
    await redis.zadd("pb:mutes:-100123", {"00005": NOW.timestamp() + 3600})
    await redis.rpush("pb:digest:-100123", "fp1")
    item = OutboxItem(id="item1", chat_id=-100123, kind="text", text="hello", created_at=NOW.isoformat())
    await redis.set("pb:outbox:item:item1", item.to_json(), ex=keys.OUTBOX_ITEM_TTL_SECONDS)
    await redis.zadd("pb:outbox:due", {"item1": NOW.timestamp()})
    await redis.rpush("pb:outbox:dead", json.dumps({"item": {}, "reason": "gone", "at": NOW.isoformat()}))
    await redis.set("pb:outbox:alert:fp1", json.dumps({"fingerprint": "fp1"}))
    await redis.hset("pb:us:tickers", "AAPL", "320193")
    await redis.expire("pb:us:tickers", 5000)
    await redis.set(keys.cycle_done(source, days[0][0]), "digest")  # these two keep their names: one key each


async def _snapshot(redis: Redis) -> dict[str, bytes | None]:
    """Every key with its DUMP, to compare a keyspace before and after."""
    names = sorted([k.decode() async for k in redis.scan_iter(match="pb:*")])
    return {name: await redis.dump(name) for name in names}


async def test_old_layout_is_renamed_and_read_by_the_stores(redis: Redis) -> None:
    await _write_old_layout(redis)
    report = await migrate_keys(redis)
    assert report.moved == 15 and report.conflicts == [] and not report.skipped
    source, table, days = _old_frames()
    frames = FrameStore(redis)
    assert await frames.dates(source, table) == [d for d, _ in days]
    stored = await frames.load_range(source, {}, days[0][0], days[-1][0], table)
    assert len(stored) == len(await asyncio.to_thread(load_frames, [b for _, b in days], {})) > 0
    assert 0 < await redis.ttl(keys.frame(source, table, days[0][0])) <= 3600  # the TTL moved with the key
    kept = await FailedFiles(redis).kept(source)
    assert [(k.url, k.sha256) for k in kept] == [("https://x/y", SHA)]
    subs = SubscriptionStore(redis)
    assert await subs.watchlist(-100123) == ["00005", "00700"]
    assert await subs.watchers("00700") == {-100123}
    settings = await subs.settings(-100123)
    assert (settings.lang, settings.digest) == ("zh", True)
    assert list(await subs.active_mutes(-100123, NOW)) == ["00005"]
    assert await redis.lrange(keys.digest_queue(-100123), 0, -1) == [b"fp1"]
    outbox = Outbox(redis)
    assert [i.text for i in await outbox.claim(NOW)] == ["hello"]
    assert [d["reason"] for d in await outbox.dead()] == ["gone"]
    assert await redis.get(keys.outbox_alert("fp1")) is not None
    assert await cik_for(redis, "aapl") == "320193"
    assert 0 < await redis.ttl(keys.US_TICKERS) <= 5000
    left = [k.decode() async for k in redis.scan_iter(match="pb:*")]
    assert [k for k in left if new_name(k) is not None] == []  # no old name left
    assert await redis.get(keys.KEY_LAYOUT) == keys.KEY_LAYOUT_VERSION.encode()


async def test_a_second_run_changes_nothing(redis: Redis) -> None:
    await _write_old_layout(redis)
    await migrate_keys(redis)
    before = await _snapshot(redis)
    again = await migrate_keys(redis)
    assert (again.moved, again.conflicts, again.gone) == (0, [], 0)
    assert await _snapshot(redis) == before
    assert (await migrate_keys(redis, only_once=True)).skipped  # the leader's start-up: one GET


async def test_an_empty_redis_migrates_to_nothing_but_the_marker(redis: Redis) -> None:
    report = await migrate_keys(redis, only_once=True)
    assert (report.moved, report.conflicts, report.skipped) == (0, [], False)
    assert list((await _snapshot(redis)).keys()) == [keys.KEY_LAYOUT]


async def test_a_key_under_both_names_keeps_the_new_one_and_is_reported(redis: Redis) -> None:
    await redis.sadd("pb:wl:7", "00001")
    await redis.sadd(keys.watchlist(7), "00700")  # written since by the new release
    report = await migrate_keys(redis)
    assert report.conflicts == ["pb:wl:7"] and report.moved == 0
    assert await SubscriptionStore(redis).watchlist(7) == ["00700"]
    assert await redis.smembers("pb:wl:7") == {b"00001"}  # nothing lost: left for the operator
    assert "pb:wl:7" in report.summary()


async def test_the_leader_migrates_before_serving(redis: Redis) -> None:
    await redis.sadd("pb:wl:8", "00700")
    assert await migrate_layout(redis, asyncio.Event(), asyncio.Event()) is True
    assert await SubscriptionStore(redis).watchlist(8) == ["00700"]
    stop = asyncio.Event()
    stop.set()
    assert await migrate_layout(redis, stop, asyncio.Event()) is False  # asked to stop: no term on old keys


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("pb:frame:hkex-quotes:main:2025-11-20", "pb:frame:{src:hkex-quotes}:main:2025-11-20"),
        ("pb:frames:hkex-quotes:main", "pb:frames:{src:hkex-quotes}:main"),
        ("pb:frames:hkex-quotes:known", "pb:frames:{src:hkex-quotes}:known"),
        ("pb:failed:index:sfc-short-positions", "pb:failed:index:{src:sfc-short-positions}"),
        (f"pb:failed:hkex-di:2025-11-20:{SHA}", f"pb:failed:{{src:hkex-di}}:2025-11-20:{SHA}"),
        ("pb:wl:123", "pb:wl:{chat:123}"),
        ("pb:chat:-1001", "pb:chat:{chat:-1001}"),
        ("pb:mutes:5", "pb:mutes:{chat:5}"),
        ("pb:digest:5", "pb:digest:{chat:5}"),
        ("pb:outbox:due", "pb:{outbox}:due"),
        ("pb:outbox:dead", "pb:{outbox}:dead"),
        ("pb:outbox:item:abc", "pb:{outbox}:item:abc"),
        ("pb:outbox:alert:fp", "pb:{outbox}:alert:fp"),
    ],
)
def test_old_names_map_to_the_tagged_ones_and_new_names_to_none(old: str, new: str) -> None:
    assert new_name(old) == new
    assert new_name(new) is None  # idempotent by construction


@pytest.mark.parametrize(
    "name",
    [
        "pb:wl:by_code:00700",
        "pb:routed:fp",
        "pb:outbox:sent:abc:0",
        "pb:lease:leader",
        "pb:cycle:hkex-quotes:2025-11-20",
        "pb:cmdrate:5:29000000",
        "pb:chatadmin:-100:7",
        "pb:marker",
        keys.KEY_LAYOUT,
        "pb:alerts:day:2025-11-20",
    ],
)
def test_keys_outside_the_table_keep_their_names(name: str) -> None:
    assert new_name(name) is None


def test_keys_that_change_together_share_a_slot() -> None:
    day = date(2025, 11, 20)
    groups = [
        [
            keys.frame("hkex-quotes", "main", day),
            keys.frame_index("hkex-quotes", "main"),
            keys.frame_known("hkex-quotes"),
            keys.failed_file("hkex-quotes", day, SHA),
            keys.failed_index("hkex-quotes"),
        ],
        [keys.watchlist(-5), keys.chat_settings(-5), keys.mutes(-5), keys.digest_queue(-5)],
        [
            keys.OUTBOX_DUE,
            keys.OUTBOX_DEAD,
            keys.OUTBOX_ITEMS,
            keys.outbox_item("i"),
            keys.outbox_batch("b"),
            keys.outbox_alert("fp"),
        ],
    ]
    for group in groups:
        assert len({key_slot(k.encode()) for k in group}) == 1, group
    assert len(RENAMES) == 12


async def test_the_cluster_refuses_a_transaction_across_slots(redis: Redis, redis_kind: str) -> None:
    """The cluster runs are a real cluster: a MULTI over two chats' keys fails there (and only there)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(keys.watchlist(1), "00700")
        pipe.sadd(keys.watchlist(2), "00700")
        if redis_kind == "single":
            assert await pipe.execute() == [1, 1]
            return
        with pytest.raises(CrossSlotTransactionError, match="same slot"):
            await pipe.execute()
