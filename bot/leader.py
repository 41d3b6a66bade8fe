"""Leader and hot standby: hold the Redis lease to run the Application, wait for it otherwise, step down on loss.

Every process serves /healthz and /metrics (when a port is configured); only the lease holder polls Telegram (or
serves the webhook) and the sources. Ports and webhook settings come from config.settings.Settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram.error import InvalidToken
from telegram.ext import Application, Updater

from alerts.metrics import METRICS
from alerts.store.connect import connect
from alerts.store.lease import Lease
from alerts.store.migrate import migrate_keys
from bot.app import build_application, retry_bot_api
from bot.delivery import DeliveryWorker
from bot.health import HealthServer, TickTimes
from bot.scheduler import CYCLE_DEADLINE_S, Poller, RedisOutage
from config.settings import REJECTED_TOKEN, Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "channel_post", "callback_query", "inline_query"]
WEBHOOK_PORT = (
    8443  # where the webhook listens when the host sets no PORT (Telegram posts to 80, 88, 443, 8443)
)
# /healthz: a tick ends within a few cycle deadlines (ticker map, a source's cycle, the DI watched step); past
# TICK_STUCK_S it is stuck. Ticks start every few seconds, so none finished for TICK_OVERDUE_S means none runs.
TICK_STUCK_S = 3 * CYCLE_DEADLINE_S + 60.0
TICK_OVERDUE_S = 120.0


def run(settings: Settings, *, scheduler_only: bool = False) -> None:
    """Run the bot until SIGTERM/SIGINT: as leader when it holds the Redis lease, else as a hot standby.

    `scheduler_only` (`positioning-bot scheduler`): the leader runs the cycles, doctor and digests only; `web` and
    `worker` processes take the updates and delivery processes drain the outbox.
    """
    try:
        asyncio.run(serve(settings, scheduler_only=scheduler_only))
    except InvalidToken:
        # PTB's message quotes the rejected token itself: never let Python print it in a traceback.
        print(REJECTED_TOKEN, file=sys.stderr)
        raise SystemExit(2) from None


async def serve(
    settings: Settings, *, stop: asyncio.Event | None = None, scheduler_only: bool = False
) -> None:
    """Standby until the lease is ours, then poll Telegram and the sources; step down if the lease is lost."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    if not scheduler_only:
        webhook(settings)  # a configuration error stops here, before any client or lease exists
    redis = connect(settings)
    lease = Lease(redis, ttl_seconds=settings.lease_ttl_seconds)
    ticks = TickTimes()
    health = await start_health(settings, lease, ticks)
    outage = RedisOutage(settings.clock())  # outlives leader terms: a long outage also costs the lease
    try:
        while not stop.is_set():
            log.info("standby: waiting for the leader lease (%s)", lease.owner)
            if not await lease.wait_acquire(stop=stop):
                break
            await _term(settings, lease, stop, outage, ticks, scheduler_only=scheduler_only)
    finally:
        if health is not None:
            await health.stop()
        await redis.aclose()


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (where the loop can take signal handlers)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread (tests)
            loop.add_signal_handler(signum, stop.set)


async def _term(
    settings: Settings,
    lease: Lease,
    stop: asyncio.Event,
    outage: RedisOutage,
    ticks: TickTimes,
    *,
    scheduler_only: bool = False,
) -> None:
    """One term as leader, from the lease acquired to stop, lease loss or error; the lease is released after."""
    leader = METRICS.gauge("positioning_leader", "1 when this process holds the leader lease")
    leader.set(1)
    log.info("leader: lease acquired by %s", lease.owner)
    lost = asyncio.Event()
    try:
        await _lead(settings, lease, stop, lost, outage, ticks, scheduler_only=scheduler_only)
    finally:
        # On every way out, errors included: a lease left behind would keep the next `run` in standby until it
        # expired.
        leader.set(0)
        if not lost.is_set():
            await lease.release_quietly()
    if lost.is_set() and outage.since is not None:
        outage.lease_lost = True


async def _lead(
    settings: Settings,
    lease: Lease,
    stop: asyncio.Event,
    lost: asyncio.Event,
    outage: RedisOutage | None = None,
    ticks: TickTimes | None = None,
    *,
    scheduler_only: bool = False,
) -> None:
    ticks = ticks or TickTimes()
    app = build_application(
        settings, poll_sources=True, outage=outage, ticks=ticks, stop=stop, drain=not scheduler_only
    )
    keeper = asyncio.create_task(lease.keep(lost, stop=stop))
    try:
        # Before anything reads or writes: keys of releases before the hash tags get their new names.
        if not await migrate_layout(lease.redis, stop, lost):
            return
        # getMe: an unreachable Bot API is waited out (with backoff); a rejected token raises InvalidToken.
        if not await retry_bot_api("getMe", app.initialize, stop):
            return
        if app.post_init is not None:
            await app.post_init(app)
        if stop.is_set():
            return  # SIGTERM while post_init waited for the Bot API
        updater = _updater(app)
        if not scheduler_only:  # a scheduler takes no updates: `web` and `worker` processes do
            await _receive_updates(settings, updater)
        await app.start()
        await _until_stop_or_loss(stop, lost)
        log.info("leader: %s", "lease lost, stepping down" if lost.is_set() else "stopping")
        # Graceful: stop taking updates, let the running job (a send or a cycle) finish, then close clients.
        if updater.running:
            await updater.stop()
        quiesce(app)
        poller = app.bot_data.get("poller")
        if isinstance(poller, Poller):
            await poller.wind_down()  # a cycle stuck on a slow origin is cancelled after a short grace
        await app.stop()
    finally:
        ticks.disarm()
        # Also on an error between post_init and a clean stop: the clients post_init opened must be closed here,
        # or their sockets outlive the event loop.
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await app.shutdown()
        await (
            app.bot.shutdown()
        )  # its HTTP clients, also when getMe never succeeded (then app.shutdown skips it)


async def migrate_layout(redis: Redis, stop: asyncio.Event, lost: asyncio.Event) -> bool:
    """Run the one-time key migration (alerts/store/migrate.py), retrying Redis errors with backoff; False when
    `stop` or `lost` came first (the leader then steps down without serving on half-migrated keys)."""
    delay = 1.0
    while not (stop.is_set() or lost.is_set()):
        try:
            report = await migrate_keys(redis, only_once=True)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "leader: key migration failed (%s: %s); retrying in %g s", type(exc).__name__, exc, delay
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)
            continue
        if not report.skipped:
            log.info("leader: %s", report.summary())
        return True
    return False


def _updater(app: Application) -> Updater:
    """The Application's Updater (the builder makes one unless told not to, and build_application does not)."""
    if app.updater is None:
        raise RuntimeError("the Application was built without an Updater")
    return app.updater


async def _receive_updates(settings: Settings, updater: Updater) -> None:
    """Serve the webhook when one is configured, else long-poll getUpdates."""
    configured = webhook(settings)
    if configured is None:
        await updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        return
    webhook_url, secret = configured
    # Serve the path Telegram posts to (the path of WEBHOOK_URL); PTB answers 403 without the secret.
    await updater.start_webhook(
        listen="0.0.0.0",  # noqa: S104 - Telegram reaches the webhook from outside
        port=settings.port if settings.port is not None else WEBHOOK_PORT,
        url_path=urlsplit(webhook_url).path.strip("/"),
        webhook_url=webhook_url,
        secret_token=secret,
        allowed_updates=ALLOWED_UPDATES,
    )


async def _until_stop_or_loss(stop: asyncio.Event, lost: asyncio.Event) -> None:
    """Wait until `stop` or `lost` is set."""
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()


def webhook(settings: Settings) -> tuple[str, str] | None:
    """(WEBHOOK_URL, WEBHOOK_SECRET) in webhook mode, None for long polling; exits on a URL without a secret."""
    if not settings.webhook_url:
        return None
    if not settings.webhook_secret:
        raise SystemExit(
            "configuration error: WEBHOOK_SECRET: is required with WEBHOOK_URL "
            "(Telegram sends it back so strangers cannot post updates)"
        )
    return settings.webhook_url, settings.webhook_secret


def quiesce(app: Application) -> None:
    """Start no more jobs and ask the running drain and poll to stop at their next item or cycle.

    PTB's JobQueue.stop() waits for the running jobs, but the scheduler's shutdown then cancels any job that started
    meanwhile, and PTB shields job bodies from that cancel: such a job would run on with closed clients.
    """
    if app.job_queue is not None and app.job_queue.scheduler.running:
        app.job_queue.scheduler.pause()
    worker, poller = app.bot_data.get("worker"), app.bot_data.get("poller")
    if isinstance(worker, DeliveryWorker):
        worker.stop()
    if isinstance(poller, Poller):
        poller.stopping = True


def health_port(settings: Settings) -> int | None:
    """HEALTH_PORT, else PORT when the webhook does not take it; None: no health server."""
    if settings.health_port is not None:
        return settings.health_port
    return None if settings.webhook_url else settings.port


async def start_health(
    settings: Settings, lease: Lease, ticks: TickTimes | None = None
) -> HealthServer | None:
    """Serve /healthz and /metrics on HEALTH_PORT, or on PORT when PORT is not taken by the webhook."""
    port = health_port(settings)
    if port is None:
        return None

    async def check() -> tuple[bool, dict[str, object]]:
        try:
            holder = await lease.holder()
        except Exception as exc:  # noqa: BLE001 - any Redis failure makes the process unhealthy
            return False, {"reason": f"redis: {type(exc).__name__}"}
        leader = holder == lease.owner
        problem = ticks.problem(stuck_after=TICK_STUCK_S, overdue_after=TICK_OVERDUE_S) if ticks else None
        if problem is not None and leader:
            return False, {
                "reason": f"poll {problem}",
                "poll": problem.split(":", 1)[0],
                "leader": leader,
                "lease_holder": holder,
            }
        return True, {"leader": leader, "lease_holder": holder}

    server = HealthServer(check, port=port)
    await server.start()
    log.info("health and metrics on port %s", server.port)
    return server
