"""The one place the Telegram Application is built: clients in post_init, closed in post_shutdown."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from datetime import time as dtime
from urllib.parse import urlsplit

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, ContextTypes, Defaults

from alerts.calendar import HK_TZ
from alerts.routing import flush_digest
from bot.delivery import DeliveryWorker, RateLimiter
from bot.deps import Deps, deps
from bot.handlers import DIGEST_TIME, menu, register
from config.settings import Settings

log = logging.getLogger(__name__)

DRAIN_INTERVAL_SECONDS = 1.0


def file_base_url(api_url: str) -> str:
    """Bot API file URL from the method URL: ``…/bot`` → ``…/file/bot``."""
    return api_url[: -len("/bot")] + "/file/bot" if api_url.endswith("/bot") else api_url + "/file"


def build_application(settings: Settings, *, drain_interval: float = DRAIN_INTERVAL_SECONDS,
                      clock: Callable[[], datetime] | None = None) -> Application:
    """Build the Application: HK timezone defaults, base URL from TELEGRAM_API_URL, handlers and jobs.

    `clock` sets the "today" of read-only commands (tests and replays point it at a past period).
    """

    clock = clock or settings.clock()

    async def post_init(app: Application) -> None:
        d = Deps.open(settings, clock)
        app.bot_data["deps"] = d
        limiter = RateLimiter(global_per_sec=settings.delivery_rate)
        app.bot_data["worker"] = DeliveryWorker(app.bot, d.outbox, d.subs, admin_chat_ids=settings.admin_chat_ids,
                                                limiter=limiter, paid_broadcast=settings.allow_paid_broadcast,
                                                now=clock)
        await app.bot.set_my_commands(menu("en"))
        await app.bot.set_my_commands(menu("zh"), language_code="zh")
        if app.job_queue is not None:
            app.job_queue.run_repeating(drain_outbox, interval=drain_interval, first=0.1, name="drain-outbox",
                                        job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30})
            hour, minute = (int(x) for x in DIGEST_TIME.split(":"))
            app.job_queue.run_daily(send_digests, dtime(hour, minute, tzinfo=HK_TZ), name="digests",
                                    job_kwargs={"misfire_grace_time": 3600, "coalesce": True})

    async def post_shutdown(app: Application) -> None:
        d = app.bot_data.get("deps")
        if isinstance(d, Deps):
            await d.close()

    defaults = Defaults(tzinfo=HK_TZ, parse_mode=ParseMode.HTML,
                        link_preview_options=LinkPreviewOptions(is_disabled=True))
    app = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(settings.telegram_api_url)
        .base_file_url(file_base_url(settings.telegram_api_url))
        .defaults(defaults)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    register(app)
    return app


async def drain_outbox(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Job: send what is due in the outbox."""
    worker = context.bot_data["worker"]
    assert isinstance(worker, DeliveryWorker)
    report = await worker.drain()
    if report.sent or report.dead or report.blocked:
        log.info("delivery: %s", report)


async def send_digests(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Job: turn every digest chat's held alerts into one message."""
    d = deps(context)
    now = datetime.now(HK_TZ)
    for chat in await d.subs.active_chats():
        if (await d.subs.settings(chat)).digest:
            await flush_digest(d.subs, d.outbox, chat, now)


def run(settings: Settings) -> None:
    """Run the bot: long polling, or a webhook when WEBHOOK_URL is set (with PORT and WEBHOOK_SECRET)."""
    app = build_application(settings)
    webhook_url = os.environ.get("WEBHOOK_URL", "").strip()
    if not webhook_url:
        app.run_polling(allowed_updates=["message", "channel_post", "callback_query"], drop_pending_updates=False)
        return
    secret = os.environ.get("WEBHOOK_SECRET", "").strip()
    if not secret:
        raise SystemExit("configuration error: WEBHOOK_SECRET: is required with WEBHOOK_URL "
                         "(Telegram sends it back so strangers cannot post updates)")
    port = int(os.environ.get("PORT", "8443"))
    # Serve the path Telegram will post to (the path of WEBHOOK_URL). PTB's webhook server answers 403 to
    # requests without the matching X-Telegram-Bot-Api-Secret-Token header.
    app.run_webhook(listen="0.0.0.0", port=port, url_path=urlsplit(webhook_url).path.strip("/"),  # noqa: S104
                    webhook_url=webhook_url, secret_token=secret,
                    allowed_updates=["message", "channel_post", "callback_query"])
