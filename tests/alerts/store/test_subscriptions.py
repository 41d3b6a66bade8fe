"""Chats, watchlists, settings, mutes and command counts against a real redis-server."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.store import keys
from alerts.store.subscriptions import LANGUAGES, ChatSettings, SubscriptionStore, parse_quiet

NOW = datetime(2025, 11, 24, 16, 30, tzinfo=HK_TZ)


async def test_watch_cap_reverse_index_and_unwatch(redis: Redis) -> None:
    subs = SubscriptionStore(redis, cap=3)
    assert await subs.touch(1, "private", "zh-hant") is True
    assert await subs.touch(1) is False
    added, already, refused = await subs.watch(1, ["01810", "00700", "01810"])
    assert (added, already, refused) == (["01810", "00700"], [], [])
    added, already, refused = await subs.watch(1, ["00700", "09988", "03690"])
    assert (added, already, refused) == (["09988"], ["00700"], ["03690"])
    assert await subs.watchers("01810") == {1}
    assert await subs.unwatch(1, ["01810", "00005"]) == ["01810"]
    assert await subs.watchers("01810") == set()
    assert await subs.watchlist(1) == ["00700", "09988"]
    assert (await subs.settings(1)).lang == "zh"


@pytest.mark.parametrize(
    ("text", "now_hk", "quiet"),
    [
        ("22:00-07:00", time(23, 30), True),
        ("22:00-07:00", time(6, 59), True),
        ("22:00-07:00", time(7, 0), False),
        ("12:00-13:00", time(12, 30), True),
        ("12:00-13:00", time(13, 30), False),
    ],
)
def test_quiet_hours_wrap_midnight(text: str, now_hk: time, quiet: bool) -> None:
    settings = ChatSettings(1, quiet=parse_quiet(text))
    now = datetime.combine(date(2025, 11, 24), now_hk, tzinfo=HK_TZ)
    assert settings.in_quiet(now) is quiet
    end = settings.quiet_end(now)
    assert end > now and end.astimezone(HK_TZ).time() == parse_quiet(text)[1]


def test_short_quiet_forms() -> None:
    assert parse_quiet("22-7") == (time(22, 0), time(7, 0))
    assert parse_quiet(" 22:30 – 07:15 ") == (time(22, 30), time(7, 15))


@pytest.mark.parametrize("bad", ["22:61-07:00", "25:00-07:00", "07:00-07:00", "", "soon"])
def test_bad_quiet_hours(bad: str) -> None:
    with pytest.raises(ValueError, match="HH:MM|differ"):
        parse_quiet(bad)


async def test_expired_mute_no_longer_applies(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.mute(1, "buyback_filed", NOW - timedelta(seconds=1))
    await subs.mute(1, "00700", NOW + timedelta(hours=1))
    assert set(await subs.active_mutes(1, NOW)) == {"00700"}


async def test_migrate_moves_everything(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.touch(-100, "group")
    await subs.watch(-100, ["01810"])
    await subs.set_lang(-100, "zh")
    await subs.mute(-100, "00700", NOW + timedelta(days=1))
    await subs.set_market(-100, True)
    await subs.migrate(-100, -1001234)
    assert await subs.watchers("01810") == {-1001234}
    assert await subs.watchlist(-1001234) == ["01810"]
    assert (await subs.settings(-1001234)).lang == "zh"
    assert "00700" in await subs.active_mutes(-1001234, NOW)
    assert await subs.market_subscribers() == {-1001234}
    assert await subs.watchlist(-100) == []


async def test_command_rate_limit(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    results = [await subs.command_allowed(9, NOW, per_minute=3) for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert await subs.command_allowed(9, NOW + timedelta(minutes=1), per_minute=3)


# --- quiet hours in Hong Kong time --------------------------------------------------------------------------------


def test_quiet_hours_are_read_in_hong_kong_time_whatever_the_zone_of_now() -> None:
    settings = ChatSettings(1, quiet=parse_quiet("22:00-07:00"))
    utc_now = datetime(2025, 11, 24, 15, 30, tzinfo=UTC)  # 23:30 in Hong Kong, 15:30 in UTC
    assert settings.in_quiet(utc_now) is True
    assert settings.quiet_end(utc_now) == datetime(2025, 11, 25, 7, 0, tzinfo=HK_TZ)
    assert ChatSettings(1).in_quiet(utc_now) is False
    assert ChatSettings(1).quiet_end(utc_now) == utc_now  # no quiet hours: nothing to wait for


# --- chats: first contact, defaults, blocked chats ----------------------------------------------------------------


async def test_an_unknown_chat_reads_as_the_defaults(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    assert await subs.settings(42) == ChatSettings(42)
    assert ChatSettings(42).lang == "en" and ChatSettings(42).active is True
    assert await subs.watchlist(42) == [] and await subs.active_mutes(42, NOW) == {}
    assert await redis.dbsize() == 0  # reading creates nothing


async def test_touch_registers_a_chat_once_and_keeps_its_first_language(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    assert await subs.touch(-7, "group", "zh-HK") is True
    assert await subs.touch(8, "private", "ja") is True
    assert await redis.smembers(keys.CHATS) == {b"-7", b"8"}
    first = await subs.settings(-7)
    assert (first.lang, first.chat_type, first.active) == ("zh", "group", True)
    assert (await subs.settings(8)).lang == "en"
    assert await subs.touch(-7, "supergroup", "en") is False
    again = await subs.settings(-7)
    assert (again.lang, again.chat_type) == (
        "zh",
        "supergroup",
    )  # the type follows Telegram, the language stays


async def test_a_blocked_chat_is_inactive_keeps_its_data_and_comes_back_on_touch(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    for chat in (1, 2):
        await subs.touch(chat)
        await subs.watch(chat, ["01810"])
    await subs.set_lang(1, "zh")
    await subs.deactivate(1)
    blocked = await subs.settings(1)
    assert (blocked.active, blocked.lang) == (False, "zh")
    assert await subs.active_chats() == [2]
    assert await subs.watchlist(1) == ["01810"] and await subs.watchers("01810") == {1, 2}  # kept
    assert await subs.touch(1) is False  # the user unblocked the bot and wrote again
    assert (await subs.settings(1)).active is True
    assert await subs.active_chats() == [1, 2]


async def test_active_chats_reads_every_chunk_and_skips_the_inactive(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    chats = list(range(-1, 2050))  # more than two pipelined chunks of a thousand
    for chat in chats:
        await subs.touch(chat)
    inactive = set(chats[::9])
    for chat in inactive:
        await subs.deactivate(chat)
    await redis.sadd(keys.CHATS, 5000)  # a chat id without a settings hash counts as active
    assert await subs.active_chats() == sorted((set(chats) - inactive) | {5000})


async def test_stats_counts_chats_active_chats_entries_and_market_subscribers(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    assert await subs.stats() == {
        "chats": 0,
        "active_chats": 0,
        "watchlist_entries": 0,
        "market_subscribers": 0,
    }
    for chat in (1, 2, 3):
        await subs.touch(chat)
    await subs.watch(1, ["01810", "00700"])
    await subs.watch(2, ["01810"])
    await subs.deactivate(3)
    await subs.set_market(2, True)
    assert await subs.stats() == {
        "chats": 3,
        "active_chats": 2,
        "watchlist_entries": 3,
        "market_subscribers": 1,
    }


# --- watchlists and the reverse index ----------------------------------------------------------------------------


async def test_watchers_index_every_chat_per_code(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.watch(1, ["01810", "00700"])
    await subs.watch(-2, ["00700"])
    await subs.watch(3, ["AAPL"])
    assert await subs.watchers("00700") == {1, -2}
    assert await subs.watchers("01810") == {1}
    assert await subs.watchers("09988") == set()
    assert await subs.unwatch(1, ["00700", "00700"]) == ["00700"]
    assert await subs.watchers("00700") == {-2}
    assert await subs.unwatch(1, ["00700"]) == []  # not watched any more: nothing removed, nothing written
    assert await subs.watchlist(1) == ["01810"]


async def test_the_cap_counts_codes_already_watched_and_frees_up_on_unwatch(redis: Redis) -> None:
    assert SubscriptionStore(redis).cap == keys.WATCHLIST_CAP
    subs = SubscriptionStore(redis, cap=2)
    assert await subs.watch(1, ["00001", "00002"]) == (["00001", "00002"], [], [])
    assert await subs.watch(1, ["00003", "00001"]) == ([], ["00001"], ["00003"])
    assert await subs.watchers("00003") == set()  # refused codes are not indexed either
    await subs.unwatch(1, ["00002"])
    assert await subs.watch(1, ["00003", "00004"]) == (["00003"], [], ["00004"])
    assert await subs.watchlist(1) == ["00001", "00003"]
    assert await subs.watch(2, ["00004"]) == (["00004"], [], [])  # the cap is per chat


# --- settings round trips ----------------------------------------------------------------------------------------


async def test_language_round_trip_and_refusal(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    assert LANGUAGES == ("en", "zh")
    await subs.set_lang(1, "zh")
    assert (await subs.settings(1)).lang == "zh"
    with pytest.raises(ValueError, match="language must be one of"):
        await subs.set_lang(1, "fr")
    assert (await subs.settings(1)).lang == "zh"  # unchanged
    await redis.hset(keys.chat_settings(2), "lang", "fr")  # written by hand or by an older version
    assert (await subs.settings(2)).lang == "en"


async def test_quiet_hours_round_trip_and_clear(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.set_quiet(1, parse_quiet("22:30-07:15"))
    assert await redis.hget(keys.chat_settings(1), "quiet") == b"22:30-07:15"
    assert (await subs.settings(1)).quiet == (time(22, 30), time(7, 15))
    await subs.set_quiet(1, parse_quiet("9-17"))
    assert (await subs.settings(1)).quiet == (time(9, 0), time(17, 0))
    await subs.set_quiet(1, None)
    assert (await subs.settings(1)).quiet is None
    assert not await redis.hexists(keys.chat_settings(1), "quiet")


async def test_digest_and_market_toggles(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.set_digest(1, True)
    await subs.set_market(1, True)
    await subs.set_market(2, True)
    first = await subs.settings(1)
    assert (first.digest, first.market) == (True, True)
    assert await subs.market_subscribers() == {1, 2}
    await subs.set_digest(1, False)
    await subs.set_market(1, False)
    first = await subs.settings(1)
    assert (first.digest, first.market) == (False, False)
    assert await subs.market_subscribers() == {2}


async def test_rules_off_and_thresholds_accumulate(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.set_rule(1, "short_ratio_drop", on=False)
    await subs.set_rule(1, "buyback_filed", on=False)
    await subs.set_rule(1, "buyback_filed", on=False)  # twice: still once
    assert (await subs.settings(1)).rules_off == frozenset({"short_ratio_drop", "buyback_filed"})
    assert await redis.hget(keys.chat_settings(1), "rules_off") == b"buyback_filed,short_ratio_drop"
    await subs.set_rule(1, "short_ratio_drop", on=True)
    await subs.set_rule(1, "never_off", on=True)  # on when already on: no change
    assert (await subs.settings(1)).rules_off == frozenset({"buyback_filed"})
    await subs.set_threshold(1, "short_ratio_drop", "z", 3.0)
    await subs.set_threshold(1, "short_ratio_drop", "min_days", 5)
    await subs.set_threshold(1, "_all", "min_severity", 1)
    await subs.set_threshold(1, "short_ratio_drop", "z", 2.5)  # replaces, keeps the other parameter
    expected = {"short_ratio_drop": {"z": 2.5, "min_days": 5}, "_all": {"min_severity": 1}}
    assert (await subs.settings(1)).thresholds == expected
    stored = await redis.hget(keys.chat_settings(1), "thresholds")
    assert stored is not None and json.loads(stored) == expected
    assert (await subs.settings(2)).thresholds == {} and (await subs.settings(2)).rules_off == frozenset()


async def test_settings_many_matches_settings_for_each_chat(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    assert await subs.settings_many([]) == {}
    await subs.touch(1, "private", "zh")
    await subs.set_quiet(1, parse_quiet("22-7"))
    await subs.touch(-2, "group")
    await subs.set_digest(-2, True)
    await subs.set_threshold(-2, "short_ratio_drop", "z", 3.0)
    await subs.deactivate(3)
    chats = [1, -2, 3, 404]  # 404 never talked to the bot
    many = await subs.settings_many(chats)
    assert list(many) == chats
    assert many == {chat: await subs.settings(chat) for chat in chats}
    assert many[404] == ChatSettings(404) and many[3].active is False and many[-2].digest is True


# --- mutes -------------------------------------------------------------------------------------------------------


async def test_mute_round_trip_remute_and_unmute(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    until = NOW + timedelta(days=1)
    await subs.mute(1, "01810", NOW + timedelta(hours=1))
    await subs.mute(1, "01810", until)  # muting again moves the end, one entry
    await subs.mute(1, "buyback_filed", until + timedelta(days=6))
    mutes = await subs.active_mutes(1, NOW)
    assert mutes == {"01810": until, "buyback_filed": until + timedelta(days=6)}
    assert all(moment.tzinfo is not None for moment in mutes.values())
    assert await subs.active_mutes(2, NOW) == {}  # per chat
    assert await subs.unmute(1, "01810") is True
    assert await subs.unmute(1, "01810") is False
    assert set(await subs.active_mutes(1, NOW)) == {"buyback_filed"}


async def test_active_mutes_prunes_expired_ones_and_the_many_form_only_skips_them(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await subs.mute(1, "00700", NOW - timedelta(minutes=1))
    await subs.mute(1, "01810", NOW + timedelta(hours=2))
    await subs.mute(2, "09988", NOW + timedelta(days=7))
    await subs.mute(3, "00005", NOW)  # ends exactly now: no longer in force
    many = await subs.active_mutes_many([1, 2, 3, 4], NOW)
    assert many == {
        1: {"01810": NOW + timedelta(hours=2)},
        2: {"09988": NOW + timedelta(days=7)},
        3: {},
        4: {},
    }
    assert await redis.zcard(keys.mutes(1)) == 2  # skipped, not pruned
    assert {chat: await subs.active_mutes(chat, NOW) for chat in (1, 2, 3, 4)} == many
    assert await redis.zcard(keys.mutes(1)) == 1  # now pruned
    assert await redis.exists(keys.mutes(3)) == 0


# --- command counting ---------------------------------------------------------------------------------------------


async def test_count_command_counts_per_chat_and_minute_and_expires(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    assert [await subs.count_command(1, NOW) for _ in range(3)] == [1, 2, 3]
    assert await subs.count_command(1, NOW + timedelta(seconds=59 - NOW.second)) == 4  # the same minute
    assert await subs.count_command(2, NOW) == 1
    assert await subs.count_command(1, NOW + timedelta(minutes=1)) == 1
    key = keys.command_rate(1, int(NOW.timestamp() // 60))
    assert 0 < await redis.ttl(key) <= keys.COMMAND_RATE_TTL_SECONDS
    assert await subs.command_allowed(1, NOW, per_minute=5) is True  # the fifth
    assert await subs.command_allowed(1, NOW, per_minute=5) is False  # the sixth


# --- group to supergroup migration ---------------------------------------------------------------------------------


async def test_migrate_moves_digests_settings_and_membership_and_leaves_nothing_behind(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    old, new = -4001, -1004001
    await subs.touch(old, "group", "zh")
    await subs.watch(old, ["01810", "00700"])
    await subs.set_quiet(old, parse_quiet("23-7"))
    await subs.set_rule(old, "buyback_filed", on=False)
    await subs.set_threshold(old, "short_ratio_drop", "z", 3.0)
    await subs.mute(old, "01810", NOW + timedelta(hours=3))
    await redis.rpush(keys.digest_queue(old), "fp1", "fp2")
    await subs.touch(7)
    await subs.watch(7, ["00700"])
    before = await subs.settings(old)
    await subs.migrate(old, new)
    after = await subs.settings(new)
    assert after == ChatSettings(
        new,
        lang=before.lang,
        quiet=before.quiet,
        rules_off=before.rules_off,
        thresholds=before.thresholds,
        chat_type="supergroup",
    )
    assert await redis.lrange(keys.digest_queue(new), 0, -1) == [b"fp1", b"fp2"]
    assert await subs.active_mutes(new, NOW) == {"01810": NOW + timedelta(hours=3)}
    assert await subs.watchers("00700") == {7, new}
    assert await redis.smembers(keys.CHATS) == {str(new).encode(), b"7"}
    assert await subs.market_subscribers() == set()  # not opted in before: not after either
    old_keys = (keys.watchlist(old), keys.chat_settings(old), keys.mutes(old), keys.digest_queue(old))
    assert await redis.exists(*old_keys) == 0
    assert await subs.settings(old) == ChatSettings(old)


async def test_thread_round_trip_and_clear_only_the_topic_that_was_lost(redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    chat = -1001234567890
    assert (await subs.settings(chat)).thread_id is None
    await subs.set_thread(chat, 42)
    assert (await subs.settings(chat)).thread_id == 42
    assert (await subs.settings_many([chat]))[chat].thread_id == 42
    await subs.touch(chat, "supergroup")  # every command rewrites the hash: the topic stays
    assert (
        await subs.clear_thread(chat, 41) is False
    )  # /here chose 42 meanwhile: a loss of 41 changes nothing
    assert (await subs.settings(chat)).thread_id == 42
    assert await subs.clear_thread(chat, 42) is True
    assert (await subs.settings(chat)).thread_id is None
    assert await subs.clear_thread(chat, 42) is False
    await subs.set_thread(chat, 7)
    await subs.set_thread(chat, None)  # /here in General
    assert keys.THREAD_FIELD.encode() not in await redis.hgetall(keys.chat_settings(chat))
