"""Scaled-out webhook mode: `web` processes queue Telegram's posts in the update stream, `worker` processes answer.

* `web` (any number, behind any load balancer): serves POST <path of WEBHOOK_URL> on PORT, checks Telegram's
  secret header against WEBHOOK_SECRET (403 otherwise), refuses bodies over MAX_UPDATE_BYTES (413), and answers 200
  only once Redis has the update (alerts/store/updates.py); while Redis fails it answers 503, so Telegram posts the
  update again later. At start it sets the webhook unless Telegram already has this URL, secret and update list.
  Also GET /healthz (Redis answers) and /metrics on the same port.
* `worker` (any number): the real Application without the Updater, jobs or menus, fed from the partitions it owns;
  an entry is acknowledged once its handler finished, the reply sent. SIGTERM: stop reading, finish and
  acknowledge what was read, hand the partitions over.

The cycles, doctor and digests run in the one `scheduler` (bot/leader.py, the leader lease); delivery processes
drain the outbox. Long polling with `run` stays the zero-configuration way for one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import sys
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from telegram import Bot, Update
from telegram.error import InvalidToken
from telegram.ext import Application

from alerts.metrics import METRICS
from alerts.store import keys
from alerts.store.connect import connect
from alerts.store.updates import REDIS_DOWN, Handler, PartitionMismatch, UpdateConsumer, UpdateStream
from bot.app import build_application, retry_bot_api
from bot.health import HealthServer, PostHandler
from bot.leader import ALLOWED_UPDATES, WEBHOOK_PORT, _stop_on_signals, webhook
from config.settings import REJECTED_TOKEN, Settings

log = logging.getLogger(__name__)

MAX_UPDATE_BYTES = 1 << 20  # Telegram's updates are a few KB; anything near this is not one
ADD_TIMEOUT_S = 5.0  # Telegram waits for our answer; a Redis that has not taken the update by then gets a 503
SECRET_HEADER = "x-telegram-bot-api-secret-token"


def run_web(settings: Settings) -> None:
    """`positioning-bot web` until SIGTERM/SIGINT."""
    _run(serve_web(settings))


def run_worker(settings: Settings) -> None:
    """`positioning-bot worker` until SIGTERM/SIGINT."""
    _run(serve_worker(settings))


def _run(main: Any) -> None:
    try:
        asyncio.run(main)
    except InvalidToken:
        print(REJECTED_TOKEN, file=sys.stderr)  # PTB's message quotes the token: never print it
        raise SystemExit(2) from None


# ---- web --------------------------------------------------------------------------------------------------------


def webhook_path(url: str) -> str:
    """The path Telegram posts to: WEBHOOK_URL's path ("/" when it has none)."""
    return urlsplit(url).path or "/"


def accept_updates(stream: UpdateStream, secret: str) -> PostHandler:
    """The webhook's POST handler: secret checked, JSON parsed, 200 only once the update is in the stream."""
    expected = secret.encode()
    queued = METRICS.counter("positioning_updates_queued_total", "Updates queued in the update stream")
    duplicates = METRICS.counter("positioning_updates_duplicate_total", "Updates Telegram posted again")

    async def accept(headers: dict[str, str], body: bytes) -> tuple[HTTPStatus, str]:
        if not hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), expected):
            return HTTPStatus.FORBIDDEN, "forbidden\n"
        try:
            update = json.loads(body)
        except ValueError:
            return HTTPStatus.BAD_REQUEST, "not JSON\n"
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return HTTPStatus.BAD_REQUEST, "not an update\n"
        try:
            entry = await asyncio.wait_for(stream.add(update, raw=body), timeout=ADD_TIMEOUT_S)
        except REDIS_DOWN as exc:
            log.warning("web: update %s not queued (%s: %s)", update["update_id"], type(exc).__name__, exc)
            return HTTPStatus.SERVICE_UNAVAILABLE, "try again\n"
        (queued if entry is not None else duplicates).inc()
        return HTTPStatus.OK, "ok\n"

    return accept


async def serve_web(
    settings: Settings, *, stop: asyncio.Event | None = None, started: asyncio.Future[int] | None = None
) -> None:
    """Serve the webhook and /healthz on PORT (8443 when unset) until `stop`; `started` gets the bound port."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    configured = webhook(settings)
    if configured is None:
        raise SystemExit("configuration error: WEBHOOK_URL: `web` needs it (and WEBHOOK_SECRET)")
    url, secret = configured
    redis = connect(settings)
    stream = UpdateStream(redis, settings.update_partitions)

    async def check() -> tuple[bool, dict[str, object]]:
        try:
            await redis.ping()
        except REDIS_DOWN as exc:
            return False, {"reason": f"redis: {type(exc).__name__}"}
        return True, {"role": "web"}

    port = settings.port if settings.port is not None else WEBHOOK_PORT
    server = HealthServer(
        check,
        port=port,
        posts={webhook_path(url): accept_updates(stream, secret)},
        max_post_body=MAX_UPDATE_BYTES,
    )
    try:
        await _check_layout(stream)
        await server.start()
        log.info("web: accepting updates at %s on port %d", webhook_path(url), server.port)
        if started is not None:
            started.set_result(server.port)
        await set_webhook(settings, redis, stop)
        await stop.wait()
    finally:
        await server.stop()
        await redis.aclose()


async def _check_layout(stream: UpdateStream) -> None:
    """Refuse to start with another UPDATE_PARTITIONS than the stream's; unchecked while Redis does not answer."""
    try:
        await stream.check_layout()
    except PartitionMismatch as exc:
        raise SystemExit(str(exc)) from None
    except REDIS_DOWN as exc:
        log.warning("web: could not check UPDATE_PARTITIONS against Redis (%s: %s)", type(exc).__name__, exc)


def _fingerprint(url: str, secret: str) -> str:
    """What was set: URL, secret and update list, hashed (Telegram never tells the secret back)."""
    text = "\n".join([url, secret, *sorted(ALLOWED_UPDATES)])
    return hashlib.sha256(text.encode()).hexdigest()


async def set_webhook(settings: Settings, redis: Redis, stop: asyncio.Event) -> bool:
    """setWebhook unless Telegram has this URL and update list and this deployment set this secret; False when
    `stop` came first. Waits out an unreachable Bot API like the leader's start-up."""
    configured = webhook(settings)
    assert configured is not None
    url, secret = configured
    fingerprint = _fingerprint(url, secret)
    bot = Bot(settings.require_token(), base_url=settings.telegram_api_url)
    try:
        if not await retry_bot_api("getMe", bot.initialize, stop):
            return False
        info: list[Any] = []

        async def ask() -> None:
            info.append(await bot.get_webhook_info())

        if not await retry_bot_api("getWebhookInfo", ask, stop):
            return False
        current = info[-1]
        marker = await _quietly(redis.get(keys.WEBHOOK_FINGERPRINT))
        if (
            current.url == url
            and sorted(current.allowed_updates or ()) == sorted(ALLOWED_UPDATES)
            and marker == fingerprint.encode()
        ):
            log.info("web: the webhook is already set")
            return True

        async def put() -> None:
            await bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)

        if not await retry_bot_api("setWebhook", put, stop):
            return False
        await _quietly(redis.set(keys.WEBHOOK_FINGERPRINT, fingerprint))  # unrecorded: set again next start
        log.info("web: webhook set")
        return True
    finally:
        await bot.shutdown()


async def _quietly(call: Any) -> Any:
    """A Redis call whose failure only costs a setWebhook more (the web serves, answering 503, while Redis is down)."""
    try:
        return await call
    except REDIS_DOWN as exc:
        log.warning("web: Redis error (%s: %s) while checking the webhook", type(exc).__name__, exc)
        return None


# ---- worker -----------------------------------------------------------------------------------------------------


def process_with(app: Application) -> Handler:
    """Handle one update (Telegram's JSON) through the Application and its update processor."""

    async def handle(data: dict[str, Any]) -> None:
        update = Update.de_json(data, app.bot)
        # The consumer already runs one update per chat at a time; the processor caps how many chats run at once.
        await app.update_processor.process_update(update, app.process_update(update))

    return handle


async def serve_worker(
    settings: Settings, *, stop: asyncio.Event | None = None, app: Application | None = None
) -> None:
    """Handle updates from the partitions this worker owns until `stop` (see the module docstring)."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    app = app or build_application(settings, jobs=False, stop=stop)
    redis = connect(settings)
    consumer = UpdateConsumer(
        UpdateStream(redis, settings.update_partitions),
        process_with(app),
        lease_seconds=settings.update_lease_seconds,
    )
    health = await _worker_health(settings, redis, consumer)
    try:
        if not await retry_bot_api("getMe", app.initialize, stop):
            return
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        log.info("worker %s: reading the update stream", consumer.owner)
        try:
            await consumer.run(stop)
        except PartitionMismatch as exc:
            raise SystemExit(str(exc)) from None
        await app.stop()
    finally:
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        await app.shutdown()
        await app.bot.shutdown()
        if health is not None:
            await health.stop()
        await redis.aclose()


async def _worker_health(settings: Settings, redis: Redis, consumer: UpdateConsumer) -> HealthServer | None:
    """/healthz and /metrics on HEALTH_PORT when set (a worker takes no traffic on PORT)."""
    if settings.health_port is None:
        return None

    async def check() -> tuple[bool, dict[str, object]]:
        try:
            await redis.ping()
        except REDIS_DOWN as exc:
            return False, {"reason": f"redis: {type(exc).__name__}"}
        return True, {"role": "worker", "partitions": consumer.owned, "handled": consumer.handled}

    server = HealthServer(check, port=settings.health_port)
    with contextlib.suppress(OSError):
        await server.start()
        return server
    log.warning("worker: HEALTH_PORT %s is taken; no health server", settings.health_port)
    return None
