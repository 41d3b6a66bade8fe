"""The delivery worker: drain the outbox to Telegram within its limits, classify every error, never crash.

Per item: render to message parts, skip parts already recorded as sent, send each under the rate limiter,
record each part right after Telegram accepts it, remove the item when all parts are in.

One process (`positioning-bot run`) paces its sends with the in-process RateLimiter (LocalPacer); any number of
`positioning-bot delivery` processes (bot/couriers.py) share alerts.store.ratelimit.SharedLimiter in Redis instead.
Either way a worker holds an item only while its claim lasts: it renews the claim of items it keeps for a while and
hands back what it has not sent when told to stop, so no two processes ever hold one item.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
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
from alerts.store import keys
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.ratelimit import SharedLimiter
from alerts.store.subscriptions import SubscriptionStore
from bot.admins import notify_admins
from bot.chartsend import ChartService, alert_chart
from bot.deeplinks import bot_username, keyboard
from bot.html import esc, split_message
from bot.i18n import t
from bot.render import buttons_for, render_group
from config.settings import Settings, redact

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # timeouts / 5xx before an item is dead-lettered (about 40 minutes of backoff)
CLAIM_CHUNK = 10  # outbox items claimed at a time while draining (each costs a Redis round trip)
STOP_CHECK_S = 0.5  # a worker waiting out a long pause looks this often whether it was told to stop


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asks us to wait (PTB gives a timedelta or, without PTB_TIMEDELTA, a number)."""
    return (
        exc.retry_after.total_seconds() if isinstance(exc.retry_after, timedelta) else float(exc.retry_after)
    )


@dataclass
class RateLimiter:
    """Spacing between sends: global rate, ~1 msg/s per chat, 20/min per group; pauses after 429s.

    Telegram counts a send when the request reaches it, at some moment between our request and its answer, in
    sliding windows. Spacing sends by their start alone lets network jitter push two of them into one window (a
    429), so the gap to a chat's next message and the global window of `global_per_sec` sends per second are also
    measured from the *answers* of earlier sends (`finished`). For one sequential sender, as the worker is.
    """

    global_per_sec: float = 30.0
    chat_interval: float = 1.0
    group_interval: float = 3.0  # 20 messages per minute
    window_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _next_global: float = 0.0
    _next_chat: dict[int, float] = field(default_factory=dict)
    _answers: deque[float] = field(
        default_factory=deque
    )  # answer times of the latest sends (one window's worth)

    @property
    def window_limit(self) -> int:
        """Sends allowed in any window of `window_s` seconds."""
        return max(1, int(self.global_per_sec * self.window_s))

    def delay(self, chat_id: int) -> float:
        """Seconds to wait before a send to `chat_id` may go (0 when it may go now)."""
        return max(0.0, self.ready_at(chat_id) - self.clock())

    def ready_at(self, chat_id: int) -> float:
        """Clock time from which a send to `chat_id` may go (a fixed point: comparable across chats)."""
        # The window is full until the oldest of its sends was answered a whole window ago.
        window_free = self._answers[0] + self.window_s if len(self._answers) >= self.window_limit else 0.0
        return max(self._next_global, window_free, self._next_chat.get(chat_id, 0.0))

    def record(self, chat_id: int) -> None:
        """Account for a send that is going out now."""
        now = self.clock()
        # Half the nominal spacing: smooth, yet a late send can catch up (the window still caps any second).
        self._next_global = max(self._next_global, now) + 0.5 / self.global_per_sec
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), now) + self._interval(chat_id)

    def finished(self, chat_id: int) -> None:
        """Account for Telegram's answer to a send (accepted or not): the chat's next send waits a gap from now."""
        now = self.clock()
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), now + self._interval(chat_id))
        self._answers.append(now)
        while len(self._answers) > self.window_limit:
            self._answers.popleft()
        if len(self._next_chat) > 10_000:  # forget chats whose gap has passed: bounded memory over a long run
            self._next_chat = {chat: due for chat, due in self._next_chat.items() if due > now}

    def _interval(self, chat_id: int) -> float:
        return self.group_interval if chat_id < 0 else self.chat_interval

    def pause_chat(self, chat_id: int, seconds: float) -> None:
        """Honour a 429 retry_after for one chat."""
        self._next_chat[chat_id] = max(self._next_chat.get(chat_id, 0.0), self.clock() + seconds)

    def pause_all(self, seconds: float) -> None:
        """Honour a 429 that looks global (flood control across chats)."""
        self._next_global = max(self._next_global, self.clock() + seconds)


class Pacer(Protocol):
    """What the worker asks before and after each send: the in-process `LocalPacer` (one process sends) or
    alerts.store.ratelimit.SharedLimiter (any number of delivery processes share the limits in Redis)."""

    def ready_at(self, chat_id: int) -> float:
        """Estimated time.monotonic() from which `chat_id` may receive (orders the items; grants nothing)."""
        ...

    async def chat_wait(self, chat_id: int) -> float:
        """Seconds until `chat_id` may receive, as the limiter knows now (0: may go)."""
        ...

    async def acquire(self, chat_id: int) -> float:
        """0: a send to `chat_id` may go now and is recorded; else the seconds to wait before asking again."""
        ...

    async def finished(self, chat_id: int) -> None:
        """Telegram answered the send to `chat_id` (accepted or not)."""
        ...

    async def throttled(self, chat_id: int, seconds: float) -> bool:
        """A 429 with retry_after `seconds` for `chat_id`; True when it also paused every send."""
        ...


class LocalPacer:
    """The in-process RateLimiter behind the Pacer interface: one process sends (`positioning-bot run`)."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter or RateLimiter()
        self._recent_429: list[float] = []

    def ready_at(self, chat_id: int) -> float:
        """Clock time from which a send to `chat_id` may go (exact: this process is the only sender)."""
        return self.limiter.ready_at(chat_id)

    async def chat_wait(self, chat_id: int) -> float:
        """Always 0: `ready_at` is exact here, so the item picked by it needs no second look."""
        return 0.0

    async def acquire(self, chat_id: int) -> float:
        """0 and recorded when a send may go now, else the seconds to wait."""
        wait = self.limiter.delay(chat_id)
        if wait > 0:
            return wait
        self.limiter.record(chat_id)
        return 0.0

    async def finished(self, chat_id: int) -> None:
        """Count the chat's gap and the global window from this answer."""
        self.limiter.finished(chat_id)

    async def throttled(self, chat_id: int, seconds: float) -> bool:
        """Pause the chat; after several 429s within 10 s, pause every send (Telegram throttles the bot)."""
        self.limiter.pause_chat(chat_id, seconds)
        stamp = time.monotonic()
        self._recent_429 = [t for t in self._recent_429 if stamp - t < 10] + [stamp]
        if len(self._recent_429) >= 3:  # several chats hit: Telegram is throttling the bot as a whole
            self.limiter.pause_all(seconds)
            return True
        return False


class Stopped(Exception):
    """The worker was asked to stop while it waited to send (nothing was sent)."""


@dataclass
class DeliveryReport:
    """What one drain pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    blocked: int = 0
    migrated: int = 0


Notify = Callable[[str], Awaitable[None]]
CHART_PART = -1
THREAD_LOST = object()  # _send_part's answer when the forum topic it sent to no longer exists
# Telegram's 400 descriptions for a forum topic that was deleted (sending to a closed topic is another refusal).
_THREAD_GONE = ("message thread not found", "topic_deleted", "topic not found")


def thread_lost(exc: BadRequest) -> bool:
    """True when Telegram refused a send because its forum topic (message_thread_id) no longer exists."""
    return any(
        gone in exc.message.lower() for gone in _THREAD_GONE
    )  # "sent" record of an item's chart photo, apart from its text parts 0, 1, …


def _chart_alert(item: OutboxItem) -> Alert | None:
    """The alert of an item that holds exactly one (charts go with single-alert items, not groups or digests)."""
    if item.kind != "alerts" or len(item.alerts) != 1:
        return None
    return Alert.from_dict(item.alerts[0])


def render_item(
    item: OutboxItem, lang: str = "en", username: str | None = None
) -> tuple[list[str], InlineKeyboardMarkup | None]:
    """Message parts (HTML) and buttons of an outbox item, in the recipient chat's language `lang`; with the bot's
    `username`, a single stock alert also carries a Watch deep link (a reader of a forwarded copy subscribes in one
    tap).

    Rendered at send time, so a /lang change reaches alerts still waiting. The parts are numbered for "already
    sent" records: render_group packs alerts into parts the same way in every language, so part i holds the
    same alerts in English and Chinese and a language change between two parts neither skips nor repeats one.
    """
    if item.kind == "text":
        return split_message(item.text), None
    alerts = [Alert.from_dict(a) for a in item.alerts]
    day = max(a.trade_date for a in alerts) if alerts else date.today()  # noqa: DTZ011 - only a label fallback
    parts = render_group(alerts, day, lang, digest=item.kind == "digest")
    markup = None
    if len(alerts) == 1 and len(parts) == 1:
        markup = keyboard(buttons_for(alerts[0], lang, watch=username is not None), username)
    return parts, markup


def worker_for(
    bot: Bot,
    redis: Redis,
    settings: Settings,
    now: Callable[[], datetime] | None = None,
    *,
    shared: bool = False,
) -> DeliveryWorker:
    """A worker configured from settings: admins, DELIVERY_RATE, paid broadcast, the process clock; `shared`: the
    limits are shared in Redis with other delivery processes (`positioning-bot delivery`), else kept in-process."""
    limiter: Pacer = (
        SharedLimiter(redis, global_per_sec=settings.delivery_rate)
        if shared
        else LocalPacer(RateLimiter(global_per_sec=settings.delivery_rate))
    )
    return DeliveryWorker(
        bot,
        Outbox(redis),
        SubscriptionStore(redis),
        admin_chat_ids=settings.admin_chat_ids,
        limiter=limiter,
        paid_broadcast=settings.allow_paid_broadcast,
        now=now or settings.clock(),
    )


class DeliveryWorker:
    """Drains the outbox to Telegram."""

    charts: ChartService | None = None  # chart photos for important alerts (the app sets it; None: text only)

    def __init__(
        self,
        bot: Bot,
        outbox: Outbox,
        subs: SubscriptionStore,
        *,
        admin_chat_ids: tuple[int, ...] = (),
        limiter: RateLimiter | Pacer | None = None,
        paid_broadcast: bool = False,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.bot = bot
        self.outbox = outbox
        self.subs = subs
        self.admins = admin_chat_ids
        self.limiter: Pacer = (
            LocalPacer(limiter) if limiter is None or isinstance(limiter, RateLimiter) else limiter
        )
        self.paid_broadcast = paid_broadcast
        self._now = now or (lambda: datetime.now().astimezone())
        self._stopping = False
        self._claimed: dict[str, float] = {}  # item id -> time.monotonic() of its claim (or last renewal)

    def stop(self) -> None:
        """Finish the item being sent, hand the other claimed items back and send nothing more (leader stepping
        down: PTB runs jobs shielded, so a drain left running would go on with the closed HTTP client)."""
        self._stopping = True

    async def drain(self, max_items: int = 200, budget_s: float = 30.0) -> DeliveryReport:
        """Send the items due now, keeping up to `max_items` claimed, claiming more for about `budget_s`."""
        report = DeliveryReport()
        started = time.monotonic()
        pool: dict[str, OutboxItem] = {}
        more = True
        try:
            while True:
                if self._stopping:
                    return report
                # Keep the pool topped up a few items at a time: a pool that runs dry leaves its last items (often
                # chats still inside their 1 s gap) holding up the sender, and one big claim stalls it (a GET per
                # item).
                if more and len(pool) < max_items and time.monotonic() - started < budget_s:
                    wanted = min(max_items - len(pool), CLAIM_CHUNK)
                    batch = await self.outbox.claim(self._now(), wanted)
                    more = len(batch) == wanted
                    for claimed in batch:
                        if claimed.id not in pool:
                            pool[claimed.id] = claimed
                            self._claimed[claimed.id] = time.monotonic()
                if not pool:
                    return report
                await self._renew(pool)
                item = await self._next(pool)
                del pool[item.id]
                try:
                    await self._deliver(item, report)
                except Stopped:
                    pool[item.id] = item  # nothing of it was sent: handed back with the rest
                    return report
                finally:
                    self._claimed.pop(item.id, None)
        finally:
            if pool:
                # Due again at once for whoever sends next (another delivery process, or this one's next drain),
                # instead of after the claim lease. Ours still: held items are renewed well before it ends.
                await self.outbox.release(list(pool), self._now())
                for held in pool:
                    self._claimed.pop(held, None)

    async def _next(self, pool: dict[str, OutboxItem]) -> OutboxItem:
        """The item whose chat may receive soonest (one chat inside its gap must not hold up the rest); ties keep
        claim order, so a chat's messages go out in the order they were queued.

        With limits shared by several processes this process's estimates miss the others' sends: an item that looks
        ready is checked (one Redis call) and, when its chat is busy, the next one is looked at.
        """
        while True:
            item = min(pool.values(), key=lambda i: self.limiter.ready_at(i.chat_id))
            if self.limiter.ready_at(item.chat_id) > time.monotonic():
                return item  # the soonest is still to come: waiting for it is the best there is
            if await self.limiter.chat_wait(item.chat_id) <= 0:
                return item

    async def _renew(self, pool: dict[str, OutboxItem]) -> None:
        """Extend the claim of items held for a while (a group's 20 items at one per 3 s outlast the lease): an item
        whose claim ran out could be claimed and sent by another process as well."""
        for item in list(pool.values()):
            await self._hold(item)

    async def _hold(self, item: OutboxItem) -> None:
        """Renew this item's claim when a third of it has passed."""
        claimed = self._claimed.get(item.id)
        if claimed is not None and time.monotonic() - claimed > keys.CLAIM_SECONDS / 3:
            await self.outbox.reschedule(
                item, self._now() + timedelta(seconds=keys.CLAIM_SECONDS), count_attempt=False
            )
            self._claimed[item.id] = time.monotonic()

    async def _deliver(self, item: OutboxItem, report: DeliveryReport) -> None:
        settings = await self.subs.settings(item.chat_id)
        if not settings.active and item.chat_id not in self.admins:
            log.info("dropping item %s for inactive chat %s", item.id, item.chat_id)
            await self.outbox.done(item.id)
            return
        parts, markup = render_item(item, settings.lang, bot_username(self.bot))
        thread = settings.thread_id  # a forum topic chosen with /here; None: the chat itself (General topic)
        for index, text in enumerate(parts):
            if await self.outbox.is_part_sent(item.id, index):
                continue  # sent before a restart: never twice
            await self._hold(item)  # a long item (many parts to a group) keeps its claim
            keyboard = markup if index == len(parts) - 1 else None  # buttons under the last part only
            outcome = await self._send_part(item, index, text, keyboard, report, thread)
            if (
                outcome is THREAD_LOST and thread is not None
            ):  # the topic was deleted: General, and say so once
                await self._thread_lost(item.chat_id, thread, settings.lang)
                thread = None
                outcome = await self._send_part(item, index, text, keyboard, report, thread)
            if isinstance(outcome, OutboxItem):  # migrated: continue with the new chat id
                item = outcome
                outcome = await self._send_part(item, index, text, keyboard, report)
            if outcome is not True:
                return
        if not await self._send_chart(item, settings.lang, report, thread):
            return
        await self.outbox.done(item.id)

    async def _thread_lost(self, chat_id: int, thread: int, lang: str) -> None:
        """The chat's alert topic is gone: forget it (unless /here chose another meanwhile) and tell the group's
        administrators once, in the General topic, through the outbox (rate limits apply, and it is sent once)."""
        log.info("topic %s of chat %s not found; alerts go to the General topic", thread, chat_id)
        await self.subs.clear_thread(chat_id, thread)
        notice = OutboxItem(
            id=item_id(chat_id, "text", ["thread-lost", str(thread)]),
            chat_id=chat_id,
            kind="text",
            text=t(lang, "here_topic_lost"),
        )
        await self.outbox.put(notice, self._now())

    async def _send_chart(
        self, item: OutboxItem, lang: str, report: DeliveryReport, thread: int | None = None
    ) -> bool:
        """After the text, an important alert's chart photo as its own part; False when the item must wait.

        The text goes first and never waits for a chart. The photo is part CHART_PART, recorded like the text parts,
        so a restart neither repeats nor loses it. Only Telegram's flood control (429) and a blocked chat stop the
        item; a chart that cannot be drawn or is refused is logged and dropped, the alert itself is out already.
        """
        alert = _chart_alert(item) if self.charts is not None else None
        kind = alert_chart(alert) if alert is not None else None
        if self.charts is None or alert is None or kind is None:
            return True
        if await self.outbox.is_part_sent(item.id, CHART_PART):
            return True  # sent before a restart
        charts = self.charts
        try:
            await self._paced(
                item.chat_id,
                lambda: charts.send(
                    self.bot,
                    item.chat_id,
                    alert.code,
                    kind,
                    lang,
                    alert=alert,
                    disable_notification=True,
                    message_thread_id=thread,
                ),
            )  # one notification per alert: the text's
        except RetryAfter as exc:
            return await self._retry_after(item, exc, report)
        except Forbidden as exc:
            return await self._blocked(item, exc, report)
        except Stopped:
            raise  # not sent: the item is handed back, and the chart goes with it later
        except Exception as exc:  # noqa: BLE001 - no data, a drawing bug, a refusal, a timeout: text is already out
            log.warning(
                "chart for item %s (%s %s) not sent: %s: %s",
                item.id,
                alert.code,
                kind,
                type(exc).__name__,
                exc,
            )
            return True
        await self.outbox.mark_part_sent(item.id, CHART_PART)
        report.sent += 1
        return True

    async def _send_part(
        self,
        item: OutboxItem,
        index: int,
        text: str,
        markup: InlineKeyboardMarkup | None,
        report: DeliveryReport,
        thread: int | None = None,
    ) -> bool | OutboxItem | object:
        try:
            await self._paced(
                item.chat_id,
                lambda: self.bot.send_message(
                    item.chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    disable_notification=item.silent,
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    allow_paid_broadcast=self.paid_broadcast or None,
                    message_thread_id=thread,
                ),
            )
        except RetryAfter as exc:
            return await self._retry_after(item, exc, report)
        except ChatMigrated as exc:
            report.migrated += 1
            log.info("chat %s migrated to %s", item.chat_id, exc.new_chat_id)
            await self.subs.migrate(item.chat_id, exc.new_chat_id)
            return await self.outbox.move_chat(item, exc.new_chat_id)
        except Forbidden as exc:
            return await self._blocked(item, exc, report)
        except BadRequest as exc:  # before NetworkError: BadRequest subclasses it
            if thread is not None and thread_lost(exc):
                return THREAD_LOST
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

    async def _paced(self, chat_id: int, send: Callable[[], Awaitable[object]]) -> None:
        """Wait for the limiter, send, and count the chat's window from Telegram's answer.

        Raises Stopped when the worker is told to stop while waiting (a 429's pause can last long): nothing sent.
        """
        while (wait := await self.limiter.acquire(chat_id)) > 0:
            if self._stopping:
                raise Stopped
            await asyncio.sleep(min(wait, STOP_CHECK_S))
        try:
            await send()
        finally:
            await self.limiter.finished(chat_id)

    async def _blocked(self, item: OutboxItem, exc: Forbidden, report: DeliveryReport) -> bool:
        """403: the user blocked the bot or left the group; the chat is marked inactive, its item dropped."""
        report.blocked += 1
        log.info("chat %s refused messages (%s); marking inactive", item.chat_id, exc.message)
        await self.subs.deactivate(item.chat_id)
        await self.outbox.done(item.id)
        return False

    async def _retry_after(self, item: OutboxItem, exc: RetryAfter, report: DeliveryReport) -> bool:
        seconds = retry_seconds(exc)
        report.retried += 1
        if await self.limiter.throttled(item.chat_id, seconds):
            log.warning("several 429s within 10 s: every send paused for %g s", seconds)
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
        reason = redact(
            reason
        )  # an error answer can quote the request path: redact before the notice cuts it
        report.dead += 1
        log.error("dead-lettering item %s for chat %s: %s", item.id, item.chat_id, reason)
        await self.outbox.dead_letter(item, reason, self._now())
        if item.chat_id in self.admins:
            return  # do not loop: a refused admin notice is not re-announced
        await notify_admins(
            self.outbox,
            self.admins,
            lambda lang: t(lang, "admin_dead_letter", chat=item.chat_id, reason=esc(reason[:500])),
            [item.id, "dead"],
            self._now(),
            subs=self.subs,  # each admin reads the notice in their own language
        )
