"""Load: N simulated users send a realistic mix of chat commands to the real bot over M minutes; print one table.

The bot is the real Application (tests/support/bothelpers.py `running_bot`) in a child process, long polling the Bot API
stand-in (tests/support/botapi.py) that runs here with Telegram's per-chat (1 msg/s) and per-group (20 msg/min) limits on,
with the demo data seeded into a private redis-server. Users arrive uniformly over the run; each one sends /start
and then a few commands, plain-text codes, junk and button presses, waiting for each answer and "thinking" 1.5–5 s
before the next (so a single user never exceeds Telegram's per-chat limit or the bot's 20 commands a minute).

Figures: answered actions per second, reply latency (update queued at the stand-in → first reply received there),
unanswered actions, handler errors, stand-in errors and 429s, the bot process's RSS (start, middle, peak, end),
Python memory still held at the end that was allocated in the second half of the run (tracemalloc, `--trace`),
Redis memory and keys per user.

Usage: python -m bench.load --users 10000 --minutes 10 [--global-limit 30] [--trace] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import re
import statistics
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("PTB_TIMEDELTA", "1")

from redis.asyncio import Redis

from bench.benchkit import machine_line, percentile, private_redis
from tests.support.botapi import BotApi, Call
from tests.support.bothelpers import running_bot, seed_demo

FIRST_CHAT = 50_000_000  # private chat (= user) ids of the simulated users
ANSWER_TIMEOUT = 30.0  # seconds an action may wait for its answer before it counts as unanswered
THINK = (1.5, 5.0)
SETTLE_SECONDS = 300.0  # after the last arrival: sessions last well under a minute; this only bounds a hang  # seconds a user waits after an answer before the next action
CODES = ("1810", "700", "9988", "3690", "388", "5", "1", "16", "941", "2318", "01810", "700.HK", "HK9988")
NAMES = ("xiaomi", "小米", "tencent", "騰訊", "1810", "700", "9988")
JUNK = ("hello", "??", "what is this", "buy buy buy", "🚀🚀", "<b>hi</b>", "1810 700 hmm", "x" * 900)
# Per chat: settings, watchlist, mutes, digest queue, and at most two live per-minute command counters.
PER_USER_KEY_PATTERNS = (
    r"pb:chat:\{chat:(\d+)\}",
    r"pb:wl:\{chat:(\d+)\}",
    r"pb:mutes:\{chat:(\d+)\}",
    r"pb:digest:\{chat:(\d+)\}",
    r"pb:cmdrate:(\d+):\d+",
)
MAX_KEYS_PER_USER = 6


# --------------------------------------------------------------------------------------------- the bot process


class _Remote:
    """What `running_bot` needs of the stand-in when the stand-in lives in another process: its base URL."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


def bot_process(base_url: str, redis_url: str, conn: Connection) -> None:
    """Child process: run the real bot until told to stop, answering measurement requests on `conn`.

    With LOAD_PROFILE=FILE in the environment the bot runs under cProfile and writes its statistics to FILE.
    """
    profile_to = os.environ.get("LOAD_PROFILE")
    if not profile_to:
        asyncio.run(_serve_bot(base_url, redis_url, conn))
        return
    import cProfile

    with cProfile.Profile() as profiler:
        asyncio.run(_serve_bot(base_url, redis_url, conn))
    profiler.dump_stats(profile_to)


async def _serve_bot(base_url: str, redis_url: str, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    async with running_bot(cast(BotApi, _Remote(base_url)), redis_url) as app:
        conn.send(("ready", os.getpid()))
        while True:
            request = await loop.run_in_executor(None, conn.recv)
            if request == "trace":  # from now on, count what the bot allocates and keeps
                gc.collect()
                tracemalloc.start()
                conn.send("tracing")
            elif request == "measure":
                gc.collect()
                held = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else -1
                conn.send(
                    {
                        "traced_bytes": held,
                        "handler_errors": list(app.bot_data.get("handler_errors", [])),
                        "chat_data": len(app.chat_data),
                        "user_data": len(app.user_data),
                    }
                )
            else:
                break
    conn.send("stopped")


def _rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BotProcess:
    """The bot in a child process: start, ask, stop; its RSS is sampled by the caller."""

    def __init__(self, base_url: str, redis_url: str) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self.conn, child = context.Pipe()
        self.process = context.Process(target=bot_process, args=(base_url, redis_url, child), daemon=True)
        self.pid = 0

    async def start(self) -> None:
        """Start the child and wait until the bot polls."""
        self.process.start()
        ready = await self.ask(None, timeout=60)
        assert isinstance(ready, tuple) and ready[0] == "ready", ready
        self.pid = int(ready[1])

    async def ask(self, request: str | None, timeout: float = 60) -> Any:  # noqa: ASYNC109
        """Send a request (None: only receive) and await the child's answer."""
        if request is not None:
            self.conn.send(request)

        def receive() -> Any:
            if not self.conn.poll(timeout):
                raise TimeoutError(f"bot process did not answer {request!r} within {timeout} s")
            return self.conn.recv()

        return await asyncio.to_thread(receive)

    async def stop(self) -> None:
        """Stop the bot cleanly (kill it if it does not stop)."""
        if self.process.is_alive():
            try:
                await self.ask("stop", timeout=30)
            except (TimeoutError, EOFError, BrokenPipeError):
                self.process.kill()
        await asyncio.to_thread(self.process.join, 30)
        self.conn.close()

    def rss(self) -> int:
        """Current RSS of the bot process in bytes."""
        return _rss_bytes(self.pid)

    def cpu(self) -> float:
        """CPU seconds the bot process has used so far."""
        return _cpu_seconds(self.pid)


# --------------------------------------------------------------------------------------------- the users


@dataclass(frozen=True)
class Action:
    """One thing a user does: a message, or a press of a button under the bot's last reply."""

    text: str = ""
    button: str = ""  # callback data; pressed under the message that answered the previous action
    language: str = "en"

    @property
    def kind(self) -> str:
        """Short label for the report (the command, "text" or "button")."""
        if self.button:
            return "button " + self.button.split(":")[0]
        return self.text.split()[0] if self.text.startswith("/") else "text"


def user_script(rng: random.Random) -> list[Action]:
    """A realistic session: mostly /start first, then 2–6 actions drawn from a weighted mix."""
    lang = rng.choice(("en", "en", "en", "zh-hant"))
    actions = [Action("/start", language=lang)] if rng.random() < 0.8 else []
    for _ in range(rng.randint(2, 6)):
        actions.extend(_one_step(rng, lang))
    return actions


def _one_step(rng: random.Random, lang: str) -> list[Action]:
    roll = rng.random()
    code = rng.choice(CODES)
    if roll < 0.18:
        return [Action("/watch " + " ".join(rng.sample(CODES, rng.randint(1, 4))), language=lang)]
    if roll < 0.26:
        return [Action("/list", language=lang)]
    if roll < 0.40:  # a card, sometimes followed by its mute button
        card = Action(f"/card {code}", language=lang)
        if rng.random() < 0.3:
            return [card, Action(button=f"mute:{_five(code)}:1d", language=lang)]
        return [card]
    if roll < 0.46:
        return [Action(f"/short {code}", language=lang)]
    if roll < 0.52:
        return [Action("/top", language=lang)]
    if roll < 0.60:  # the settings keyboard and one or two presses
        presses = rng.sample(
            ["set:m", "set:d", "set:s", "set:z", "set:l", "set:r:0", "set:r:3"], rng.randint(1, 2)
        )
        return [Action("/settings", language=lang)] + [Action(button=p, language=lang) for p in presses]
    if roll < 0.64:
        return [Action(f"/mute {code} {rng.choice(('30m', '12h', '1d', '2w'))}", language=lang)]
    if roll < 0.67:
        return [Action(f"/lang {rng.choice(('en', 'zh'))}", language=lang)]
    if roll < 0.79:
        return [Action(rng.choice(NAMES), language=lang)]
    if roll < 0.84:
        return [Action(rng.choice(JUNK), language=lang)]
    if roll < 0.87:
        return [Action(rng.choice(("/frobnicate", "/card", "/watch zzzz", "/mute 1810 99y")), language=lang)]
    if roll < 0.92:
        return [Action("/help", language=lang)]
    if roll < 0.95:
        return [
            Action(
                rng.choice(("/buybacks", "/insiders 1810", "/why short_ratio_spike", "/history 9988")),
                language=lang,
            )
        ]
    return [Action("/status", language=lang)]


def _five(code: str) -> str:
    digits = re.sub(r"\D", "", code)
    return digits.zfill(5)


class Collector:
    """Follows the stand-in's record of calls: resolves waiting users, counts replies, 429s and refusals.

    Calls are consumed and dropped from `api.sent` so the stand-in's record stays small over a long run.
    """

    def __init__(self, api: BotApi) -> None:
        self.api = api
        self.messages: dict[int, asyncio.Future[Call]] = {}  # chat -> waiting for the next accepted send
        self.callbacks: dict[str, asyncio.Future[Call]] = {}  # callback query id -> waiting for its answer
        self.replies = 0
        self.too_many = 0
        self.refused: list[str] = []
        self.per_second: Counter[int] = Counter()
        self.last_call = time.monotonic()

    def expect_message(self, chat: int) -> asyncio.Future[Call]:
        """A future resolved by the next accepted sendMessage to `chat`."""
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        self.messages[chat] = future
        return future

    def expect_answer(self, query_id: str) -> asyncio.Future[Call]:
        """A future resolved when the callback query is answered."""
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        self.callbacks[query_id] = future
        return future

    async def run(self, stop: asyncio.Event) -> None:
        """Consume new calls every 10 ms until `stop`."""
        while not stop.is_set():
            self.consume()
            await asyncio.sleep(0.01)
        self.consume()

    def consume(self) -> None:
        """Handle the calls recorded since the last look."""
        count = len(self.api.sent)
        batch = self.api.sent[:count]
        del self.api.sent[:count]  # the stand-in only appends; deleting a prefix is atomic under the GIL
        for call in batch:
            self._one(call)

    def _one(self, call: Call) -> None:
        method = call.method.lower()
        if method == "getupdates":
            return
        self.last_call = time.monotonic()
        if call.status == 429:
            self.too_many += 1
        if not call.ok:
            if call.status == 429:
                return  # counted above; the bot waits it out and sends again (an unanswered action shows a loss)
            benign = ("message is not modified", "message can't be edited")
            if not (method.startswith("edit") and any(b in (call.description or "") for b in benign)):
                self.refused.append(f"{call.method} {call.status} {call.description}")
            return
        if method == "sendmessage":
            self.replies += 1
            self.per_second[int(call.time)] += 1
            future = self.messages.pop(int(call.chat_id or 0), None)
        elif method == "answercallbackquery":
            future = self.callbacks.pop(str(call.params.get("callback_query_id")), None)
        else:
            return
        if future is not None and not future.done():
            future.set_result(call)


@dataclass
class Tally:
    """What the users observed."""

    actions: int = 0
    answered: int = 0
    latencies: list[float] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    kind_latencies: dict[str, list[float]] = field(default_factory=dict)
    done_users: int = 0


async def user_session(
    chat: int,
    start_at: float,
    rng: random.Random,
    api: BotApi,
    collector: Collector,
    tally: Tally,
    answer_timeout: float = ANSWER_TIMEOUT,
) -> None:
    """One user: wait to arrive, then act, await each answer, think, act again."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    last_reply: Call | None = None
    for action in user_script(rng):
        if action.button and (last_reply is None or not isinstance(last_reply.result, dict)):
            continue  # nothing to press under (its message was never answered)
        tally.actions += 1
        tally.by_kind[action.kind] += 1
        if action.button:
            assert last_reply is not None and isinstance(last_reply.result, dict)
            update = api.push_callback(chat, action.button, message_id=int(last_reply.result["message_id"]))
            waiting = collector.expect_answer(str(update["callback_query"]["id"]))
        else:
            waiting = collector.expect_message(chat)
            api.push_message(chat, action.text, language_code=action.language)
        pushed = time.monotonic()
        try:
            call = await asyncio.wait_for(waiting, answer_timeout)
        except TimeoutError:
            tally.unanswered.append(f"{chat}: {action.kind}")
            collector.messages.pop(chat, None)
            continue
        tally.answered += 1
        tally.latencies.append(max(0.0, call.time - pushed))
        tally.kind_latencies.setdefault(action.kind, []).append(tally.latencies[-1])
        if not action.button:
            last_reply = call
        await asyncio.sleep(rng.uniform(*THINK))
    tally.done_users += 1


# --------------------------------------------------------------------------------------------- the run


@dataclass
class LoadReport:
    """Everything the run measured."""

    users: int
    seconds: float
    duration: float = 0.0
    tally: Tally = field(default_factory=Tally)
    replies: int = 0
    too_many: int = 0
    refused: list[str] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)
    handler_errors: list[str] = field(default_factory=list)
    peak_replies_per_second: int = 0
    rss_start: int = 0
    rss_mid: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    traced_bytes: int = -1  # allocated in the second half and still held at the end (-1: not traced)
    in_memory_chats: int = 0  # PTB chat_data + user_data entries: per-user state the bot keeps in memory
    cpu_seconds: float = 0.0  # CPU the bot process used while the users were active
    redis_before: int = 0
    redis_after: int = 0
    keys_before: int = 0
    keys_after: int = 0
    max_keys_per_user: int = 0
    users_with_keys: int = 0

    def percentile(self, q: float) -> float:
        """Reply latency percentile in seconds (q in 0..1)."""
        return percentile(self.tally.latencies, q * 100) if self.tally.latencies else float("nan")

    def table(self) -> str:
        """The figures as a Markdown table."""
        mb = 1024 * 1024
        t = self.tally
        rows = [
            (
                "users / actions",
                f"{self.users:,} users, {t.actions:,} actions over {self.duration:.0f} s "
                f"(arrivals spread over {self.seconds:.0f} s)",
            ),
            ("answered", f"{t.answered:,} of {t.actions:,}; unanswered {len(t.unanswered)}"),
            (
                "throughput",
                f"{t.answered / max(self.duration, 1e-9):.1f} answered actions/s; "
                f"peak {self.peak_replies_per_second} replies in one second",
            ),
            (
                "bot CPU",
                f"{self.cpu_seconds:.1f} s = {self.cpu_seconds * 1000 / max(t.answered, 1):.1f} ms per "
                f"answered action (capacity ≈ {t.answered / max(self.cpu_seconds, 1e-9):.0f} actions/s "
                f"on one free core)",
            ),
            (
                "reply latency",
                f"p50 {self.percentile(0.5) * 1000:.0f} ms, p99 {self.percentile(0.99) * 1000:.0f} ms, "
                f"max {max(t.latencies, default=0) * 1000:.0f} ms",
            ),
            (
                "errors",
                f"handler {len(self.handler_errors)}, stand-in {len(self.api_errors)}, "
                f"429 {self.too_many}, refused {len(self.refused)}",
            ),
            (
                "bot RSS",
                f"start {self.rss_start / mb:.0f} MB, middle {self.rss_mid / mb:.0f} MB, "
                f"peak {self.rss_peak / mb:.0f} MB, end {self.rss_end / mb:.0f} MB",
            ),
            (
                "held from 2nd half",
                "not traced (--trace)"
                if self.traced_bytes < 0
                else f"{self.traced_bytes / 1024:.0f} KiB (tracemalloc)",
            ),
            ("per-chat state in RAM", f"{self.in_memory_chats} PTB chat_data/user_data entries"),
            (
                "Redis memory",
                f"{self.redis_before / mb:.1f} MB → {self.redis_after / mb:.1f} MB "
                f"({(self.redis_after - self.redis_before) / max(self.users, 1):.0f} B/user)",
            ),
            (
                "Redis keys",
                f"{self.keys_before:,} → {self.keys_after:,}; per user max {self.max_keys_per_user} "
                f"({self.users_with_keys:,} users with keys)",
            ),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'figure':<{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name:<{width}} | {value} |" for name, value in rows]
        return "\n".join(lines)


async def _redis_figures(redis: Redis) -> tuple[int, int]:
    info = await redis.info("memory")
    return int(info["used_memory"]), int(await redis.dbsize())


async def _keys_per_user(redis: Redis) -> Counter[int]:
    patterns = [re.compile(p) for p in PER_USER_KEY_PATTERNS]
    per_user: Counter[int] = Counter()
    async for key in redis.scan_iter(match="pb:*", count=1000):
        text = key.decode()
        for pattern in patterns:
            if (match := pattern.fullmatch(text)) and int(match.group(1)) >= FIRST_CHAT:
                per_user[int(match.group(1))] += 1
    return per_user


async def _settle(
    collector: Collector, tally: Tally, users: int, deadline: float, quiet: float = 2.0
) -> None:
    """Wait until every user finished and the stand-in saw no new call for `quiet` seconds (or `deadline`)."""
    while True:
        settled = tally.done_users >= users and time.monotonic() - collector.last_call >= quiet
        if settled or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


async def run_load(
    api: BotApi,
    redis_url: str,
    users: int,
    seconds: float,
    *,
    seed: int = 7,
    global_limit: int = 0,
    trace: bool = False,
    answer_timeout: float = ANSWER_TIMEOUT,
) -> LoadReport:
    """Drive `users` simulated users arriving over `seconds` against a bot polling `api`; Redis must be seeded."""
    report = LoadReport(users=users, seconds=seconds)
    redis = Redis.from_url(redis_url)
    report.redis_before, report.keys_before = await _redis_figures(redis)
    bot = BotProcess(api.base_url, redis_url)
    await bot.start()
    collector, tally = Collector(api), Tally()
    api.limits(global_per_sec=global_limit or None, per_chat_per_sec=1, group_per_min=20)
    try:
        measured = await _drive(
            bot, api, collector, tally, report, seed=seed, trace=trace, answer_timeout=answer_timeout
        )
    finally:
        await bot.stop()
    report.tally = tally
    report.traced_bytes = int(measured["traced_bytes"])
    report.handler_errors = list(measured["handler_errors"])
    report.in_memory_chats = int(measured["chat_data"]) + int(measured["user_data"])
    report.replies, report.too_many, report.refused = collector.replies, collector.too_many, collector.refused
    report.api_errors = list(api.errors)
    report.peak_replies_per_second = max(collector.per_second.values(), default=0)
    report.redis_after, report.keys_after = await _redis_figures(redis)
    per_user = await _keys_per_user(redis)
    report.max_keys_per_user = max(per_user.values(), default=0)
    report.users_with_keys = len(per_user)
    await redis.aclose()
    return report


async def _drive(
    bot: BotProcess,
    api: BotApi,
    collector: Collector,
    tally: Tally,
    report: LoadReport,
    *,
    seed: int,
    trace: bool,
    answer_timeout: float,
) -> dict[str, Any]:
    """Start every user, trace from the middle of the run, settle, then ask the bot for its figures."""
    stop = asyncio.Event()
    rss = [bot.rss()]
    report.rss_start = rss[0]
    cpu_before = bot.cpu()
    follower = asyncio.create_task(collector.run(stop))
    sampler = asyncio.create_task(_sample_rss(bot, rss, stop))
    rng = random.Random(seed)
    began = time.monotonic()
    sessions = [
        asyncio.create_task(
            user_session(
                FIRST_CHAT + i,
                began + rng.uniform(0, report.seconds),
                random.Random(rng.random()),
                api,
                collector,
                tally,
                answer_timeout,
            )
        )
        for i in range(report.users)
    ]
    try:
        await asyncio.sleep(report.seconds / 2)
        report.rss_mid = bot.rss()
        if trace:
            await bot.ask("trace")
        await _settle(collector, tally, report.users, began + report.seconds + SETTLE_SECONDS)
        report.duration = time.monotonic() - began
        report.cpu_seconds = bot.cpu() - cpu_before
        await asyncio.gather(*sessions)
        measured: dict[str, Any] = await bot.ask("measure")
        report.rss_end = bot.rss()
        report.rss_peak = max([*rss, report.rss_end])
    finally:
        stop.set()
        for session in sessions:
            session.cancel()
        await asyncio.gather(follower, sampler, *sessions, return_exceptions=True)
    return measured


async def _sample_rss(bot: BotProcess, samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(bot.rss())
        await asyncio.sleep(1.0)


# --------------------------------------------------------------------------------------------- the script


async def main(args: argparse.Namespace) -> int:
    """Run the load once and print the table; exit 1 if anything went wrong."""
    with private_redis() as redis_url, BotApi() as api:
        redis = Redis.from_url(redis_url)
        await seed_demo(redis)
        await redis.aclose()
        report = await run_load(
            api,
            redis_url,
            args.users,
            args.minutes * 60,
            seed=args.seed,
            global_limit=args.global_limit,
            trace=args.trace,
        )
    limits = f"stand-in limits: 1 msg/s per chat, 20/min per group, global {args.global_limit or 'off'}"
    print(f"load: {args.users:,} users over {args.minutes:g} min, seed {args.seed}; {limits}")
    print(report.table())
    print(
        "mix (count, median latency): "
        + ", ".join(
            f"{kind} {n} ({statistics.median(report.tally.kind_latencies.get(kind) or [0]) * 1000:.0f} ms)"
            for kind, n in report.tally.by_kind.most_common()
        )
    )
    for problem in (report.handler_errors + report.api_errors + report.refused + report.tally.unanswered)[
        :10
    ]:
        print(f"problem: {problem}")
    ok = not (report.handler_errors or report.api_errors or report.refused or report.tally.unanswered)
    print(f"{machine_line()}; {'OK' if ok else 'PROBLEMS'}")
    return 0 if ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000, help="simulated users (default 10000)")
    parser.add_argument("--minutes", type=float, default=10.0, help="users arrive over this many minutes")
    parser.add_argument(
        "--global-limit",
        type=int,
        default=0,
        help="stand-in global limit in messages/s (default off; Telegram's broadcast figure is 30)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="tracemalloc in the bot over the second half (slower; reports memory still held)",
    )
    parser.add_argument("--seed", type=int, default=7)
    return parser


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(_parser().parse_args())))
