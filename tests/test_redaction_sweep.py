"""Redaction sweep: the bot token, planted in a 401, a 4xx and a 5xx answer that quote the request path, reaches none
of the exits: log records, CLI output and tracebacks, Redis (every key and value), the messages sent to the admins.

The token-free helpers of tests/test_security.py cover the quieter paths (status pages, health, handler errors);
here every failure the Bot API or a proxy in front of it can answer is driven through delivery and the CLI.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import redis as sync_redis
from redis.asyncio import Redis
from telegram import Bot

from alerts.calendar import HK_TZ
from alerts.store.frames import FetchState, FrameStore
from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore
from bot.cli import main as cli_main
from bot.delivery import MAX_ATTEMPTS, DeliveryWorker, RateLimiter
from config.settings import REJECTED_TOKEN, load_settings, redact, setup_logging
from tests.support.botapi import BotApi
from tests.support.bothelpers import ADMIN, TOKEN
from tests.support.origin import Origin
from tests.test_security import OTHER_TOKEN

ROOT = Path(__file__).resolve().parents[1]
SECRET = TOKEN.split(":", 1)[1]
ENCODED = quote(TOKEN, safe="")  # the colon as %3A, as a proxy's page or an access log may quote the path
NEEDLES = (TOKEN, SECRET, ENCODED, quote(ENCODED, safe=""))
PATH = f"/bot{TOKEN}/sendMessage"
CHAT_401, CHAT_400, CHAT_503, CHAT_502 = 3001, 3002, 3003, 3004
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")  # setup_logging's format


def proxy_page(status: int, path: str) -> bytes:
    """An HTML error page of a reverse proxy that quotes the request path it could not forward."""
    return (
        f"<html><head><title>{status} Bad Gateway</title></head><body><h1>{status} Bad Gateway</h1>"
        f"<p>upstream failed for POST {path}</p></body></html>"
    ).encode()


def assert_clean(where: str, text: str | bytes) -> None:
    """No form of the token (raw, secret half, URL-encoded once or twice) is in `text`."""
    data = text.encode() if isinstance(text, str) else text
    for needle in NEEDLES:
        assert needle.encode() not in data, f"the token ({needle[:12]}…) leaks in {where}"


def redis_dump(url: str) -> dict[bytes, list[bytes]]:
    """Every key with its values, whatever the type (gzip'd blobs unpacked): what an operator could read."""
    out: dict[bytes, list[bytes]] = {}
    with sync_redis.Redis.from_url(url) as client:
        for key in client.scan_iter(count=500):
            kind = client.type(key).decode()
            values: list[bytes]
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [part for pair in client.hgetall(key).items() for part in pair]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                values = [repr(entry).encode() for entry in client.xrange(key)]
            else:
                values = [repr(kind).encode()]
            out[key] = [gzip.decompress(v) if v.startswith(b"\x1f\x8b") else v for v in values]
    return out


def assert_redis_clean(url: str) -> int:
    """Sweep every key and value; returns how many keys were read (so a sweep of nothing shows)."""
    dump = redis_dump(url)
    for key, values in dump.items():
        assert_clean(f"Redis key name {key[:40]!r}", key)
        for value in values:
            assert_clean(f"Redis key {key.decode(errors='replace')}", value)
    return len(dump)


@pytest.fixture
def logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[pytest.LogCaptureFixture, io.StringIO]]:
    """The production logging setup (stderr into a buffer) plus caplog, every library at DEBUG.

    caplog's handler is not one setup_logging filters: its records are redacted because every record is.
    """
    root = logging.getLogger()
    saved_handlers, saved_level, saved_factory = (
        list(root.handlers),
        root.level,
        logging.getLogRecordFactory(),
    )
    names = ("httpx", "httpcore", "telegram", "apscheduler", "bot", "alerts")
    saved_levels = {name: logging.getLogger(name).level for name in names}
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)  # basicConfig binds its handler to the current stderr
    root.handlers.clear()
    setup_logging("DEBUG")
    root.handlers.extend(h for h in saved_handlers if h not in root.handlers)  # caplog's, unfiltered
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog, buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logging.setLogRecordFactory(saved_factory)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


def cli_env(api: BotApi, redis_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_URL") and key not in ("PORT", "HEALTH_PORT", "WEBHOOK_SECRET", "CLOCK_START")
    }
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api.base_url,
            "REDIS_URL": redis_url,
            "ADMIN_CHAT_IDS": str(ADMIN),
            "LOG_LEVEL": "DEBUG",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def not_logged(stderr: str) -> list[str]:
    """The stderr lines that are not log records: what the command itself printed."""
    return [line for line in stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]


# --------------------------------------------------------------------------------------------- the one redaction


def test_redact_finds_every_form_of_the_token() -> None:
    load_settings(
        {"TELEGRAM_BOT_TOKEN": TOKEN}, env_file=None
    )  # configuring a token teaches redact its secret
    texts = [
        f"POST https://api.telegram.org/bot{TOKEN}/getMe",
        f"GET /bot{ENCODED}/getMe",
        f"GET /bot{quote(ENCODED, safe='')}/getMe",
        f"a proxy split it: {SECRET}",
        repr(TOKEN.encode()),
        f'{{"description": "refused {PATH}"}}',
    ]
    for text in texts:
        assert "<token>" in redact(text)
        assert_clean("redact()", redact(text))
    assert redact("1234567:" + "b" * 35) == "<token>"  # any bot-token shape, configured or not
    assert redact("no token at 12:30, code 00700, 2025-11-27T18:00:00+08:00") == (
        "no token at 12:30, code 00700, 2025-11-27T18:00:00+08:00"
    )


# --------------------------------------------------------------------------------------------- delivery


async def test_delivery_failures_quoting_the_token_leave_no_trace(
    redis: Redis, redis_url: str, api: BotApi, logs: tuple[pytest.LogCaptureFixture, io.StringIO]
) -> None:
    """401, 400, 503 (JSON) and 502 (a proxy's HTML page) answers quoting /bot<token>/…: all dead-lettered."""
    caplog, stderr = logs
    load_settings({"TELEGRAM_BOT_TOKEN": TOKEN}, env_file=None)
    now = datetime.now(HK_TZ)
    outbox = Outbox(redis)
    last_try = MAX_ATTEMPTS - 1  # a 5xx is retried; on the last attempt it is dead-lettered at once
    for chat, attempts in ((CHAT_401, 0), (CHAT_400, 0), (CHAT_503, last_try), (CHAT_502, last_try)):
        item = OutboxItem(
            id=item_id(chat, "text", ["sweep"]),
            chat_id=chat,
            kind="text",
            text=f"hello {chat}",
            attempts=attempts,
        )
        assert await outbox.put(item, now)
    api.fail_next("sendMessage", 401, f"Unauthorized: the token in {PATH} is not valid", chat_id=CHAT_401)
    api.fail_next("sendMessage", 400, f"Bad Request: refused by the proxy: POST {PATH}", chat_id=CHAT_400)
    api.fail_next("sendMessage", 503, f"Service Unavailable: no upstream for {PATH}", chat_id=CHAT_503)
    api.fail_next("sendMessage", 502, chat_id=CHAT_502, body=proxy_page(502, f"/bot{ENCODED}/sendMessage"))
    async with Bot(TOKEN, base_url=api.base_url) as bot:
        worker = DeliveryWorker(
            bot,
            outbox,
            SubscriptionStore(redis),
            admin_chat_ids=(ADMIN,),
            now=lambda: now,
            limiter=RateLimiter(global_per_sec=1000, chat_interval=0.0),
        )
        first = await worker.drain()
        second = await worker.drain()  # the admin notices queued by the first
    assert (first.dead, second.sent) == (4, 4)
    assert sorted(c.status for c in api.calls("sendMessage") if not c.ok) == [400, 401, 502, 503]

    dead = await outbox.dead()
    assert {d["item"]["chat_id"] for d in dead} == {CHAT_401, CHAT_400, CHAT_503, CHAT_502}
    assert all("<token>" in d["reason"] for d in dead), [d["reason"] for d in dead]
    notices = api.texts(ADMIN)
    assert len(notices) == 4 and all("&lt;token&gt;" in text for text in notices), notices
    assert_clean("the admin messages", repr(api.messages()))
    assert await asyncio.to_thread(assert_redis_clean, redis_url) > 0
    assert "dead-lettering" in caplog.text and "dead-lettering" in stderr.getvalue()
    assert_clean("caplog", caplog.text + "".join(str(r.__dict__.get("args")) for r in caplog.records))
    assert_clean("the log output", stderr.getvalue())


async def test_status_and_fetch_state_are_redacted_at_the_write(
    redis: Redis,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exception texts reach Redis only through the stores, which redact them; `status` shows the redacted text."""
    store = FrameStore(redis)
    now = datetime.now(HK_TZ)
    await store.record_status(
        "hkex-quotes",
        now,
        ok=False,
        detail={
            "date": "2025-11-27",
            "message": f"FetchFailed: HTTP 502 from the proxy: {proxy_page(502, PATH).decode()}",
        },
    )
    await store.record_status(
        "hkex-short", now, ok=False, detail={"message": f"NetworkError: GET /bot{ENCODED}/x"}
    )
    await store.save_fetch_state(
        "https://origin.invalid/file", FetchState(etag=f'"{TOKEN}"', sha256="00"), now
    )
    assert "<token>" in (await store.status("hkex-quotes"))["error_message"]
    assert (await store.fetch_state("https://origin.invalid/file")).etag == '"<token>"'
    assert await asyncio.to_thread(assert_redis_clean, redis_url) == 3

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("REDIS_URL", redis_url)
    factory = logging.getLogRecordFactory()
    try:
        assert await asyncio.to_thread(cli_main, ["status"]) == 0
    finally:
        logging.setLogRecordFactory(
            factory
        )  # the CLI's logging setup installs its own: keep other tests as they were
    out = capsys.readouterr()
    assert "<token>" in out.out
    assert_clean("`positioning-bot status`", out.out + out.err)


# --------------------------------------------------------------------------------------------- the command line


def test_poll_deliver_with_a_rejected_token_is_one_line(
    redis_url: str, origin: Origin, tmp_path: Path
) -> None:
    """401 from Telegram in `poll --deliver`: the configuration error `run` gives, exit 2, no traceback."""
    with sync_redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    with BotApi(token=OTHER_TOKEN) as strict:  # any other token is answered 401 Unauthorized
        env = cli_env(strict, redis_url, HKEX_URL=origin.url)  # the origin has no file: "not published"
        done = run_cli(env, tmp_path, "poll", "hkex-quotes", "--date", "2025-11-27", "--deliver")
        assert any(call.status == 401 for call in strict.sent)
    assert done.returncode == 2, done.stderr
    assert (
        "cycle source=hkex-quotes date=2025-11-27" in done.stdout
    )  # the cycles ran, then delivery met the 401
    assert not_logged(done.stderr) == [REJECTED_TOKEN]
    assert "Traceback" not in done.stdout + done.stderr
    assert_clean("`poll --deliver` output", done.stdout + done.stderr)
    assert assert_redis_clean(redis_url) > 0


@pytest.mark.parametrize(
    "answers",
    [
        [
            (503, None, proxy_page(503, f"/bot{ENCODED}/getMe")),
            (400, f"Bad Request: refused: POST /bot{TOKEN}/getMe", None),
        ],
        [(403, None, proxy_page(403, f"/bot{TOKEN}/getMe"))],
    ],
    ids=["5xx-html-then-4xx-json", "4xx-html"],
)
def test_run_failing_at_start_prints_a_redacted_traceback(
    redis_url: str, tmp_path: Path, answers: list[tuple[int, str | None, bytes | None]]
) -> None:
    """A 5xx is waited out (or escapes); a 4xx escapes `run`: the CLI prints its traceback redacted and exits 1."""
    with sync_redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    with BotApi() as api:
        for status, description, body in answers:
            api.fail_next("getMe", status, description, body=body)
        done = run_cli(cli_env(api, redis_url), tmp_path, "run")
        assert [call.status for call in api.calls("getMe")] == [status for status, _, _ in answers]
    assert done.returncode == 1, done.stderr
    final = done.stderr[done.stderr.rindex("Traceback (most recent call last)") :].rstrip().splitlines()
    assert final[-1].startswith(("telegram.error.BadRequest: ", "telegram.error.Forbidden: ")), final[-1]
    assert "<token>" in final[-1]  # the quoted path is there, redacted
    assert_clean("`run` output", done.stdout + done.stderr)
    assert_redis_clean(redis_url)
