"""The real python-telegram-bot Application over HTTP against the Bot API stand-in, with a real redis-server."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import pytest
from redis.asyncio import Redis
from telegram.ext import Application

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from alerts.routing import flush_digest, route
from alerts.store import keys
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore
from bot.delivery import DeliveryWorker, RateLimiter
from tests.support.botapi import BotApi, parse_html
from tests.support.bothelpers import ADMIN, app_deps, running_bot

USER, OTHER, THIRD = 1001, 1002, 1003


def _alert(
    code: str = "01810", rule: str = "buyback_filed", day: date = date(2025, 11, 21), **kw: object
) -> Alert:
    base: dict[str, object] = dict(
        rule=rule,
        code=code,
        trade_date=day,
        severity="notice",
        name="XIAOMI-W",
        why=f"{rule} on {code} (HK$38.58 < 40 & more)",
        facts=(Fact("shares", 10400000, "shares"),),
    )
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


async def _say(api: BotApi, chat: int, text: str, n: int, **kw: object) -> list[str]:
    """Send a message as a user and wait until the chat has `n` messages from the bot in total."""
    api.push_message(chat, text, **kw)  # type: ignore[arg-type]
    await api.await_sent(n, chat_id=chat, timeout=10)
    return api.texts(chat)


async def test_start_registers_menu_in_two_languages(app: Application, api: BotApi) -> None:
    texts = await _say(api, USER, "/start", 1)
    assert "positioning-bot" in texts[0]
    commands = api.calls("setMyCommands")
    assert len(commands) == 8  # default, group members, group admins, the operator's chat; each en and zh
    names = [c["command"] for c in commands[0].params["commands"]]
    assert {"watch", "card", "quiet", "digest", "lang", "status", "export", "import"} <= set(names)
    assert "stats" not in names and "here" not in names
    assert commands[1].params.get("language_code") == "zh"


async def test_watch_list_unwatch_flow(app: Application, api: BotApi, redis: Redis) -> None:
    texts = await _say(api, USER, "/watch 1810 700.HK xiaomi HK9988 xiaomo", 1)
    assert "Watching" in texts[0]
    assert "01810" in texts[0] and "00700" in texts[0] and "09988" in texts[0]
    assert "I don't know" in texts[0] and "Did you mean" in texts[0]  # xiaomo → 01810 suggested
    subs = SubscriptionStore(redis)
    assert await subs.watchlist(USER) == ["00700", "01810", "09988"]
    assert await subs.watchers("00700") == {USER}
    texts = await _say(api, USER, "/list", 2)
    assert "Watching 3" in texts[1] and "TENCENT" in texts[1]
    texts = await _say(api, USER, "/unwatch 700 5", 3)
    assert "Removed 00700" in texts[2] and "not watching 00005" in texts[2]
    assert await subs.watchers("00700") == set()
    texts = await _say(api, USER, "/watch", 4)
    assert "Which stocks" in texts[3]


async def test_card_short_why_top_history_and_plain_text(app: Application, api: BotApi) -> None:
    texts = await _say(api, USER, "/card 1810", 1)
    card = parse_html(texts[0])[0]  # the text as the user reads it
    assert "01810" in card and "Short ratio" in card and "SFC short position" in card
    assert "Buybacks, last 20 sessions" in card and "Lei Jun" in card and "Southbound holds" in card
    markup = api.messages(USER)[0]["reply_markup"]
    assert [b["callback_data"] for b in markup["inline_keyboard"][0]] == ["chart:01810", "mute:01810:1d"]
    texts = await _say(api, USER, "/short 700", 2)
    assert "short-selling ratio" in texts[1] and "28/11" in texts[1]
    texts = await _say(api, USER, "/why short_ratio_spike", 3)
    assert "not a position" in texts[2]
    texts = await _say(api, USER, "/why nonsense", 4)
    assert "Which rule" in texts[3]
    texts = await _say(api, USER, "小米", 5)
    assert "positioning card" in texts[4]
    texts = await _say(api, USER, "hello there", 6)
    assert "Send a stock code" in texts[5]
    texts = await _say(api, USER, "/card 99999", 7)
    assert "I don't know" in texts[6]
    texts = await _say(api, USER, "/insiders xiaomi", 8)
    assert "Lei Jun" in texts[7] and "bought 2,600,000 sh at avg HK$38.58" in texts[7]
    texts = await _say(api, USER, "/buybacks 1810", 9)
    assert "10,400,000 sh" in texts[8] and "11,100,000 sh" in texts[8]
    texts = await _say(api, USER, "/top", 10)
    assert "Biggest anomalies" in texts[9] or "No alerts yet" in texts[9]


async def test_language_switch(app: Application, api: BotApi) -> None:
    texts = await _say(api, USER, "/lang zh", 1)
    assert texts[0] == "語言：繁體中文。"
    texts = await _say(api, USER, "/watch 1810", 2)
    assert "已關注" in texts[1]
    texts = await _say(api, USER, "/lang fr", 3)
    assert "/lang en" in texts[2]
    texts = await _say(api, OTHER, "/start", 1, language_code="zh-hans")
    assert "歡迎" in texts[0] or "關注" in texts[0]


async def test_fanout_groups_one_message_per_chat_with_buttons_for_single(
    app: Application, api: BotApi
) -> None:
    await _say(api, USER, "/watch 1810", 1)
    await _say(api, OTHER, "/watch 1810 700", 1)
    await _say(api, THIRD, "/watch 700", 1)
    d = app_deps(app)
    alerts = [
        _alert(),
        _alert(rule="insider_buy_near_round_number", identity="DA1"),
        _alert(code="00700", name="TENCENT"),
    ]
    report = await route(alerts, d.subs, d.outbox, d.clock())
    assert report.enqueued == 3
    user_msgs = await api.await_sent(2, chat_id=USER, timeout=10)
    other_msgs = await api.await_sent(2, chat_id=OTHER, timeout=10)
    third_msgs = await api.await_sent(2, chat_id=THIRD, timeout=10)
    assert "2 alerts" in user_msgs[1]["text"] and "reply_markup" not in user_msgs[1]
    assert "3 alerts" in other_msgs[1]["text"]
    assert "&amp; more" in third_msgs[1]["text"]  # escaped
    buttons = [b["callback_data"] for b in third_msgs[1]["reply_markup"]["inline_keyboard"][0]]
    assert buttons == ["card:00700", "chart:00700", "mute:00700:1d"]
    assert all(len(b.encode()) <= 64 for b in buttons)
    # Same alerts again (a re-run): nothing new.
    again = await route(alerts, d.subs, d.outbox, d.clock())
    assert again.enqueued == 0
    await asyncio.sleep(0.5)
    assert len(api.messages(OTHER)) == 2


async def test_callbacks_are_always_answered(app: Application, api: BotApi, redis: Redis) -> None:
    await _say(api, USER, "/watch 1810", 1)
    api.push_callback(USER, "card:01810")
    await api.await_sent(2, chat_id=USER, timeout=10)
    assert "positioning card" in api.texts(USER)[1]
    api.push_callback(USER, "mute:01810:1d")
    api.push_callback(USER, "card:<script>")
    api.push_callback(USER, "x" * 64)
    await api.until(lambda: len(api.answered) >= 4, timeout=10)
    answers = [a.get("text", "") for a in api.answered.values()]
    assert answers[0] == "" and "Muted 01810" in answers[1]
    assert answers[2] == answers[3] == "This button has expired."
    assert "01810" in await SubscriptionStore(redis).active_mutes(USER, app_deps(app).clock())


async def test_settings_keyboard_toggles(app: Application, api: BotApi, redis: Redis) -> None:
    await _say(api, USER, "/settings", 1)
    keyboard = api.messages(USER)[0]["reply_markup"]["inline_keyboard"]
    datas = [b["callback_data"] for row in keyboard for b in row]
    assert "set:r:0" in datas and "set:m" in datas and "set:l" in datas
    message_id = api.calls("sendMessage")[-1].result["message_id"]
    api.push_callback(USER, "set:r:0", message_id=message_id)
    api.push_callback(USER, "set:m", message_id=message_id)
    await api.until(lambda: len(api.calls("editMessageReplyMarkup")) >= 2, timeout=10)
    settings = await SubscriptionStore(redis).settings(USER)
    assert "short_ratio_spike" in settings.rules_off
    assert settings.market is True
    edited = api.message(USER, message_id)
    assert edited is not None
    first = edited["reply_markup"]["inline_keyboard"][0][0]["text"]
    assert first.startswith("🚫")


async def test_mute_quiet_digest_commands(app: Application, api: BotApi, redis: Redis) -> None:
    texts = await _say(api, USER, "/mute 1810 2h", 1)
    assert "Muted 01810" in texts[0]
    texts = await _say(api, USER, "/mute buyback_filed 1w", 2)
    assert "Muted buyback_filed" in texts[1]
    texts = await _say(api, USER, "/mute 1810 forever", 3)
    assert "30m, 12h, 1d or 2w" in texts[2]
    texts = await _say(api, USER, "/quiet 23:00-07:30", 4)
    assert "23:00–07:30" in texts[3]
    texts = await _say(api, USER, "/quiet whenever", 5)
    assert "22:30-07:30" in texts[4]
    texts = await _say(api, USER, "/digest on", 6)
    assert "Digest on" in texts[5]
    settings = await SubscriptionStore(redis).settings(USER)
    assert settings.digest and settings.quiet is not None
    mutes = await SubscriptionStore(redis).active_mutes(USER, app_deps(app).clock())
    assert set(mutes) == {"01810", "buyback_filed"}
    texts = await _say(api, USER, "/unmute 1810", 7)
    assert "no longer muted" in texts[6]


async def test_muted_stock_is_not_delivered(app: Application, api: BotApi) -> None:
    await _say(api, USER, "/watch 1810 700", 1)
    await _say(api, USER, "/mute 1810 1d", 2)
    d = app_deps(app)
    report = await route([_alert(), _alert(code="00700", name="TENCENT")], d.subs, d.outbox, d.clock())
    assert report.skipped == {"01810 muted": 1}
    msgs = await api.await_sent(3, chat_id=USER, timeout=10)
    assert "00700" in msgs[2]["text"] and "01810" not in msgs[2]["text"]


async def test_quiet_hours_hold_then_send_silently(app: Application, api: BotApi, redis: Redis) -> None:
    await _say(api, USER, "/watch 1810", 1)
    now = app_deps(app).clock()
    start, end = (now - timedelta(hours=1)), (now + timedelta(hours=2))
    await _say(api, USER, f"/quiet {start:%H:%M}-{end:%H:%M}", 2)
    d = app_deps(app)
    await route([_alert()], d.subs, d.outbox, now)
    await asyncio.sleep(0.6)
    assert len(api.messages(USER)) == 2  # held
    later = DeliveryWorker(
        app.bot, Outbox(redis), SubscriptionStore(redis), now=lambda: now + timedelta(hours=2, minutes=1)
    )
    report = await later.drain()
    assert report.sent == 1
    held = api.messages(USER)[2]
    assert held["disable_notification"] is True and "buyback_filed" in held["text"]


async def test_digest_sends_one_message(app: Application, api: BotApi) -> None:
    await _say(api, USER, "/watch 1810 700", 1)
    await _say(api, USER, "/digest on", 2)
    d = app_deps(app)
    now = d.clock()
    report = await route([_alert(), _alert(code="00700", name="TENCENT")], d.subs, d.outbox, now)
    assert report.digested == 2
    await asyncio.sleep(0.5)
    assert len(api.messages(USER)) == 2
    assert await flush_digest(d.subs, d.outbox, USER, now)
    msgs = await api.await_sent(3, chat_id=USER, timeout=10)
    assert "Daily digest" in msgs[2]["text"] and "2 alert(s)" in msgs[2]["text"]


async def test_blocked_user_is_marked_inactive_and_skipped(
    app: Application, api: BotApi, redis: Redis
) -> None:
    await _say(api, USER, "/watch 1810", 1)
    api.block(USER)
    d = app_deps(app)
    await route([_alert()], d.subs, d.outbox, d.clock())
    await api.until(lambda: any(c.status == 403 for c in api.calls("sendMessage")), timeout=10)
    await api.until(lambda: True, timeout=0.1)
    subs = SubscriptionStore(redis)
    await asyncio.sleep(0.3)
    assert (await subs.settings(USER)).active is False
    attempts = len(api.calls("sendMessage"))
    await route([_alert(rule="insider_buy_near_round_number")], d.subs, d.outbox, d.clock())
    await asyncio.sleep(0.6)
    assert len(api.calls("sendMessage")) == attempts  # no further attempt to a blocked chat
    assert await d.outbox.pending() == 0


async def test_migrated_group_gets_its_alert_at_the_new_id(
    app: Application, api: BotApi, redis: Redis
) -> None:
    group, supergroup = -4001, -1004001
    await _say(api, group, "/watch@positioning_test_bot 1810", 1, chat_type="group")
    api.migrate(group, supergroup)
    d = app_deps(app)
    await route([_alert()], d.subs, d.outbox, d.clock())
    msgs = await api.await_sent(1, chat_id=supergroup, timeout=10)
    assert "buyback_filed" in msgs[0]["text"]
    subs = SubscriptionStore(redis)
    assert await subs.watchers("01810") == {supergroup}
    await asyncio.sleep(0.5)
    assert len(api.messages(supergroup)) == 1


async def test_retry_after_is_honoured_then_delivered_once(app: Application, api: BotApi) -> None:
    await _say(api, USER, "/watch 1810", 1)
    api.fail_next("sendMessage", 429, retry_after=1, chat_id=USER)
    d = app_deps(app)
    await route([_alert()], d.subs, d.outbox, d.clock())
    await api.until(
        lambda: api.too_many >= 1 or any(c.status == 429 for c in api.calls("sendMessage")), timeout=5
    )
    refused_at = next(c.time for c in api.calls("sendMessage") if c.status == 429)
    msgs = await api.await_sent(2, chat_id=USER, timeout=10)
    accepted = [c for c in api.calls("sendMessage") if c.ok and c.chat_id == USER][-1]
    assert accepted.time - refused_at >= 0.9  # waited retry_after
    assert "buyback_filed" in msgs[1]["text"]
    await asyncio.sleep(0.5)
    assert len(api.messages(USER)) == 2


async def test_bad_markup_is_dead_lettered_and_admins_told(app: Application, api: BotApi) -> None:
    d = app_deps(app)
    await d.subs.touch(USER)
    await d.outbox.put(
        OutboxItem(id=item_id(USER, "text", ["bad"]), chat_id=USER, kind="text", text="<script>x</script>"),
        d.clock(),
    )
    notice = await api.await_sent(1, chat_id=ADMIN, timeout=10)
    assert "refused" in notice[0]["text"] and str(USER) in notice[0]["text"]
    dead = await d.outbox.dead()
    assert len(dead) == 1 and "parse entities" in dead[0]["reason"].lower()


async def test_restart_mid_delivery_sends_nothing_twice(api: BotApi, redis: Redis, redis_url: str) -> None:
    """A worker dies after the first part of a long message; the next one sends only what is left."""
    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(USER)
    await subs.watch(USER, [f"{i:05d}" for i in range(1, 60)])
    now = datetime.now(HK_TZ)  # the running bot delivers by the real clock too: leases must agree with it
    # Today's alerts: alerts older than the routed marks are refused.
    alerts = [_alert(code=f"{i:05d}", why="x" * 300, day=now.date()) for i in range(1, 60)]
    await route(alerts, subs, outbox, now)

    class Crash(Exception):
        pass

    async with running_bot(api, redis_url, drain_interval=3600) as application:
        bot = application.bot
        sent = 0
        original = bot.send_message

        async def crash_after_first(*args: object, **kwargs: object) -> object:
            nonlocal sent
            if sent == 1:
                raise Crash  # the process dies here, after part 0 was accepted and recorded
            sent += 1
            return await original(*args, **kwargs)  # type: ignore[arg-type]

        first = DeliveryWorker(bot, outbox, subs, limiter=RateLimiter(chat_interval=0.0), now=lambda: now)
        object.__setattr__(first, "bot", type("B", (), {"send_message": staticmethod(crash_after_first)})())
        with pytest.raises(Crash):
            await first.drain()
        parts_before = len(api.messages(USER))
        assert parts_before == 1
        restarted = DeliveryWorker(
            bot,
            Outbox(redis),
            SubscriptionStore(redis),
            limiter=RateLimiter(chat_interval=0.0),
            now=lambda: now + timedelta(seconds=keys.CLAIM_SECONDS + 1),
        )
        report = await restarted.drain()
        texts = api.texts(USER)
        assert report.sent == len(texts) - 1 >= 1
        assert len(texts) == len(set(texts))  # no part twice
        assert await outbox.pending() == 0
        joined = "\n".join(texts)
        assert all(f"<b>{i:05d}</b>" in joined for i in range(1, 60))


async def test_admin_commands(app: Application, api: BotApi) -> None:
    texts = await _say(api, USER, "/stats", 1)
    assert "for the bot's operators" in texts[0]
    texts = await _say(api, ADMIN, "/stats", 1)
    assert "Chats: " in texts[0] and "Outbox pending: " in texts[0]
    await _say(api, OTHER, "/start", 1)
    api.push_message(ADMIN, "/broadcast Maintenance <tonight> & tomorrow")
    # The reply and the broadcast itself (the admin chat is active too) may arrive in either order.
    await api.until(
        lambda: any("Queued for 3 chats" in t for t in api.texts(ADMIN)), timeout=10
    )  # USER, OTHER, ADMIN
    other = await api.await_sent(2, chat_id=OTHER, timeout=10)
    assert "Maintenance &lt;tonight&gt; &amp; tomorrow" in other[1]["text"]


async def test_broadcast_reaches_every_active_chat_and_no_inactive_one(
    app: Application, api: BotApi, redis: Redis
) -> None:
    # More chats than one pipeline chunk (1,000), with some marked inactive (they blocked the bot).
    subs = SubscriptionStore(redis)
    chats = [500_000 + n for n in range(2_300)]
    for chat in chats:
        await subs.touch(chat)
    inactive = set(chats[::7])
    for chat in inactive:
        await subs.deactivate(chat)
    await _say(api, ADMIN, "/start", 1)
    expected = (set(chats) - inactive) | {ADMIN}
    api.push_message(ADMIN, "/broadcast Upgrade at 23:00")
    await api.until(
        lambda: any(f"Queued for {len(expected)} chats" in t for t in api.texts(ADMIN)), timeout=30
    )
    # Queued = still in the outbox or already sent; Redis is read first, so an item done meanwhile was sent before.
    queued = set()
    async for key in redis.scan_iter(match=keys.outbox_item("*"), count=1000):
        raw = await redis.get(key)
        if raw is not None:
            item = OutboxItem.from_json(raw)
            if item.text and "Upgrade at 23:00" in item.text:
                queued.add(item.chat_id)
    sent = {int(m["chat_id"]) for m in api.messages() if "Upgrade at 23:00" in m.get("text", "")}
    assert queued | sent == expected
    assert not (queued | sent) & inactive


async def test_command_rate_limit_replies_once(app: Application, api: BotApi) -> None:
    for _ in range(25):
        api.push_message(USER, "/help")
    await api.await_sent(21, chat_id=USER, timeout=20)
    await asyncio.sleep(0.5)
    texts = api.texts(USER)
    assert len(texts) == 21
    assert sum("wait a minute" in t for t in texts) == 1


async def test_status_lists_every_source(app: Application, api: BotApi) -> None:
    texts = await _say(api, USER, "/status", 1)
    for name in (
        "hkex-short",
        "hkex-short-midday",
        "hkex-quotes",
        "sfc-short-positions",
        "hkex-buybacks",
        "hkex-di",
        "hkex-southbound",
        "hkex-stock-connect-daily",
    ):
        assert f"<code>{name}</code>" in texts[0]


async def test_edited_messages_ignored_channels_and_unknown_commands(
    app: Application, api: BotApi, redis: Redis
) -> None:
    await _say(api, USER, "/start", 1)
    api.push_edited_message(USER, 1, "/watch 1810")
    api.push_channel_post(-1005000, "/watch 1810")
    await api.await_sent(1, chat_id=-1005000, timeout=10)
    assert await SubscriptionStore(redis).watchers("01810") == {-1005000}
    texts = await _say(api, USER, "/frobnicate", 2)
    assert "Unknown command /frobnicate" in texts[1]
    api.push_message(-4002, "/frobnicate", chat_type="group")  # groups: silent unless addressed
    texts = await _say(api, USER, "/help", 3)
    assert "/watch" in texts[2]
    assert api.messages(-4002) == []


async def test_webhook_rejects_requests_without_the_secret(api: BotApi, redis: Redis, redis_url: str) -> None:
    import httpx

    from tests.support.paths import free_port as _free_port

    async with running_bot(api, redis_url) as application:
        await application.updater.stop()
        port = _free_port()
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            webhook_url="https://example.invalid/telegram",
            secret_token="s3cr3t-token",
        )
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "text": "/start",
                "chat": {"id": USER, "type": "private"},
                "from": {"id": USER, "is_bot": False, "first_name": "U"},
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        }
        async with httpx.AsyncClient() as client:
            refused = await client.post(f"http://127.0.0.1:{port}/telegram", json=update)
            wrong = await client.post(
                f"http://127.0.0.1:{port}/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "nope"},
            )
            accepted = await client.post(
                f"http://127.0.0.1:{port}/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3cr3t-token"},
            )
        assert refused.status_code == 403 and wrong.status_code == 403
        assert accepted.status_code == 200
        msgs = await api.await_sent(1, chat_id=USER, timeout=10)
        assert "positioning-bot" in msgs[0]["text"]
        set_webhook = api.calls("setWebhook")[-1]
        assert set_webhook.params["secret_token"] == "s3cr3t-token"


async def test_threshold_button_and_too_many_arguments(app: Application, api: BotApi, redis: Redis) -> None:
    await _say(api, USER, "/settings", 1)
    message_id = api.calls("sendMessage")[-1].result["message_id"]
    api.push_callback(USER, "set:z", message_id=message_id)
    await api.until(lambda: len(api.calls("editMessageReplyMarkup")) >= 1, timeout=10)
    settings = await SubscriptionStore(redis).settings(USER)
    assert settings.thresholds["short_ratio_spike"]["z"] == 2.5
    assert settings.thresholds["short_ratio_drop"]["z"] == 2.5
    texts = await _say(api, USER, "/watch " + " ".join(["1810"] * 60), 2)
    assert "too many arguments" in texts[1]


async def test_timeouts_and_server_errors_are_retried(api: BotApi, redis: Redis, redis_url: str) -> None:
    from telegram import Bot
    from telegram.request import HTTPXRequest

    subs, outbox = SubscriptionStore(redis), Outbox(redis)
    await subs.touch(USER)
    now = datetime.now(HK_TZ)
    await outbox.put(
        OutboxItem(id=item_id(USER, "text", ["t"]), chat_id=USER, kind="text", text="hello"), now
    )
    request = HTTPXRequest(read_timeout=0.3, write_timeout=0.3, connect_timeout=0.3)
    async with Bot(
        "123456789:TEST-token-for-the-stand-in-only_x", base_url=api.base_url, request=request
    ) as bot:
        clock = [now]
        worker = DeliveryWorker(
            bot, outbox, subs, limiter=RateLimiter(chat_interval=0.0), now=lambda: clock[0]
        )
        api.delay("sendMessage", 1.0)
        first = await worker.drain()
        assert first.retried == 1 and first.sent == 0  # TimedOut: backed off, not lost
        api.fail_next("sendMessage", 502)
        clock[0] = now + timedelta(seconds=6)
        second = await worker.drain()
        assert second.retried == 1 and second.sent == 0  # 5xx: backed off again
        clock[0] = now + timedelta(seconds=30)
        third = await worker.drain()
        assert third.sent == 1
        assert await outbox.pending() == 0


async def test_watch_us_tickers_checked_against_the_sec_map(
    app: Application, api: BotApi, redis: Redis
) -> None:
    await redis.hset(keys.US_TICKERS, mapping={"AAPL": "320193", "BABA": "1577552"})
    texts = await _say(api, USER, "/watch AAPL BABA ZZZZQ", 1)
    assert "Watching" in texts[0] and "AAPL" in texts[0] and "BABA" in texts[0]
    assert "I don't know <code>ZZZZQ</code>" in texts[0]
    assert await SubscriptionStore(redis).watchers("AAPL") == {USER}


async def test_watch_us_ticker_refused_while_the_sec_map_is_missing(
    app: Application, api: BotApi, redis: Redis
) -> None:
    # Without the ticker map nothing can be checked: say so, and accept nothing unchecked.
    texts = await _say(api, USER, "/watch ZZZZQ 700", 1)
    assert "I can't check <code>ZZZZQ</code> yet" in texts[0]
    assert "00700" in texts[0]
    assert await SubscriptionStore(redis).watchers("ZZZZQ") == set()
    assert await SubscriptionStore(redis).watchers("00700") == {USER}
