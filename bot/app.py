"""The one place the Telegram Application is built: clients in post_init, closed in post_shutdown; its jobs.

Leading (the lease, polling or the webhook, stepping down) is bot.leader's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from datetime import time as dtime

from telegram import BotCommandScope, BotCommandScopeChat, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults

from alerts.calendar import HK_TZ
from alerts.routing import flush_digest
from alerts.store.ratelimit import live_couriers
from bot.delivery import DeliveryWorker, worker_for
from bot.deps import Deps, deps
from bot.fairness import ChatOrderedProcessor
from bot.handlers import DIGEST_TIME, menu, menus, register
from bot.health import TickTimes
from bot.scheduler import REDIS_DOWN, Poller, RedisOutage
from config.settings import Settings

log = logging.getLogger(__name__)

DRAIN_INTERVAL_SECONDS = 1.0
DOCTOR_TIME = dtime(5, 30, tzinfo=HK_TZ)  # before the buyback report's 06:00 window opens
POLL_TICK_SECONDS = 5.0  # the poller decides per (source, date) whether a fetch is due (default cadence 20 s)
# Start-up against an unreachable Bot API: retry after 1 s, doubling up to 60 s, until it answers or SIGTERM.
BOT_API_RETRY_FIRST_S = 1.0
BOT_API_RETRY_MAX_S = 60.0


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
    jobs: bool = True,
    drain: bool = True,
) -> Application:
    """Build the Application: HK timezone defaults, base URL from TELEGRAM_API_URL, handlers and jobs.

    `clock` sets the "today" of read-only commands (tests and replays point it at a past period); `ticks` records
    the poll ticks for /healthz; `stop` ends the start-up's Bot API retries. Processes of a scaled-out deployment
    (README "Scaling out"): `jobs=False` builds a `worker`'s (handlers only: no jobs, no menus), `drain=False` a
    `scheduler`'s (the delivery processes drain the outbox).
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
        if not jobs:
            return  # a `worker`: the scheduler sets the menus and runs the jobs
        if not await register_menus(app, settings.admin_chat_ids, stop):
            return  # stopped while the Bot API was unreachable
        if not app.bot.supports_inline_queries:
            log.info("inline mode is off for this bot: enable it with @BotFather /setinline")
        if app.job_queue is not None:
            # Deliberate APScheduler settings: one instance at a time, late ticks coalesced, never silently skipped.
            if drain and not settings.delivery_processes:  # else `delivery` processes drain the outbox
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
                app.bot_data["poller"].start_warming()  # routing's cache of chats, before the first cycle
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
        poller = app.bot_data.get("poller")
        if isinstance(poller, Poller):
            await poller.stop_warming()
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


async def register_menus(
    app: Application, admin_chat_ids: tuple[int, ...], stop: asyncio.Event | None
) -> bool:
    """setMyCommands for every scope (bot.handlers.menus), in English and 繁中; False when stopped meanwhile.

    An operator chat Telegram does not know yet (the operator never opened the bot: 400 "chat not found") is
    skipped with a warning: it gets the default menu until the next start.
    """
    for scope, names in menus(admin_chat_ids):
        for lang, code in (("en", None), ("zh", "zh")):

            def call(
                scope: BotCommandScope | None = scope,
                names: tuple[str, ...] = names,
                lang: str = lang,
                code: str | None = code,
            ) -> Awaitable[bool]:
                return app.bot.set_my_commands(menu(lang, names), scope=scope, language_code=code)

            try:
                if not await retry_bot_api("setMyCommands", call, stop):
                    return False
            except BadRequest as exc:
                if not isinstance(scope, BotCommandScopeChat):
                    raise
                log.warning("operator menu for chat %s not set: %s", scope.chat_id, exc.message)
                break
    return True


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
        if await live_couriers(worker.outbox.redis):
            # `delivery` processes run although DELIVERY_PROCESSES is unset here: two senders with separate limits
            # would exceed Telegram's, so this process leaves the outbox to them (said once per process).
            if not context.bot_data.get("couriers_noted"):
                context.bot_data["couriers_noted"] = True
                log.warning("delivery processes are running: this process leaves the outbox to them")
            return
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
    now = d.clock().astimezone(
        HK_TZ
    )  # the injected clock: replays and tests run the digest at their own time
    for chat in await d.subs.active_chats():
        if (await d.subs.settings(chat)).digest:
            await flush_digest(d.subs, d.outbox, chat, now)


async def retry_bot_api(what: str, call: Callable[[], Awaitable[object]], stop: asyncio.Event | None) -> bool:
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
