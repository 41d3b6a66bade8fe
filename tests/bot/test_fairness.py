"""Fair service: chats in parallel and each chat in order, one budget for commands and presses, group admins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from telegram import Chat, Message, Update
from telegram.ext import Application

from alerts.store.subscriptions import SubscriptionStore
from bot.fairness import ChatOrderedProcessor
from bot.i18n import t
from tests.support.botapi import BotApi
from tests.support.bothelpers import ADMIN, DEMO_NOW, running_bot, seed_demo

A, B = 2001, 2002
GROUP = -4100
MEMBER, OTHER_MEMBER, GROUP_ADMIN = 2101, 2102, 2103
SLOW_DOWN = t("en", "rate_limited")
ADMINS_ONLY = t("en", "group_admins_only")


@pytest.fixture
async def fair_app(api: BotApi, redis: Redis, redis_url: str) -> AsyncIterator[Application]:
    """The real Application on a clock that stands still: every budget count falls in one minute."""
    await seed_demo(redis)
    async with running_bot(api, redis_url, clock=lambda: DEMO_NOW) as application:
        await application.bot_data["deps"].view()
        yield application
    assert application.bot_data.get("handler_errors", []) == []


async def _settled(api: BotApi, app: Application) -> None:
    """Every pushed update was fetched and handled."""
    processor = app.update_processor
    assert isinstance(processor, ChatOrderedProcessor)
    await api.until(lambda: not api.pending_updates and processor.busy_chats == 0, timeout=15)
    await asyncio.sleep(0.2)  # a last reply on its way to the stand-in


def _update(update_id: int, chat_id: int) -> Update:
    chat = Chat(chat_id, "private")
    return Update(update_id, message=Message(update_id, DEMO_NOW, chat, text="x"))


# --------------------------------------------------------------------------------------------- the processor


async def test_processor_keeps_a_chats_order_and_runs_chats_side_by_side() -> None:
    processor = ChatOrderedProcessor(4)
    log: list[str] = []
    b_started = asyncio.Event()

    async def handle(name: str, pause: float = 0.0, wait_for_b: bool = False) -> None:
        log.append(f"{name} start")
        if name == "B1":
            b_started.set()
        if wait_for_b:  # deadlocks (times out) unless chat B is served while A1 is still running
            await asyncio.wait_for(b_started.wait(), 2)
        await asyncio.sleep(pause)
        log.append(f"{name} end")

    async with processor:
        # As the Application does: one task per update, created in arrival order.
        tasks = [
            asyncio.create_task(processor.process_update(_update(1, A), handle("A1", 0.05, wait_for_b=True))),
            asyncio.create_task(processor.process_update(_update(2, A), handle("A2"))),
            asyncio.create_task(processor.process_update(_update(3, B), handle("B1", 0.01))),
            asyncio.create_task(processor.process_update(_update(4, A), handle("A3"))),
        ]
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    a_events = [event for event in log if event.startswith("A")]
    assert a_events == ["A1 start", "A1 end", "A2 start", "A2 end", "A3 start", "A3 end"]
    assert log.index("B1 start") < log.index("A1 end")  # B did not wait for A
    assert processor.busy_chats == 0


async def test_processor_gives_a_waiting_updates_slot_back_and_bounds_a_lane() -> None:
    processor = ChatOrderedProcessor(2, max_pending=3)
    release = asyncio.Event()
    done: list[int] = []

    async def handle(n: int) -> None:
        if n == 0:
            await release.wait()
        done.append(n)

    async with processor:
        flood = [asyncio.create_task(processor.process_update(_update(n, A), handle(n))) for n in range(10)]
        await asyncio.sleep(0.05)
        # Nine updates of A wait behind the first, yet A holds one of the two slots: B is served at once.
        assert processor.current_concurrent_updates == 1
        await asyncio.wait_for(processor.process_update(_update(99, B), handle(99)), 1)
        release.set()
        await asyncio.wait_for(asyncio.gather(*flood), 5)
    assert done == [99, 0, 1, 2, 3]  # A in order; the six beyond the lane's bound were dropped
    assert processor.dropped == 6


# --------------------------------------------------------------------------------------------- through the bot


async def test_a_flooding_chat_does_not_hold_up_another(fair_app: Application, api: BotApi) -> None:
    api.delay("sendMessage", 0.3, times=3)  # the first replies are slow: A's chain takes at least two of them
    for _ in range(20):
        api.push_message(A, "/help")
    api.push_message(B, "/start")
    await api.await_sent(1, chat_id=B, timeout=10)
    await api.await_sent(20, chat_id=A, timeout=20)
    order = [c.chat_id for c in api.calls("sendMessage") if c.ok]
    # Served one update at a time, B would come after all twenty; served side by side, before A's third.
    assert order.index(B) < [i for i, chat in enumerate(order) if chat == A][2]
    assert all("/watch" in text for text in api.texts(A))  # all twenty within the budget, all answered


async def test_one_chats_updates_are_handled_in_order(
    fair_app: Application, api: BotApi, redis: Redis
) -> None:
    for text in ("/watch 1810 700", "/unwatch 1810", "/list", "/unwatch 700", "/list"):
        api.push_message(A, text)
    texts = [m["text"] for m in await api.await_sent(5, chat_id=A, timeout=15)]
    assert "Watching" in texts[0] and "Removed 01810" in texts[1]
    assert "00700" in texts[2] and "01810" not in texts[2]
    assert "Removed 00700" in texts[3] and "00700" not in texts[4]
    assert await SubscriptionStore(redis).watchlist(A) == []


async def test_button_presses_count_toward_the_same_budget(
    fair_app: Application, api: BotApi, redis: Redis
) -> None:
    api.push_message(A, "/settings")
    await api.await_sent(1, chat_id=A, timeout=10)
    for _ in range(60):
        api.push_callback(A, "set:m")
    api.push_message(A, "/help")  # the budget is spent: no answer
    await _settled(api, fair_app)
    answers = [params.get("text") for params in api.answered.values()]
    assert len(answers) == 20  # 19 presses served (the /settings took one unit), then one "slow down"
    assert answers.count(SLOW_DOWN) == 1 and answers[-1] == SLOW_DOWN
    assert len(api.messages(A)) == 1  # neither the dropped presses nor the /help got a word
    assert (await SubscriptionStore(redis).settings(A)).market  # off at first, toggled 19 times: on
    assert len(api.calls("answerCallbackQuery")) == 20


async def test_a_flooding_group_member_does_not_silence_the_others(
    fair_app: Application, api: BotApi
) -> None:
    for _ in range(25):
        api.push_message(GROUP, "/help", chat_type="group", user_id=MEMBER)
    await api.await_sent(21, chat_id=GROUP, timeout=20)
    api.push_message(GROUP, "/help", user_id=OTHER_MEMBER)
    texts = [m["text"] for m in await api.await_sent(22, chat_id=GROUP, timeout=10)]
    assert sum(SLOW_DOWN in text for text in texts) == 1
    assert "/watch" in texts[21]  # the other member is served
    api.push_message(GROUP, "/help", user_id=MEMBER)  # the flooder stays silenced for the minute
    await _settled(api, fair_app)
    assert len(api.messages(GROUP)) == 22


async def test_group_changes_need_an_admin_checked_once(
    fair_app: Application, api: BotApi, redis: Redis
) -> None:
    api.set_member(GROUP, GROUP_ADMIN, "administrator")
    api.set_member(GROUP, MEMBER, "member")
    subs = SubscriptionStore(redis)
    api.push_message(GROUP, "/watch 1810 700", chat_type="supergroup", user_id=GROUP_ADMIN)
    await api.await_sent(1, chat_id=GROUP, timeout=10)
    assert await subs.watchlist(GROUP) == ["00700", "01810"]
    for text in ("/unwatch 1810", "/lang zh", "/mute 700 1d", "/digest on"):
        api.push_message(GROUP, text, user_id=MEMBER)
    texts = [m["text"] for m in await api.await_sent(5, chat_id=GROUP, timeout=10)]
    assert texts[1:] == [ADMINS_ONLY] * 4
    api.push_message(GROUP, "/list", user_id=MEMBER)  # reading is for everyone
    assert "01810" in (await api.await_sent(6, chat_id=GROUP, timeout=10))[5]["text"]
    api.push_message(GROUP, "/unwatch 1810", user_id=GROUP_ADMIN)
    assert "Removed 01810" in (await api.await_sent(7, chat_id=GROUP, timeout=10))[6]["text"]
    settings = await subs.settings(GROUP)
    assert await subs.watchlist(GROUP) == ["00700"] and settings.lang == "en" and not settings.digest
    # A member's settings button is refused too; an admin's works.
    api.push_message(GROUP, "/settings", user_id=MEMBER)
    await api.await_sent(8, chat_id=GROUP, timeout=10)
    api.push_callback(GROUP, "set:d", user_id=MEMBER)
    await api.until(lambda: len(api.answered) == 1, timeout=10)
    assert list(api.answered.values())[0].get("text") == ADMINS_ONLY
    assert not (await subs.settings(GROUP)).digest
    api.push_callback(GROUP, "set:d", user_id=GROUP_ADMIN)
    await api.until(lambda: len(api.answered) == 2, timeout=10)
    assert (await subs.settings(GROUP)).digest
    # getChatMember was asked once per member, the later checks came from the cache.
    asked = [(c.params["chat_id"], int(c.params["user_id"])) for c in api.calls("getChatMember")]
    assert sorted(asked) == [(GROUP, MEMBER), (GROUP, GROUP_ADMIN)]


async def test_operator_commands_in_a_group_are_answered_privately(
    fair_app: Application, api: BotApi
) -> None:
    api.push_message(ADMIN, "/start")
    await api.await_sent(1, chat_id=ADMIN, timeout=10)
    api.push_message(GROUP, "/stats", chat_type="group", user_id=ADMIN)
    private = await api.await_sent(2, chat_id=ADMIN, timeout=10)
    group = await api.await_sent(1, chat_id=GROUP, timeout=10)
    assert "Stats" in private[1]["text"]
    assert [m["text"] for m in group] == [t("en", "admin_sent_privately")]
    # An operator who never opened a private chat with the bot is told so in the group, still without the stats.
    api.block(ADMIN)
    api.push_message(GROUP, "/stats", user_id=ADMIN)
    group = await api.await_sent(2, chat_id=GROUP, timeout=10)
    assert group[1]["text"] == t("en", "admin_private_blocked")
    assert not any("Stats" in m["text"] for m in api.messages(GROUP))
    # A member who is no operator gets the usual refusal.
    api.push_message(GROUP, "/stats", user_id=MEMBER)
    group = await api.await_sent(3, chat_id=GROUP, timeout=10)
    assert "for the bot's operators" in group[2]["text"]
