"""`positioning-bot delivery`: a process that only sends the outbox, under Telegram's limits shared in Redis.

Any number of them run side by side, on any machines (Procfile `delivery:`); the `run` process then has
`DELIVERY_PROCESSES` set and leaves the outbox to them. They take no Telegram updates and run no scheduler. They
claim items as the leader's drain does (the claim is atomic, with a lease), pace every send through
alerts.store.ratelimit.SharedLimiter and render items as the leader would, chart photos included. SIGTERM: the item
being sent is finished and the claimed ones are handed back. A Redis outage is waited out with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from redis.asyncio import Redis
from telegram import Bot, Message
from telegram.error import InvalidToken

from alerts.model import Alert
from alerts.store import keys
from alerts.store.ratelimit import courier_beat, courier_gone, courier_name
from bot.app import file_base_url, retry_bot_api
from bot.chartsend import ChartService
from bot.delivery import DeliveryWorker, worker_for
from bot.deps import Deps
from bot.health import HealthServer
from bot.leader import health_port
from bot.scheduler import REDIS_DOWN
from config.settings import REJECTED_TOKEN, Settings

log = logging.getLogger(__name__)

# Items each process keeps claimed: enough to find a chat outside its gap, few enough that a chat's next message is
# rarely held by another process meanwhile (each process sends a share of the rate: 60 items last it seconds).
POOL_ITEMS = 60
# A drain claims for this long before it lets its pool run out: the leader's job returns every 30 s, but a process
# that only delivers has no reason to, and every pool running out at once stalls the senders on their last chats' gaps.
DRAIN_BUDGET_S = 600.0
IDLE_SECONDS = 1.0  # between drains when nothing was due (the leader's drain job ticks as often)
BACKOFF_FIRST_S = 1.0  # after a failed drain (Redis unreachable), doubling up to BACKOFF_MAX_S
BACKOFF_MAX_S = 30.0
_FINGERPRINTS_REMEMBERED = 10_000


def run_delivery(settings: Settings) -> None:
    """Send the outbox until SIGTERM/SIGINT."""
    try:
        asyncio.run(serve_delivery(settings))
    except InvalidToken:
        print(REJECTED_TOKEN, file=sys.stderr)  # PTB's message quotes the token: never print it
        raise SystemExit(2) from None


async def serve_delivery(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Open the clients, wait for the Bot API, then drain until `stop` (SIGTERM) is set."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    clock = settings.clock()
    deps = Deps.open(settings, clock)
    bot = Bot(
        settings.require_token(),
        base_url=settings.telegram_api_url,
        base_file_url=file_base_url(settings.telegram_api_url),
    )  # every send names its parse mode and options itself: no Defaults needed
    health = await start_health(settings, deps)
    try:
        # getMe (the bot's username, for the Watch deep links): an unreachable Bot API is waited out.
        if not await retry_bot_api("getMe", bot.initialize, stop):
            return
        worker = worker_for(bot, deps.redis, settings, clock, shared=True)
        worker.charts = FreshCharts(deps)
        deps.warm()  # the first chart should not wait for seconds of history loading
        log.info(
            "delivery: sending the outbox at %g msg/s shared by every delivery process",
            settings.delivery_rate,
        )
        beats = asyncio.create_task(heartbeat(deps.redis, courier_name(), stop))
        try:
            await drain_until(worker, stop)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
    finally:
        if health is not None:
            await health.stop()
        await bot.shutdown()
        await deps.close()


async def heartbeat(redis: Redis, name: str, stop: asyncio.Event) -> None:
    """Tell the other processes this delivery process is alive (a `run` then leaves the outbox to it) until `stop`;
    Redis errors are skipped (the drain loop reports them)."""
    try:
        while not stop.is_set():
            with contextlib.suppress(*REDIS_DOWN):
                await courier_beat(redis, name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=keys.DELIVERY_BEAT_S)
    finally:
        with contextlib.suppress(*REDIS_DOWN):
            await courier_gone(redis, name)


async def drain_until(worker: DeliveryWorker, stop: asyncio.Event, *, idle_s: float = IDLE_SECONDS) -> None:
    """Drain again and again until `stop` is set; an error (Redis down) is logged and retried with backoff."""
    watcher = asyncio.create_task(_stop_worker_on(stop, worker))
    delay = BACKOFF_FIRST_S
    try:
        while not stop.is_set():
            try:
                report = await worker.drain(max_items=POOL_ITEMS, budget_s=DRAIN_BUDGET_S)
            except REDIS_DOWN as exc:
                log.warning(
                    "delivery: Redis unreachable (%s: %s); retrying in %g s", type(exc).__name__, exc, delay
                )
                wait, delay = delay, min(delay * 2, BACKOFF_MAX_S)
            except Exception:  # a bug must not stop delivery: logged, retried like an outage
                log.exception("delivery: drain failed; retrying in %g s", delay)
                wait, delay = delay, min(delay * 2, BACKOFF_MAX_S)
            else:
                delay = BACKOFF_FIRST_S
                if report.sent or report.dead or report.blocked:
                    log.info("delivery: %s", report)
                wait = 0.0 if report.sent or report.retried else idle_s
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _stop_worker_on(stop: asyncio.Event, worker: DeliveryWorker) -> None:
    """Tell the worker to stop (finish the item being sent, hand the rest back) as soon as `stop` is set."""
    await stop.wait()
    worker.stop()


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (where the loop can take signal handlers)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread (tests)
            loop.add_signal_handler(signum, stop.set)


class FreshCharts(ChartService):
    """Chart photos drawn in a process that stores no data itself: its view is reloaded when an alert to chart is not
    in it yet (the leader logs every alert before routing it, so a reload then holds the data that fired it)."""

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps.redis, deps.view)
        self.deps = deps
        self._reloaded_for: set[str] = set()  # alerts that caused a reload already: at most one each

    async def send(
        self,
        bot: Bot,
        chat_id: int,
        code: str,
        kind: str,
        lang: str,
        *,
        alert: Alert | None = None,
        **options: Any,
    ) -> Message:
        """ChartService.send, from a view that knows `alert`."""
        if alert is not None and alert.fingerprint not in self._reloaded_for:
            view = await self.deps.view()
            known = view.memo(("fingerprints",), lambda: frozenset(a.fingerprint for a in view.alerts))
            if alert.fingerprint not in known:
                if len(self._reloaded_for) > _FINGERPRINTS_REMEMBERED:
                    self._reloaded_for.clear()
                self._reloaded_for.add(alert.fingerprint)
                self.deps.invalidate_view()
        return await super().send(bot, chat_id, code, kind, lang, alert=alert, **options)


async def start_health(settings: Settings, deps: Deps) -> HealthServer | None:
    """Serve /healthz (Redis answers) and /metrics on HEALTH_PORT, else on PORT unless a webhook takes it (a `web`
    beside it on the same machine serves PORT); None: no health server."""
    port = health_port(settings)
    if port is None:
        return None

    async def check() -> tuple[bool, dict[str, object]]:
        try:
            await deps.redis.ping()
        except Exception as exc:  # noqa: BLE001 - any Redis failure makes the process unhealthy
            return False, {"role": "delivery", "reason": f"redis: {type(exc).__name__}"}
        return True, {"role": "delivery"}

    server = HealthServer(check, port=port)
    await server.start()
    log.info("health and metrics on port %s", server.port)
    return server
