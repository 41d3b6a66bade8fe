"""Without REDIS_URL the commands use the machine's embedded Redis under DATA_DIR: `run` starts it, a second
command reuses it, the last one out stops it, and a restart keeps watchlists and the outbox. REDIS_URL always wins.
Real processes, the Bot API stand-in and a private DATA_DIR: never the user's data, never a shared Redis."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from alerts.store.embedded import SERVER_ENV, EmbeddedRedis
from alerts.store.outbox import Outbox, OutboxItem, item_id
from tests.faults.harness import BotProcess, assert_clean_log, bot_env, until
from tests.support.botapi import BotApi
from tests.support.cli import run_cli
from tests.support.origin import Origin
from tests.support.paths import ROOT

USER = 7701


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short private DATA_DIR (the server's Unix socket lives in it)."""
    folder = Path(tempfile.mkdtemp(prefix="pb-run-")).resolve()
    yield folder / "data"
    sock = folder / "data" / "redis.sock"
    if sock.exists():  # a failed test must not leave a server behind
        with contextlib.suppress(Exception), SyncRedis(unix_socket_path=str(sock)) as client:
            client.shutdown(nosave=True)
    shutil.rmtree(folder, ignore_errors=True)


def _server_runs(data_dir: Path) -> bool:
    sock = data_dir / "redis.sock"
    if not sock.exists():
        return False
    try:
        with SyncRedis(unix_socket_path=str(sock), socket_connect_timeout=1) as client:
            return bool(client.ping())
    except Exception:  # noqa: BLE001 - nothing answers
        return False


def _assert_child_imports_this_code(env: dict[str, str]) -> None:
    """Without REDIS_URL an older copy of the code would use redis://localhost:6379, maybe someone's data: make
    sure a child process with `env` imports the code under test."""
    where = subprocess.run(
        [sys.executable, "-c", "import bot.cli; print(bot.cli.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == ROOT / "bot" / "cli.py", where.stdout


def test_status_without_redis_url_starts_and_stops_the_embedded_server(
    data_dir: Path, tmp_path: Path
) -> None:
    done = run_cli("status", env={"DATA_DIR": str(data_dir)}, cwd=tmp_path)  # run_cli drops every *_URL
    assert done.returncode == 0, done.stderr
    assert "outbox: 0 pending" in done.stdout
    assert f"Redis data in {data_dir.resolve()}" in done.stderr and "AOF on" in done.stderr
    assert (data_dir / "appendonly.aof").exists()
    assert not _server_runs(data_dir) and not (data_dir / "redis.pid").exists()  # stopped on exit


def test_redis_url_wins_over_the_embedded_server(data_dir: Path, redis_url: str, tmp_path: Path) -> None:
    done = run_cli("status", env={"DATA_DIR": str(data_dir), "REDIS_URL": redis_url}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not data_dir.exists() and "Redis data in" not in done.stderr


def test_no_redis_server_anywhere_is_a_configuration_error(data_dir: Path, tmp_path: Path) -> None:
    env = {"DATA_DIR": str(data_dir), SERVER_ENV: str(tmp_path / "no-such-redis-server")}
    done = run_cli("status", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr.startswith("configuration error: REDIS_URL: not set, and ") and SERVER_ENV in done.stderr
    )


@pytest.mark.timeout(240)
async def test_run_shares_the_embedded_server_and_a_restart_keeps_watchlist_and_outbox(
    data_dir: Path, origin: Origin, api: BotApi, tmp_path: Path
) -> None:
    env = bot_env(api_url=api.base_url, redis_url="", origin_url=origin.url, home=tmp_path)
    del env["REDIS_URL"]
    env["DATA_DIR"] = str(data_dir)
    _assert_child_imports_this_code(env)
    bot = BotProcess(env, tmp_path / "bot.log")
    try:
        bot.start()
        await until(lambda: api.calls("getUpdates"), 90, "the bot polling Telegram", logs=bot.tail)
        assert f"Redis data in {data_dir}" in bot.text() and "started, AOF on" in bot.text()
        pid = (data_dir / "redis.pid").read_text()
        api.push_message(USER, "/watch 1810")
        sent = await api.await_sent(1, chat_id=USER, timeout=30)
        assert "01810" in sent[0]["text"] and "Watching" in sent[0]["text"], sent

        # A second process on the machine reuses the running server (same server: it sees `run`'s lease) and,
        # not being the last user, leaves it running.
        status = await asyncio.to_thread(run_cli, "status", env={"DATA_DIR": str(data_dir)}, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "already running" in status.stderr and "leader: none" not in status.stdout
        assert _server_runs(data_dir) and (data_dir / "redis.pid").read_text() == pid

        assert bot.stop() == 0, bot.tail()
        assert not _server_runs(data_dir), "the last process out stops the server"
        assert "embedded Redis stopped" in bot.text()

        # Between the two runs: a message queued for the user, and the server stopped again (its AOF flushed).
        with EmbeddedRedis(data_dir) as server:
            redis = Redis.from_url(server.url)
            try:
                item = OutboxItem(
                    id=item_id(USER, "text", ["restart"]),
                    chat_id=USER,
                    kind="text",
                    text="kept across a restart",
                )
                await Outbox(redis).put(item, datetime.now(UTC))
                assert await Outbox(redis).pending() == 1
            finally:
                await redis.aclose()
        assert not _server_runs(data_dir)

        bot.start()
        await until(
            lambda: "kept across a restart" in api.texts(USER), 90, "the queued message", logs=bot.tail
        )
        before = len(api.messages(USER))
        api.push_message(USER, "/list")
        sent = await api.await_sent(before + 1, chat_id=USER, timeout=30)
        assert "01810" in sent[-1]["text"] and "Watching 1" in sent[-1]["text"], sent[-1]
        assert api.texts(USER).count("kept across a restart") == 1
    finally:
        bot.stop()
    assert not _server_runs(data_dir)
    assert_clean_log(bot.text())
