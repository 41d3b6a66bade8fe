"""Security review: the token never leaks, admin commands, chat isolation, webhook secret, input caps, secrets in the
repository and pinned dependencies. Each test fails if its property breaks."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import socket
import subprocess
import sys
import tomllib
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from redis.asyncio import Redis
from telegram import Bot
from telegram.error import NetworkError, TelegramError
from telegram.ext import Application, CommandHandler
from telegram.request import HTTPXRequest

from alerts.store import keys
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.cli import main as cli_main
from bot.deps import Deps
from bot.handlers import MAX_ARGS
from bot.leader import serve, start_health
from config.settings import Settings, setup_logging
from tests.support.botapi import BotApi, parse_html
from tests.support.bothelpers import ADMIN, TOKEN, bot_settings, running_bot, seed_demo
from tests.support.paths import free_port as _free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = TOKEN.split(":", 1)[1]
OTHER_TOKEN = "111111111:only-this-token-is-accepted"  # the stand-in refuses TOKEN with 401
USER, OTHER, GROUP, CHANNEL, WARM_UP = 1001, 1002, -4001, -1001234567, 7
# Test-only tokens, documented here and in tests/support/bothelpers.py; any other token-shaped string in the repository fails.
ALLOWED_TOKENS = frozenset(
    {
        TOKEN,
        OTHER_TOKEN,
        "123456:TEST-token-for-the-stand-in-only",
        "123456789:AAExampleExampleExampleExample_abc",
    }
)
TELEGRAM_TOKEN = re.compile(rb"\d{8,10}:[A-Za-z0-9_-]{35}")  # the shape BotFather issues
TOKEN_SHAPED = re.compile(rb"\d{3,}:[A-Za-z0-9_-]{20,}")  # what logging redacts; catches test tokens too
KEY_PATTERNS = {
    "AWS access key": re.compile(rb"AKIA[0-9A-Z]{16}"),
    "GitHub token": re.compile(rb"gh[pousr]_[A-Za-z0-9]{36}"),
    "Slack token": re.compile(rb"xox[abprs]-[A-Za-z0-9-]{10,}"),
    "private key": re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Google API key": re.compile(rb"AIza[0-9A-Za-z_-]{35}"),
    "OpenAI-style key": re.compile(rb"\bsk-[A-Za-z0-9]{20,}"),
    "password in a URL": re.compile(rb"[a-z]+://[^/\s:@'\"]+:[^/\s:@'\"]{3,}@"),
}


@pytest.fixture
async def app(api: BotApi, redis: Redis, redis_url: str) -> AsyncIterator[Application]:
    await seed_demo(redis)
    async with running_bot(api, redis_url) as application:
        api.push_message(WARM_UP, "/help")  # the first read-only command loads the data view (seconds)
        await api.await_sent(1, chat_id=WARM_UP, timeout=60)
        yield application


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The production logging setup writing into a buffer, with every library turned up to DEBUG."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "telegram", "apscheduler")}
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)  # basicConfig binds its handler to the current stderr
    root.handlers.clear()
    setup_logging("DEBUG")
    for name in saved:  # the worst case: an operator turns every library up to DEBUG
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def assert_no_token(text: str) -> None:
    """Neither the token nor its secret half appears in `text`."""
    assert TOKEN not in text
    assert SECRET not in text


async def _say(api: BotApi, chat: int, text: str, n: int, **kw: object) -> list[str]:
    api.push_message(chat, text, **kw)  # type: ignore[arg-type]
    await api.await_sent(n, chat_id=chat, timeout=10)
    return api.texts(chat)


# --------------------------------------------------------------------------------------------- the token


async def test_token_never_logged_even_at_debug(
    api: BotApi, redis: Redis, redis_url: str, debug_logs: io.StringIO
) -> None:
    async with running_bot(api, redis_url) as app:
        api.push_message(1, "/start")
        api.push_message(1, "/watch 1810")
        await api.await_sent(2, chat_id=1, timeout=10)
        api.fail_next("sendMessage", 502)
        api.push_message(1, "/help")
        await api.until(lambda: any(c.status == 502 for c in api.sent), timeout=10)
        assert app.bot_data is not None
    err = debug_logs.getvalue()
    assert "getUpdates" in err or "sendMessage" in err  # the DEBUG logs did describe requests
    assert_no_token(err)


def test_tracebacks_in_logs_are_redacted(debug_logs: io.StringIO) -> None:
    url = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
    try:
        try:
            raise httpx.ConnectError(f"connection failed for {url}")
        except httpx.ConnectError as err:
            raise NetworkError(f"httpx.ConnectError: {err}") from err
    except NetworkError:
        logging.getLogger("telegram.ext.Updater").exception("Exception happened while polling for updates.")
    logging.getLogger("bot").error("plain message quoting %s", url, stack_info=True)
    out = debug_logs.getvalue()
    assert "Traceback" in out and "httpx.ConnectError" in out and "Stack (most recent call last)" in out
    assert out.count("<token>") >= 3  # the chained cause, the wrapper and the message
    assert_no_token(out)


async def test_network_errors_do_not_quote_the_token(api: BotApi, debug_logs: io.StringIO) -> None:
    """ConnectError and ReadTimeout from the Bot API: the exception, its chain and the logged traceback."""
    closed = f"http://127.0.0.1:{_free_port()}/bot"
    quick = HTTPXRequest(connect_timeout=0.5, read_timeout=0.3, write_timeout=0.3)
    failures: list[BaseException] = []
    for base_url in (closed, api.base_url):
        api.delay("getMe", 2.0)  # only the stand-in sees it: a read timeout there
        bot = Bot(TOKEN, base_url=base_url, request=quick)
        with pytest.raises(TelegramError) as caught:
            await bot.get_me()
        failures.append(caught.value)
        logging.getLogger("bot.app").error("Bot API call failed", exc_info=caught.value)
    assert {type(f).__name__ for f in failures} == {"NetworkError", "TimedOut"}
    assert {type(f.__cause__).__name__ for f in failures} >= {"ConnectError", "ReadTimeout"}
    for failure in failures:
        assert_no_token("".join(traceback.format_exception(failure)) + repr(failure))
    assert "Bot API call failed" in debug_logs.getvalue()
    assert_no_token(debug_logs.getvalue())


async def test_handler_error_tells_admins_without_the_token(
    app: Application, api: BotApi, debug_logs: io.StringIO
) -> None:
    """on_error sends a summary of the exception to the admins: a URL with the token in it is redacted."""

    async def boom(*_: object) -> None:
        raise NetworkError(f"httpx.ConnectError: connection failed for {api.base_url}{TOKEN}/sendMessage")

    app.add_handler(CommandHandler("boom", boom), group=-1)
    api.push_message(USER, "/boom")
    admin = await api.await_sent(1, chat_id=ADMIN, timeout=10)
    await api.until(lambda: any("something went wrong" in text for text in api.texts(USER)), timeout=10)
    assert "Handler error" in admin[0]["text"] and "&lt;token&gt;" in admin[0]["text"]
    assert_no_token(repr(api.messages()))
    errors = app.bot_data["handler_errors"]
    assert len(errors) == 1 and "<token>" in errors[0]
    assert_no_token(repr(errors))
    assert "handler error" in debug_logs.getvalue()
    assert_no_token(debug_logs.getvalue())


def test_rejected_token_cli_error_is_one_line_without_the_token(redis_url: str, tmp_path: Path) -> None:
    """PTB's InvalidToken quotes the token; `positioning-bot run` prints a configuration error instead."""
    import redis as sync_redis

    with sync_redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    with BotApi(token=OTHER_TOKEN) as strict:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PORT", "HEALTH_PORT", "WEBHOOK_URL", "WEBHOOK_SECRET", "CLOCK_START")
        }
        env.update(
            {
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": strict.base_url,
                "REDIS_URL": redis_url,
                "LOG_LEVEL": "DEBUG",
                "PYTHONPATH": str(ROOT),
            }
        )
        done = subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert any(call.status == 401 for call in strict.sent)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "configuration error: TELEGRAM_BOT_TOKEN" in done.stderr
    assert "Traceback" not in output
    assert_no_token(output)


async def test_status_and_health_output_never_show_the_token(
    app: Application, api: BotApi, redis_url: str
) -> None:
    settings = bot_settings(api, redis_url)
    assert "telegram_bot_token" not in repr(settings)
    assert_no_token(repr(settings) + str(settings))
    texts = await _say(api, USER, "/status", 1)
    assert "hkex-quotes" in texts[0]
    from alerts.store.lease import Lease

    lease = Lease(Redis.from_url(redis_url), ttl_seconds=5)
    await lease.wait_acquire(stop=asyncio.Event())
    health = await start_health(bot_settings(api, redis_url, HEALTH_PORT="0"), lease)
    assert health is not None
    try:
        async with httpx.AsyncClient() as client:
            answers = [
                await client.get(f"http://127.0.0.1:{health.port}{path}") for path in ("/healthz", "/metrics")
            ]
            bodies = [answer.text for answer in answers]
    finally:
        await health.stop()
        await lease.release()
        await lease.redis.aclose()
    assert [answer.status_code for answer in answers] == [200, 200] and "lease_holder" in bodies[0]
    assert_no_token("\n".join(texts + bodies))


def test_cli_status_output_never_shows_the_token(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert cli_main(["status"]) == 0
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN + "!")  # malformed: the error must not echo the value
    assert cli_main(["status"]) == 2
    out = capsys.readouterr()
    assert "hkex-quotes" in out.out and "TELEGRAM_BOT_TOKEN" in out.err
    assert_no_token(out.out + out.err)


# --------------------------------------------------------------------------------------------- admin commands


async def test_admin_commands_refused_to_non_admins_in_groups_and_channels(
    app: Application, api: BotApi, redis: Redis
) -> None:
    await _say(api, OTHER, "/start", 1)
    texts = await _say(api, GROUP, "/stats", 1, chat_type="group", user_id=USER)
    texts = await _say(api, GROUP, "/broadcast take over", 2, user_id=USER)
    api.push_channel_post(CHANNEL, "/stats")
    api.push_channel_post(CHANNEL, "/broadcast take over")
    channel = await api.await_sent(2, chat_id=CHANNEL, timeout=10)
    for text in texts + [m["text"] for m in channel]:
        assert "for the bot's operators" in text
    await asyncio.sleep(0.6)  # three drain intervals: a queued broadcast would have gone out by now
    assert await Outbox(redis).pending() == 0
    assert len(api.texts(OTHER)) == 1  # only the /start reply: no broadcast reached anyone
    # The admin's own user id works in a group too, but the answer goes to the admin privately, never to the group.
    await _say(api, ADMIN, "/start", 1)
    texts = await _say(api, GROUP, "/stats", 3, user_id=ADMIN)
    assert "private message" in texts[2] and "Stats" not in texts[2]
    private = await api.await_sent(2, chat_id=ADMIN, timeout=10)
    assert "Stats" in private[-1]["text"]


# --------------------------------------------------------------------------------------------- chat isolation


async def test_callbacks_act_only_on_the_chat_of_their_message(
    app: Application, api: BotApi, redis: Redis
) -> None:
    subs = SubscriptionStore(redis)
    await _say(api, USER, "/settings", 1)
    await _say(api, OTHER, "/start", 1)
    settings_message = next(c for c in api.calls("sendMessage") if c.chat_id == USER).result["message_id"]
    before_other = await redis.hgetall(keys.chat_settings(OTHER))
    # A press reported by another user under USER's message changes USER's chat, never the presser's.
    api.push_callback(USER, "set:m", message_id=settings_message, user_id=OTHER)
    await api.until(lambda: len(api.answered) == 1, timeout=10)
    assert (await subs.settings(USER)).market and not (await subs.settings(OTHER)).market
    forged = [
        "set:m:1002",
        f"set:m {OTHER}",
        f"mute:01810:1d:{OTHER}",
        f"mute:01810:1d;chat={OTHER}",
        f"set:r:0:{OTHER}",
        "card:01810" + "0" * 100,
        "x" * 200,
    ]
    for data in forged:
        api.push_callback(USER, data, message_id=settings_message, user_id=OTHER)
    await api.until(lambda: len(api.answered) == 1 + len(forged), timeout=10)
    expired = [params.get("text") for params in list(api.answered.values())[1:]]
    assert expired == ["This button has expired."] * len(forged)
    assert (await subs.settings(USER)).market and not (await subs.settings(OTHER)).market
    assert await redis.hgetall(keys.chat_settings(OTHER)) == before_other
    assert await redis.exists(keys.mutes(USER), keys.mutes(OTHER)) == 0
    # In a group, a member's press changes the group (documented: members manage group settings), not the member.
    await _say(api, GROUP, "/settings", 1, chat_type="group", user_id=USER)
    group_message = next(c for c in api.calls("sendMessage") if c.chat_id == GROUP).result["message_id"]
    api.push_callback(GROUP, "set:d", message_id=group_message, user_id=OTHER)
    await api.until(lambda: len(api.answered) == 2 + len(forged), timeout=10)
    assert (await subs.settings(GROUP)).digest
    assert not (await subs.settings(USER)).digest and not (await subs.settings(OTHER)).digest


async def test_commands_act_on_the_senders_chat_only(app: Application, api: BotApi, redis: Redis) -> None:
    subs = SubscriptionStore(redis)
    await _say(api, USER, "/watch 1810 700", 1)
    texts = await _say(api, OTHER, "/list", 1)
    assert "01810" not in texts[0] and "00700" not in texts[0]
    await _say(api, OTHER, "/mute 1810 1d", 2)
    await _say(api, OTHER, "/lang zh", 3)
    await _say(api, OTHER, "/digest on", 4)
    assert await redis.zrange(keys.mutes(USER), 0, -1) == []
    assert await redis.zrange(keys.mutes(OTHER), 0, -1) == [b"01810"]
    mine = await subs.settings(USER)
    assert (mine.lang, mine.digest) == ("en", False)
    # A member's commands in a group act on the group; their private chat is untouched, and the reverse.
    await _say(api, GROUP, "/watch 9988", 1, chat_type="group", user_id=USER)
    await _say(api, GROUP, "/mute 700 2w", 2, user_id=USER)
    assert await subs.watchlist(GROUP) == ["09988"]
    assert await subs.watchlist(USER) == ["00700", "01810"]
    assert await redis.zrange(keys.mutes(GROUP), 0, -1) == [b"00700"]
    texts = await _say(api, USER, "/list", 2)
    assert "09988" not in texts[1]
    assert await subs.watchers("09988") == {GROUP}


# --------------------------------------------------------------------------------------------- webhook


async def test_webhook_refuses_missing_wrong_empty_or_misplaced_secret(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    secret = "s3cr3t-token"
    async with running_bot(api, redis_url) as application:
        await application.updater.stop()
        port = _free_port()
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            webhook_url="https://example.invalid/telegram",
            secret_token=secret,
        )
        url = f"http://127.0.0.1:{port}/telegram"
        refused_headers: list[dict[str, str]] = [
            {},
            {"X-Telegram-Bot-Api-Secret-Token": "nope"},
            {"X-Telegram-Bot-Api-Secret-Token": ""},
            {"X-Telegram-Bot-Api-Secret": secret},
            {"Secret-Token": secret},
            {"Authorization": f"Bearer {secret}"},
            {"X-Telegram-Bot-Api-Secret-Token": secret.upper()},
            {"X-Telegram-Bot-Api-Secret-Token": secret + "x"},
        ]
        async with httpx.AsyncClient() as client:
            statuses = []
            for number, headers in enumerate(refused_headers, start=1):
                statuses.append(
                    (await client.post(url, json=_start_update(number), headers=headers)).status_code
                )
            in_query = await client.post(f"{url}?secret_token={secret}", json=_start_update(50))
            accepted = await client.post(
                url, json=_start_update(99), headers={"X-Telegram-Bot-Api-Secret-Token": secret}
            )
        assert statuses == [403] * len(refused_headers)
        assert in_query.status_code == 403 and accepted.status_code == 200
        await api.await_sent(1, chat_id=USER, timeout=10)
        await asyncio.sleep(0.5)
        assert len(api.texts(USER)) == 1  # only the accepted update was processed


def _start_update(update_id: int) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "text": "/start",
            "chat": {"id": USER, "type": "private"},
            "from": {"id": USER, "is_bot": False, "first_name": "U"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_webhook_mode_refuses_to_start_without_a_secret(
    api: BotApi, redis: Redis, redis_url: str
) -> None:
    settings = bot_settings(
        api, redis_url, WEBHOOK_URL="https://bot.example.invalid/telegram", WEBHOOK_SECRET="   "
    )
    with pytest.raises(SystemExit, match="WEBHOOK_SECRET"):
        await serve(settings, stop=asyncio.Event())
    assert api.calls("setWebhook") == [] and api.calls("getUpdates") == []


async def test_webhook_that_cannot_start_closes_every_client_it_opened(
    api: BotApi, redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The leader has opened Redis and HTTP clients (post_init) when the webhook's port turns out to be taken: the
    # error must reach the caller and the clients must be closed, not left to the garbage collector (whose
    # "unclosed connection" warnings would then surface in some later, unrelated test).
    opened: list[Deps] = []
    real_open = Deps.open

    def recording_open(settings: Settings, clock: Callable[[], datetime] | None = None) -> Deps:
        opened.append(real_open(settings, clock))
        return opened[-1]

    monkeypatch.setattr(Deps, "open", recording_open)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104 - the webhook listens on every interface
        taken.listen()
        settings = bot_settings(
            api,
            redis_url,
            WEBHOOK_URL="https://bot.example.invalid/telegram",
            WEBHOOK_SECRET="s3cr3t-token",
            PORT=str(taken.getsockname()[1]),
        )
        with pytest.raises(Exception, match="(?i)address") as raised:  # noqa: PT011 - PTB wraps the bind error
            await asyncio.wait_for(serve(settings, stop=asyncio.Event()), timeout=60)
        _close_failed_listener(raised.value)
    assert api.calls("setMyCommands"), "post_init ran, so clients were open when the webhook failed"
    assert len(opened) == 1
    deps = opened[0]
    pool = deps.redis.connection_pool
    connections = [*pool._available_connections, *pool._in_use_connections]  # noqa: SLF001 - no public listing
    assert connections, "the view load at start-up connected to Redis, so there was something to close"
    assert [conn for conn in connections if conn.is_connected] == []
    assert deps.http.is_closed
    assert deps._loading is None or deps._loading.done()  # noqa: SLF001 - the start-up view load is stopped


def _close_failed_listener(error: BaseException) -> None:
    """Close the socket tornado's bind_sockets leaves open when bind fails (it re-raises without closing it)."""
    for link in (error, error.__cause__, error.__context__):
        frame = link.__traceback__ if link is not None else None
        while frame is not None:
            candidate = frame.tb_frame.f_locals.get("sock")
            if isinstance(candidate, socket.socket):
                candidate.close()
            frame = frame.tb_next


# --------------------------------------------------------------------------------------------- input caps


async def test_input_caps_message_arguments_and_watchlist(
    app: Application, api: BotApi, redis: Redis
) -> None:
    texts = await _say(api, USER, "/watch " + "9" * 4000, 1)
    assert "I don't know" in texts[0] and "9" * 33 not in texts[0] and len(texts[0]) < 400
    texts = await _say(api, USER, "x" * 4096, 2)
    assert "Send a stock code" in texts[1] and "x" * 50 not in texts[1]
    texts = await _say(api, USER, "/mute " + " ".join(["1810"] * (MAX_ARGS + 1)), 3)
    assert f"at most {MAX_ARGS}" in texts[2]
    assert await redis.zcard(keys.mutes(USER)) == 0
    subs = SubscriptionStore(redis)
    await subs.watch(USER, [f"{n:05d}" for n in range(2000, 2000 + keys.WATCHLIST_CAP - 1)])
    texts = await _say(api, USER, "/watch 1810 700", 4)
    assert f"full ({keys.WATCHLIST_CAP} stocks)" in texts[3]
    assert len(await subs.watchlist(USER)) == keys.WATCHLIST_CAP


async def test_broadcast_is_capped_to_one_message_per_chat(
    app: Application, api: BotApi, redis: Redis
) -> None:
    await _say(api, OTHER, "/start", 1)
    body = (
        "<&>" * 1350
    )  # 4,050 characters (a message holds 4,096) that escaping blows up more than four times
    api.push_message(ADMIN, "/broadcast " + body)
    await api.until(lambda: any("Queued for" in text for text in api.texts(ADMIN)), timeout=10)
    received = await api.await_sent(2, chat_id=OTHER, timeout=10)
    outbox = Outbox(redis)
    for _ in range(200):  # every part of every queued item delivered (parts to one chat go 1 s apart)
        if await outbox.pending() == 0:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert await outbox.pending() == 0
    assert len(api.texts(OTHER)) == 2  # the /start reply and exactly one broadcast message
    plain, _ = parse_html(received[1]["text"])
    assert plain.startswith("📣 <&><&>") and len(plain) <= 4096


# --------------------------------------------------------------------------------------------- the repository


def _repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def test_no_secrets_in_the_repository() -> None:
    files = _repository_files()
    assert len(files) > 100 and any(f.name == "bothelpers.py" for f in files)
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0  # .env stays local
    found: list[str] = []
    for path in files:
        data = path.read_bytes()
        for match in TELEGRAM_TOKEN.finditer(data):
            found.append(f"{path.relative_to(ROOT)}: Telegram token {match.group().decode(errors='replace')}")
        for match in TOKEN_SHAPED.finditer(data):
            if match.group().decode(errors="replace") not in ALLOWED_TOKENS:
                found.append(f"{path.relative_to(ROOT)}: token-shaped {match.group()[:16]!r}…")
        for name, pattern in KEY_PATTERNS.items():
            if pattern.search(data):
                found.append(f"{path.relative_to(ROOT)}: {name}")
    # Test code uses tests.support.bothelpers.TOKEN; a token of BotFather's exact shape is refused even in tests, since
    # secret scanners (and readers) cannot tell it from a real one.
    assert found == [], (
        "secrets or undocumented tokens in the repository (use tests.support.bothelpers.TOKEN in tests)"
    )


def test_allowed_tokens_are_really_found_by_the_scan() -> None:
    """The scan is not vacuous: the documented test token is token-shaped and sits in a listed file."""
    assert TOKEN_SHAPED.fullmatch(TOKEN.encode())
    assert TELEGRAM_TOKEN.search(b"123456789:" + b"A" * 35)
    helpers = next(f for f in _repository_files() if f.name == "bothelpers.py")
    assert TOKEN.encode() in helpers.read_bytes()


# --------------------------------------------------------------------------------------------- dependencies


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _project_requirements() -> list[Requirement]:
    """The project's own requirements from pyproject.toml (installed metadata can lag behind it), test and dev."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in ("test", "dev"):
        texts += project["optional-dependencies"][extra]
    return [
        r for r in map(Requirement, texts) if canonicalize_name(r.name) != canonicalize_name(project["name"])
    ]


def _closure(requirements: list[Requirement]) -> dict[str, str]:
    """Installed distributions reachable from `requirements` (markers evaluated here), name → version."""
    seen: dict[str, str] = {}
    todo = [(r.name, frozenset(r.extras)) for r in requirements]
    visited: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in visited:
            continue
        visited.add((canonicalize_name(name), wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here: nothing to pin in this environment
        seen[canonicalize_name(dist.metadata["Name"])] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            ):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return seen


def test_every_installed_dependency_is_pinned() -> None:
    installed = _closure(_project_requirements())
    pins = _pins()
    for must in (
        "python-telegram-bot",
        "pandas",
        "redis",
        "matplotlib",
        "babel",
        "pytest",
        "apscheduler",
        "aiolimiter",
        "tornado",
    ):
        assert must in installed, f"{must} is a dependency but not installed"
    missing = sorted(name for name in installed if name not in pins)
    assert missing == [], f"installed dependencies without a pin in constraints.txt: {missing}"
    drifted = {name: (version, pins[name]) for name, version in installed.items() if pins[name] != version}
    assert drifted == {}, f"installed versions differ from constraints.txt: {drifted}"
