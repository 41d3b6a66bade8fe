"""The one place the Telegram Application is built: clients in post_init, closed in post_shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from datetime import time as dtime
from urllib.parse import urlsplit

from redis.asyncio import Redis
from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults

from alerts.calendar import HK_TZ
from alerts.metrics import METRICS
from alerts.routing import flush_digest
from alerts.store.lease import Lease
from bot.delivery import DeliveryWorker, worker_for
from bot.deps import Deps, deps
from bot.fairness import ChatOrderedProcessor
from bot.handlers import DIGEST_TIME, menu, register
from bot.health import HealthServer, TickTimes
from bot.scheduler import CYCLE_DEADLINE_S, REDIS_DOWN, Poller, RedisOutage
from config.settings import REJECTED_TOKEN, Settings

log = logging.getLogger(__name__)

DRAIN_INTERVAL_SECONDS = 1.0
DOCTOR_TIME = dtime(5, 30, tzinfo=HK_TZ)  # before the buyback report's 06:00 window opens
POLL_TICK_SECONDS = 5.0  # the poller decides per (source, date) whether a fetch is due (default cadence 20 s)
# Start-up against an unreachable Bot API: retry after 1 s, doubling up to 60 s, until it answers or SIGTERM.
BOT_API_RETRY_FIRST_S = 1.0
BOT_API_RETRY_MAX_S = 60.0
# /healthz: a tick ends within a few cycle deadlines (ticker map, a source's cycle, the DI watched step); past
# TICK_STUCK_S it is stuck. Ticks start every few seconds, so none finished for TICK_OVERDUE_S means none runs.
TICK_STUCK_S = 3 * CYCLE_DEADLINE_S + 60.0
TICK_OVERDUE_S = 120.0


def file_base_url(api_url: str) -> str:
    """Bot API file URL from the method URL: ``…/bot`` → ``…/file/bot``."""
    return api_url[: -len("/bot")] + "/file/bot" if api_url.endswith("/bot") else api_url + "/file"


def build_application(
    settings: Settings,
    *,
    drain_interval: float = DRAIN_INTERVAL_SECONDS,
    clock: Callable[[], datetime] | None = None,
    poll_sources: bool = False,
    outage: RedisOutage | None = None,
    ticks: TickTimes | None = None,
    stop: asyncio.Event | None = None,
) -> Application:
    """Build the Application: HK timezone defaults, base URL from TELEGRAM_API_URL, handlers and jobs.

    `clock` sets the "today" of read-only commands (tests and replays point it at a past period); `ticks` records
    the poll ticks for /healthz; `stop` ends the start-up's Bot API retries.
    """

    clock = clock or settings.clock()
    outage = outage or RedisOutage(clock)
    ticks = ticks or TickTimes()

    async def post_init(app: Application) -> None:
        d = Deps.open(settings, clock)
        app.bot_data["deps"] = d
        d.warm()  # the first command should not wait for seconds of history loading
        worker = worker_for(app.bot, d.redis, settings, clock)
        worker.charts = d.charts()  # important alerts carry their chart photo
        app.bot_data["worker"] = worker
        app.bot_data["outage"] = outage
        if not await _retry_bot_api("setMyCommands", lambda: app.bot.set_my_commands(menu("en")), stop):
            return  # stopped while the Bot API was unreachable
        await _retry_bot_api(
            "setMyCommands", lambda: app.bot.set_my_commands(menu("zh"), language_code="zh"), stop
        )
        if app.job_queue is not None:
            # Deliberate APScheduler settings: one instance at a time, late ticks coalesced, never silently skipped.
            app.job_queue.run_repeating(
                drain_outbox,
                interval=drain_interval,
                first=0.1,
                name="drain-outbox",
                job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
            )
            if poll_sources:
                app.bot_data["poller"] = Poller(
                    settings,
                    d.redis,
                    d.http,
                    clock,
                    on_processed=lambda _report: d.invalidate_view(),
                    outage=outage,
                    ticks=ticks,
                )
                ticks.arm()
                app.job_queue.run_repeating(
                    poll_job,
                    interval=POLL_TICK_SECONDS,
                    first=0.5,
                    name="poll-sources",
                    job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600},
                )
                # Before HKEX's morning files are due: a layout change, a moved host or a slow origin is told
                # to the admins once a day, with the evidence (`positioning-bot doctor` prints the details).
                app.job_queue.run_daily(
                    doctor_job,
                    DOCTOR_TIME,
                    name="doctor",
                    job_kwargs={"misfire_grace_time": 3600, "coalesce": True},
                )
            hour, minute = (int(x) for x in DIGEST_TIME.split(":"))
            app.job_queue.run_daily(
                send_digests,
                dtime(hour, minute, tzinfo=HK_TZ),
                name="digests",
                job_kwargs={"misfire_grace_time": 3600, "coalesce": True},
            )

    async def post_shutdown(app: Application) -> None:
        d = app.bot_data.get("deps")
        if isinstance(d, Deps):
            await d.close()

    defaults = Defaults(
        tzinfo=HK_TZ, parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)
    )
    app = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(settings.telegram_api_url)
        .base_file_url(file_base_url(settings.telegram_api_url))
        .defaults(defaults)
        .concurrent_updates(ChatOrderedProcessor())  # chats in parallel, each chat's updates in order
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    register(app)
    return app


async def doctor_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Job: the daily live self-check of every source."""
    poller = context.bot_data["poller"]
    assert isinstance(poller, Poller)
    await poller.doctor()


async def poll_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Job: run the cycles due now (publication windows and catch-up)."""
    poller = context.bot_data["poller"]
    assert isinstance(poller, Poller)
    await poller.tick()


async def drain_outbox(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Job: send what is due in the outbox."""
    worker = context.bot_data["worker"]
    assert isinstance(worker, DeliveryWorker)
    try:
        report = await worker.drain()
    except REDIS_DOWN as exc:
        # The items stay in Redis; the poll job tells the admins about the outage once Redis answers again.
        outage = context.bot_data.get("outage")
        if isinstance(outage, RedisOutage):
            outage.failed("drain", exc)
        return
    if report.sent or report.dead or report.blocked:
        log.info("delivery: %s", report)


async def send_digests(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Job: turn every digest chat's held alerts into one message."""
    d = deps(context)
    now = datetime.now(HK_TZ)
    for chat in await d.subs.active_chats():
        if (await d.subs.settings(chat)).digest:
            await flush_digest(d.subs, d.outbox, chat, now)


ALLOWED_UPDATES = ["message", "channel_post", "callback_query"]


def run(settings: Settings) -> None:
    """Run the bot until SIGTERM/SIGINT: as leader when it holds the Redis lease, else as a hot standby."""
    try:
        asyncio.run(serve(settings))
    except InvalidToken:
        # PTB's message quotes the rejected token itself: never let Python print it in a traceback.
        print(REJECTED_TOKEN, file=sys.stderr)
        raise SystemExit(2) from None


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Standby until the lease is ours, then poll Telegram and the sources; step down if the lease is lost."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread (tests)
            loop.add_signal_handler(signum, stop.set)
    _webhook_config()  # a configuration error stops here, before any client or lease exists
    redis = Redis.from_url(settings.redis_url)
    lease = Lease(redis, ttl_seconds=settings.lease_ttl_seconds)
    ticks = TickTimes()
    health = await _start_health(settings, lease, ticks)
    outage = RedisOutage(settings.clock())  # outlives leader terms: a long outage also costs the lease
    try:
        while not stop.is_set():
            log.info("standby: waiting for the leader lease (%s)", lease.owner)
            if not await lease.wait_acquire(stop=stop):
                break
            METRICS.gauge("positioning_leader", "1 when this process holds the leader lease").set(1)
            log.info("leader: lease acquired by %s", lease.owner)
            lost = asyncio.Event()
            try:
                await _lead(settings, lease, stop, lost, outage, ticks)
            finally:
                # On every way out, errors included: a lease left behind would keep the next `run` in standby
                # until it expired.
                METRICS.gauge("positioning_leader", "1 when this process holds the leader lease").set(0)
                if not lost.is_set():
                    await lease.release_quietly()
            if lost.is_set() and outage.since is not None:
                outage.lease_lost = True
    finally:
        if health is not None:
            await health.stop()
        await redis.aclose()


async def _lead(
    settings: Settings,
    lease: Lease,
    stop: asyncio.Event,
    lost: asyncio.Event,
    outage: RedisOutage | None = None,
    ticks: TickTimes | None = None,
) -> None:
    webhook = _webhook_config()
    ticks = ticks or TickTimes()
    app = build_application(settings, poll_sources=True, outage=outage, ticks=ticks, stop=stop)
    keeper = asyncio.create_task(lease.keep(lost, stop=stop))
    try:
        # getMe: an unreachable Bot API is waited out (with backoff); a rejected token raises InvalidToken.
        if not await _retry_bot_api("getMe", app.initialize, stop):
            return
        if app.post_init is not None:
            await app.post_init(app)
        if stop.is_set():
            return  # SIGTERM while post_init waited for the Bot API
        if webhook is not None:
            webhook_url, secret = webhook
            # Serve the path Telegram posts to (the path of WEBHOOK_URL); PTB answers 403 without the secret.
            await app.updater.start_webhook(
                listen="0.0.0.0",
                port=int(os.environ.get("PORT", "8443")),  # noqa: S104
                url_path=urlsplit(webhook_url).path.strip("/"),
                webhook_url=webhook_url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        await app.start()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        log.info("leader: %s", "lease lost, stepping down" if lost.is_set() else "stopping")
        # Graceful: stop taking updates, let the running job (a send or a cycle) finish, then close clients.
        await app.updater.stop()
        _quiesce(app)
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


async def _retry_bot_api(
    what: str, call: Callable[[], Awaitable[object]], stop: asyncio.Event | None
) -> bool:
    """Call the Bot API until it answers (True) or `stop` is set (False), waiting out network errors and 5xx with
    exponential backoff (BOT_API_RETRY_FIRST_S doubling up to BOT_API_RETRY_MAX_S) and 429 as told.

    A rejected token (InvalidToken) and a bad request are not waited out: they raise.
    """
    delay, failures = BOT_API_RETRY_FIRST_S, 0
    while True:
        if stop is not None and stop.is_set():
            return False
        try:
            await call()
        except BadRequest:
            raise
        except RetryAfter as exc:
            after = exc.retry_after
            wait = after.total_seconds() if isinstance(after, timedelta) else float(after)
            reason = f"flood control, retry after {wait:g} s"
        except NetworkError as exc:  # connection refused, timeouts, 502 Bad Gateway and other 5xx
            wait, delay = delay, min(delay * 2, BOT_API_RETRY_MAX_S)
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if failures:
                log.info("Bot API answers again (%s) after %d failed attempt(s)", what, failures)
            return True
        failures += 1
        log.warning("Bot API unreachable (%s: %s); retrying in %g s", what, reason, wait)
        if stop is None:
            await asyncio.sleep(wait)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)


def _webhook_config() -> tuple[str, str] | None:
    """(WEBHOOK_URL, WEBHOOK_SECRET) in webhook mode, None for long polling; exits on a URL without a secret."""
    webhook_url = os.environ.get("WEBHOOK_URL", "").strip()
    if not webhook_url:
        return None
    secret = os.environ.get("WEBHOOK_SECRET", "").strip()
    if not secret:
        raise SystemExit(
            "configuration error: WEBHOOK_SECRET: is required with WEBHOOK_URL "
            "(Telegram sends it back so strangers cannot post updates)"
        )
    return webhook_url, secret


def _quiesce(app: Application) -> None:
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


async def _start_health(
    settings: Settings, lease: Lease, ticks: TickTimes | None = None
) -> HealthServer | None:
    """Serve /healthz and /metrics on HEALTH_PORT, or on PORT when PORT is not taken by the webhook."""
    port = os.environ.get("HEALTH_PORT") or (
        "" if os.environ.get("WEBHOOK_URL") else os.environ.get("PORT", "")
    )
    if not port:
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

    server = HealthServer(check, port=int(port))
    await server.start()
    log.info("health and metrics on port %s", server.port)
    return server
