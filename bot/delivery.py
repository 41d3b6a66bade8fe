"""The delivery worker: drain the outbox to Telegram within its limits, classify every error, never crash.

Per item: render to message parts, skip parts already recorded as sent, send each under the rate limiter,
record each part right after Telegram accepts it, remove the item when all parts are in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from redis.asyncio import Redis
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from alerts.model import Alert
from alerts.outbox import Outbox, OutboxItem, item_id
from alerts.subscriptions import SubscriptionStore
from bot.render import buttons_for, esc, render_group, split_message
from config.settings import Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # timeouts / 5xx before an item is dead-lettered (about 40 minutes of backoff)


@dataclass
class RateLimiter:
    """Spacing between sends: global rate, ~1 msg/s per chat, 20/min per group; pauses after 429s."""

    global_per_sec: float = 25.0
    chat_interval: float = 1.0
    group_interval: float = 3.0  # 20 messages per minute
    clock: Callable[[], float] = time.monotonic
    _next_global: float = 0.0
    _next_chat: dict[int, float] = field(default_factory=dict)

    def delay(self, chat_id: int) -> float:
        """Seconds to wait before a send to `chat_id` may go (0 when it may go now)."""
        now = self.clock()
        return max(0.0, self._next_global - now, self._next_chat.get(chat_id, 0.0) - now)

    def record(self, chat_id: int) -> None:
        """Account for a send that is going out now."""
        now = self.clock()
        self._next_global = max(self._next_global, now) + 1.0 / self.global_per_sec
        interval = self.group_interval if chat_id < 0 else self.chat_interval
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), now) + interval

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Honour a 429 retry_after for one chat."""
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), self.clock() + seconds)

    def pause_all(self, seconds: float) -> None:
        """Honour a 429 that looks global (flood control across chats)."""
        self._next_global = max(self._next_global, self.clock() + seconds)


@dataclass
class DeliveryReport:
    """What one drain pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    blocked: int = 0
    migrated: int = 0


Notify = Callable[[str], Awaitable[None]]


def render_item(item: OutboxItem) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """Message parts (HTML) and buttons of an outbox item."""
    if item.kind == "text":
        return split_message(item.text), None
    alerts = [Alert.from_dict(a) for a in item.alerts]
    day = max(a.trade_date for a in alerts) if alerts else date.today()  # noqa: DTZ011 - only a label fallback
    parts = render_group(alerts, day)
    if item.kind == "digest":
        header = f"📬 <b>Daily digest</b> · {len(alerts)} alert(s) held for you"
        parts = split_message(header + "\n\n" + "\n\n".join(parts))
    markup = None
    if len(alerts) == 1 and len(parts) == 1:
        buttons = buttons_for(alerts[0])
        if buttons:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(b.text, callback_data=b.data) for b in buttons]])
    return parts, markup


def worker_for(bot: Bot, redis: Redis, settings: Settings,
               now: Callable[[], datetime] | None = None) -> DeliveryWorker:
    """A worker configured from settings: admins, DELIVERY_RATE, paid broadcast, the process clock."""
    return DeliveryWorker(bot, Outbox(redis), SubscriptionStore(redis), admin_chat_ids=settings.admin_chat_ids,
                          limiter=RateLimiter(global_per_sec=settings.delivery_rate),
                          paid_broadcast=settings.allow_paid_broadcast, now=now or settings.clock())


class DeliveryWorker:
    """Drains the outbox to Telegram."""

    def __init__(self, bot: Bot, outbox: Outbox, subs: SubscriptionStore, *, admin_chat_ids: tuple[int, ...] = (),
                 limiter: RateLimiter | None = None, paid_broadcast: bool = False,
                 now: Callable[[], datetime] | None = None) -> None:
        self.bot = bot
        self.outbox = outbox
        self.subs = subs
        self.admins = admin_chat_ids
        self.limiter = limiter or RateLimiter()
        self.paid_broadcast = paid_broadcast
        self._now = now or (lambda: datetime.now().astimezone())
        self._recent_429: list[float] = []

    async def drain(self, max_items: int = 200) -> DeliveryReport:
        """Send every item due now (up to `max_items`); returns counts."""
        report = DeliveryReport()
        for item in await self.outbox.claim(self._now(), max_items):
            await self._deliver(item, report)
        return report

    async def _deliver(self, item: OutboxItem, report: DeliveryReport) -> None:
        settings = await self.subs.settings(item.chat_id)
        if not settings.active and item.chat_id not in self.admins:
            log.info("dropping item %s for inactive chat %s", item.id, item.chat_id)
            await self.outbox.done(item.id)
            return
        parts, markup = render_item(item)
        for index, text in enumerate(parts):
            if await self.outbox.is_part_sent(item.id, index):
                continue  # sent before a restart: never twice
            keyboard = markup if index == len(parts) - 1 else None  # buttons under the last part only
            outcome = await self._send_part(item, index, text, keyboard, report)
            if isinstance(outcome, OutboxItem):  # migrated: continue with the new chat id
                item = outcome
                outcome = await self._send_part(item, index, text, keyboard, report)
            if outcome is not True:
                return
        await self.outbox.done(item.id)

    async def _send_part(self, item: OutboxItem, index: int, text: str, markup: InlineKeyboardMarkup | None,
                         report: DeliveryReport) -> bool | OutboxItem:
        wait = self.limiter.delay(item.chat_id)
        if wait > 0:
            await asyncio.sleep(wait)
        self.limiter.record(item.chat_id)
        try:
            await self.bot.send_message(
                item.chat_id, text, parse_mode=ParseMode.HTML, disable_notification=item.silent,
                reply_markup=markup, link_preview_options=LinkPreviewOptions(is_disabled=True),
                allow_paid_broadcast=self.paid_broadcast or None)
        except RetryAfter as exc:
            return await self._retry_after(item, exc, report)
        except ChatMigrated as exc:
            report.migrated += 1
            log.info("chat %s migrated to %s", item.chat_id, exc.new_chat_id)
            await self.subs.migrate(item.chat_id, exc.new_chat_id)
            return await self.outbox.move_chat(item, exc.new_chat_id)
        except Forbidden as exc:
            report.blocked += 1
            log.info("chat %s refused messages (%s); marking inactive", item.chat_id, exc.message)
            await self.subs.deactivate(item.chat_id)
            await self.outbox.done(item.id)
            return False
        except BadRequest as exc:  # before NetworkError: BadRequest subclasses it
            await self._dead(item, f"Bad Request: {exc.message}", report)
            return False
        except (TimedOut, NetworkError) as exc:
            return await self._backoff(item, f"{type(exc).__name__}: {exc.message}", report)
        except TelegramError as exc:
            await self._dead(item, f"{type(exc).__name__}: {exc.message}", report)
            return False
        await self.outbox.mark_part_sent(item.id, index)
        report.sent += 1
        return True

    async def _retry_after(self, item: OutboxItem, exc: RetryAfter, report: DeliveryReport) -> bool:
        seconds = exc.retry_after.total_seconds() if isinstance(exc.retry_after, timedelta) else float(
            exc.retry_after)
        report.retried += 1
        self.limiter.pause_chat(item.chat_id, seconds)
        stamp = time.monotonic()
        self._recent_429 = [t for t in self._recent_429 if stamp - t < 10] + [stamp]
        if len(self._recent_429) >= 3:  # several chats hit: Telegram is throttling the bot as a whole
            self.limiter.pause_all(seconds)
        await self.outbox.reschedule(item, self._now() + timedelta(seconds=seconds), count_attempt=False)
        return False

    async def _backoff(self, item: OutboxItem, reason: str, report: DeliveryReport) -> bool:
        if item.attempts + 1 >= MAX_ATTEMPTS:
            await self._dead(item, f"gave up after {MAX_ATTEMPTS} attempts: {reason}", report)
            return False
        report.retried += 1
        delay = min(5 * 2**item.attempts, 600)
        log.warning("send to %s failed (%s); retrying in %ss", item.chat_id, reason, delay)
        await self.outbox.reschedule(item, self._now() + timedelta(seconds=delay))
        return False

    async def _dead(self, item: OutboxItem, reason: str, report: DeliveryReport) -> None:
        report.dead += 1
        log.error("dead-lettering item %s for chat %s: %s", item.id, item.chat_id, reason)
        await self.outbox.dead_letter(item, reason, self._now())
        if item.chat_id in self.admins:
            return  # do not loop: a refused admin notice is not re-announced
        for admin in self.admins:
            notice = (f"⚠️ A message to chat <code>{item.chat_id}</code> was refused and set aside: "
                      f"{esc(reason)[:500]}")
            await self.outbox.put(OutboxItem(id=item_id(admin, "text", [item.id, "dead"]), chat_id=admin,
                                             kind="text", text=notice), self._now())
