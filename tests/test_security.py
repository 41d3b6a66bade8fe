"""Security checks: the bot token never reaches logs, even with DEBUG logging of every library."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from config.settings import setup_logging
from tests.botapi import BotApi
from tests.bothelpers import TOKEN, running_bot


@pytest.fixture
def api() -> Iterator[BotApi]:
    with BotApi() as server:
        yield server


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


async def test_token_never_logged_even_at_debug(api: BotApi, redis: Redis, redis_url: str,
                                                debug_logs: io.StringIO) -> None:
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
    secret = TOKEN.split(":", 1)[1]
    assert TOKEN not in err
    assert secret not in err
