"""Fair service: one chat's updates in order, chats in parallel; a command budget per sender; group admin checks.

Three pieces, each small:

* `ChatOrderedProcessor`, the Application's update processor (``ApplicationBuilder().concurrent_updates(...)``):
  updates of different chats run concurrently (up to `max_concurrent_updates` chats at a time), updates of one chat
  run one after another in arrival order. A chat that is being served has a lane (a FIFO of waiting updates); an
  update arriving for it joins the lane and gives its concurrency slot straight back, so a flooding chat occupies
  one slot however many updates it sends, and a quiet chat never waits behind it.
* `spend`: the per-minute budget shared by commands and button presses, counted in Redis per chat in private chats
  and channels and per member in groups. The first update over the budget is answered once ("slow down"); the
  rest of the minute is dropped without a word and without waiting.
* `may_change_group`: in groups only administrators and the owner change the watchlist and settings; Telegram is
  asked (getChatMember) once per member every ten minutes, the answer kept in Redis.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable
from datetime import datetime
from enum import Enum
from typing import Any

from redis.asyncio import Redis
from telegram import Bot, Chat, Update, User
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import BaseUpdateProcessor

from alerts.store import keys

log = logging.getLogger(__name__)

MAX_CONCURRENT_CHATS = 64  # chats served at the same moment; more wait for a free slot, in arrival order
MAX_PENDING_PER_CHAT = 500  # updates waiting in one chat's lane; beyond this a flood is dropped at the door
GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})


def lane_key(update: object) -> int | None:
    """The chat an update belongs to (its sender for chat-less updates); None: no ordering needed."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id  # user ids are the ids of their private chats
    return None


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Runs chats in parallel and each chat's updates in order (see the module docstring)."""

    def __init__(
        self, max_concurrent_updates: int = MAX_CONCURRENT_CHATS, *, max_pending: int = MAX_PENDING_PER_CHAT
    ) -> None:
        super().__init__(max_concurrent_updates)
        self.max_pending = max_pending
        self.dropped = 0  # updates refused because their chat's lane was full
        self._lanes: dict[int, deque[Awaitable[Any]]] = {}  # only chats being served: bounded by live work

    @property
    def busy_chats(self) -> int:
        """Chats with an update being handled right now."""
        return len(self._lanes)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Serve `coroutine` now, or queue it behind the update of the same chat being served."""
        key = lane_key(update)
        if key is None:
            await coroutine
            return
        # No await between the look-up and the registration: the lane's order is the order of arrival.
        lane = self._lanes.get(key)
        if lane is not None:
            if len(lane) >= self.max_pending:
                self.dropped += 1
                _discard(coroutine)
                if self.dropped % 100 == 1:
                    log.warning(
                        "chat %s floods: %d updates waiting, update dropped (%d so far)",
                        key,
                        len(lane),
                        self.dropped,
                    )
                return
            lane.append(coroutine)
            return
        lane = deque()
        self._lanes[key] = lane
        try:
            await _run(coroutine)
            while lane:
                await _run(lane.popleft())
        finally:
            del self._lanes[key]
            while lane:  # cancelled (shutdown): close what never ran, so no coroutine is left un-awaited
                _discard(lane.popleft())

    async def initialize(self) -> None:
        """Nothing to allocate: lanes exist only while a chat is being served."""

    async def shutdown(self) -> None:
        """Forget lanes left by a cancelled run."""
        for lane in self._lanes.values():
            while lane:
                _discard(lane.popleft())
        self._lanes.clear()


async def _run(coroutine: Awaitable[Any]) -> None:
    try:
        await coroutine
    except Exception:  # Application.process_update reports handler errors itself; this keeps the lane going
        log.exception("update processing failed")


def _discard(coroutine: Awaitable[Any]) -> None:
    if inspect.iscoroutine(coroutine):
        coroutine.close()


class Verdict(Enum):
    """What the budget says about one command or button press."""

    OK = "ok"  # within the budget: serve it
    WARN = "warn"  # the first one over: say "slow down" once
    DROP = "drop"  # over, and already told: ignore it


def budget_key(chat: Chat, user: User | None, minute: int) -> str:
    """Redis counter of the sender's commands in `minute`: per member in groups, per chat elsewhere."""
    if chat.type in GROUP_TYPES and user is not None:
        return keys.command_rate_member(chat.id, user.id, minute)
    return keys.command_rate(chat.id, minute)


async def spend(redis: Redis, chat: Chat, user: User | None, now: datetime, per_minute: int) -> Verdict:
    """Count one command or button press against the sender's budget for the current minute."""
    key = budget_key(chat, user, int(now.timestamp() // 60))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, keys.COMMAND_RATE_TTL_SECONDS)
        count, _ = await pipe.execute()
    if int(count) <= per_minute:
        return Verdict.OK
    return Verdict.WARN if int(count) == per_minute + 1 else Verdict.DROP


async def may_change_group(
    bot: Bot, redis: Redis, chat: Chat, user: User | None, sender_chat: Chat | None = None
) -> bool:
    """True outside groups; in a group, True for its administrators and owner (getChatMember, cached 10 min).

    A message an anonymous administrator sends carries the group itself as its sender chat. When Telegram cannot
    be asked (an error, the bot removed), the answer is no, and it is not cached.
    """
    if chat.type not in GROUP_TYPES:
        return True
    if sender_chat is not None and sender_chat.id == chat.id:
        return True
    if user is None:
        return False
    key = keys.chat_admin(chat.id, user.id)
    cached = await redis.get(key)
    if cached is not None:
        return bool(cached == b"1")
    try:
        member = await bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("getChatMember %s/%s failed: %s", chat.id, user.id, exc)
        return False
    admin = member.status in ADMIN_STATUSES
    await redis.set(key, "1" if admin else "0", ex=keys.CHAT_ADMIN_TTL_SECONDS)
    return admin
