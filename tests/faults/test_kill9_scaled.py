"""The kill -9 test of the scaled-out deployment: one `scheduler`, two `delivery` processes, one `web` and two
`worker`s, each a real process sharing one Redis. The scheduler is killed inside a cycle, a delivery process while
it sends, a worker with updates in flight; each is restarted. Every alert must reach every chat exactly once and
every command must be answered exactly once (FAULTS_SCALED_KILLS kills; 12 with FAULTS_FULL=1, 3 by default)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.updates import chat_of_update
from tests.faults.harness import (
    BotProcess,
    assert_clean_log,
    bot_env,
    count,
    hk_iso,
    seeded_random,
    shifted_start,
    until,
)
from tests.faults.scenario import (
    Chats,
    compare_alerts,
    copy_db,
    identities_in,
    outbox_alerts,
    reference_run,
    seed_copy,
    serve_demo,
)
from tests.faults.test_kill9 import PAIRS, RESTART_GAP, START
from tests.support.botapi import BotApi, parse_html
from tests.support.bothelpers import TOKEN
from tests.support.origin import Origin
from tests.support.paths import free_port

pytestmark = pytest.mark.faults

HOOK = "https://bot.example.com/tg/hook"
SECRET = "s3cret-for-the-scaled-kill-test"
PARTITIONS = 8
COMMANDS_PER_ROUND = 24  # private chats sending /help through the webhook, one each, new chats every round
FIRST_COMMAND_CHAT = 9101
PHASE_WAIT_S = 20.0  # a kill waits this long for its phase (a fetch, a send); past it, it strikes anyway
# The delivery processes run ahead of the scheduler's clock (items it queues are due at once for them) and are
# restarted together past the claim lease of the killed one, as a restart a minute later would be.
DELIVERY_LEAD = timedelta(hours=2)
# Each delivery process sends with a token of its own (the same bot id), so the stand-in tells their sends apart.
DELIVERY_TOKENS = (TOKEN[:-1] + "a", TOKEN[:-1] + "b")


@dataclass
class Kill:
    """One SIGKILL: the process, when, and the token its sends carried (delivery processes)."""

    phase: str
    label: str
    after_s: float
    at: float  # time.monotonic()
    token: str = ""
    pending: set[int] = field(
        default_factory=set
    )  # command chats whose update the killed worker held unacked


@dataclass
class Fleet:
    """The six processes, their clocks and their logs."""

    scheduler: BotProcess
    deliveries: list[BotProcess]
    web: BotProcess
    workers: list[BotProcess]
    clock = START
    delivery_clock = START + DELIVERY_LEAD

    @property
    def all(self) -> list[BotProcess]:
        """Every process."""
        return [self.scheduler, *self.deliveries, self.web, *self.workers]

    def tails(self) -> str:
        """The end of every log (for failure messages)."""
        return "\n".join(p.tail(25) for p in self.all)

    def start(self) -> None:
        """Start every process."""
        self.scheduler.start(CLOCK_START=hk_iso(self.clock))
        for delivery in self.deliveries:
            delivery.start(CLOCK_START=hk_iso(self.delivery_clock))
        self.web.start()
        for worker in self.workers:
            worker.start()

    def restart_deliveries(self) -> None:
        """Stop the surviving delivery process (it hands its claims back) and start both past the lease."""
        ran = time.monotonic() - min(d.started_at for d in self.deliveries)
        for delivery in self.deliveries:
            if delivery.alive():
                # A SIGTERM'd delivery process finishes its message and hands the rest back: it must end by itself
                # (a forced kill here would be an unrecorded kill -9, and its duplicate would look like a bug).
                assert delivery.stop() == 0, delivery.tail()
        self.delivery_clock = shifted_start(self.delivery_clock, ran, RESTART_GAP)
        for delivery in self.deliveries:
            delivery.start(CLOCK_START=hk_iso(self.delivery_clock))


def _fleet(api: BotApi, redis_url: str, origin_url: str, home: Path, port: int) -> Fleet:
    def process(command: str, name: str, **extra: str) -> BotProcess:
        env = bot_env(
            api_url=api.base_url,
            redis_url=redis_url,
            origin_url=origin_url,
            home=home,
            DELIVERY_RATE="10",
            WEBHOOK_URL=HOOK,
            WEBHOOK_SECRET=SECRET,
            UPDATE_PARTITIONS=str(PARTITIONS),
            UPDATE_LEASE_SECONDS="1",
            **extra,
        )
        return BotProcess(env, home / f"{name}.log", command=command)

    return Fleet(
        scheduler=process("scheduler", "scheduler"),
        deliveries=[
            process("delivery", f"delivery{n}", TELEGRAM_BOT_TOKEN=token)
            for n, token in enumerate(DELIVERY_TOKENS, 1)
        ],
        web=process("web", "web", PORT=str(port)),
        workers=[process("worker", f"worker{n}") for n in (1, 2)],
    )


async def _cycles_left(redis: Redis) -> list[object]:
    return [pair for pair in PAIRS if not await redis.exists(keys.cycle_done(*pair))]


async def _pending_chats(redis: Redis, pid: int) -> set[int]:
    """Command chats whose updates the worker with this pid has read and not acknowledged."""
    chats: set[int] = set()
    for part in range(PARTITIONS):
        stream = keys.update_stream(part)
        for row in await redis.xpending_range(stream, keys.UPDATE_GROUP, "-", "+", 1000):
            name = row["consumer"].decode() if isinstance(row["consumer"], bytes) else row["consumer"]
            if f":{pid}:" in name:
                for _id, fields in await redis.xrange(stream, row["message_id"], row["message_id"]):
                    chat = chat_of_update(json.loads(fields[b"u"]))
                    chats.add(chat if chat is not None else -1)
    return chats


async def _unacknowledged(redis: Redis) -> int:
    """Updates read by some worker and not acknowledged, over every partition."""
    total = 0
    for part in range(PARTITIONS):
        total += int((await redis.xpending(keys.update_stream(part), keys.UPDATE_GROUP))["pending"])
    return total


async def _post_commands(port: int, api: BotApi, chats: tuple[int, ...]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for chat in chats:
            answer = await client.post(
                f"http://127.0.0.1:{port}/tg/hook",
                json=api.push_message(chat, "/help"),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
            assert answer.status_code == 200, answer.text


async def _kill_scheduler(
    fleet: Fleet, api: BotApi, redis: Redis, rng: random.Random, origin: Origin
) -> Kill:
    """Kill the scheduler inside a cycle (a fetch of a served file under way), restart it past its lease."""
    requests = origin.requests
    served, start = set(origin.routes), len(requests)
    # The cycles left may be waiting for their catch-up turn (a restart starts it at once): strike anyway then.
    fetching = await _within(lambda: any(r.path in served for r in requests[start:]), PHASE_WAIT_S)
    after = rng.uniform(0.0, 2.5)
    await asyncio.sleep(after)
    kill = Kill("cycle" if fetching else "idle", "scheduler", after, time.monotonic())
    fleet.scheduler.kill9()
    await redis.delete(keys.leader_lease())  # the dead leader's lease would expire after LEASE_TTL_SECONDS
    fleet.clock = shifted_start(fleet.clock, time.monotonic() - fleet.scheduler.started_at, RESTART_GAP)
    fleet.scheduler.start(CLOCK_START=hk_iso(fleet.clock))
    return kill


async def _kill_delivery(fleet: Fleet, api: BotApi, rng: random.Random, n: int) -> Kill:
    """Kill one delivery process right after one of its sends, then restart both delivery processes."""
    token = DELIVERY_TOKENS[n]
    before = sum(1 for c in api.sent if c.ok and c.token == token)
    await _within(lambda: sum(1 for c in api.sent if c.ok and c.token == token) > before, PHASE_WAIT_S)
    after = rng.uniform(0.0, 1.0)
    await asyncio.sleep(after)
    kill = Kill("delivery", f"delivery{n + 1}", after, time.monotonic(), token)
    fleet.deliveries[n].kill9()
    fleet.restart_deliveries()
    return kill


async def _within(predicate: Callable[[], object], seconds: float) -> bool:
    """Whether `predicate()` turns true within `seconds`."""
    try:
        await until(predicate, seconds, "")
    except AssertionError:
        return False
    return True


def _round_of_chats(posted: list[int]) -> tuple[int, ...]:
    """The next round's command chats (never asked before), recorded in `posted`."""
    first = FIRST_COMMAND_CHAT + len(posted)
    chats = tuple(range(first, first + COMMANDS_PER_ROUND))
    posted.extend(chats)
    return chats


async def _kill_worker(
    fleet: Fleet, api: BotApi, redis: Redis, port: int, rng: random.Random, chats: tuple[int, ...]
) -> Kill:
    """Post the commands with slow replies, kill a worker while it holds some unacknowledged, restart it."""
    api.delay("sendMessage", 0.3, times=len(chats) // 2)
    await _post_commands(port, api, chats)
    victim = fleet.workers[rng.randrange(2)]
    pending = await until(lambda: _pending_chats(redis, victim.pid), 30, "a worker with updates in flight")
    after = rng.uniform(0.0, 0.3)
    await asyncio.sleep(after)
    pending |= await _pending_chats(redis, victim.pid)
    kill = Kill("worker", victim.log.stem, after, time.monotonic(), pending=pending)
    victim.kill9()
    victim.start()
    return kill


@pytest.mark.timeout(600)
async def test_kill9_scaled_out_loses_nothing_and_sends_nothing_twice(
    redis: Redis, redis_url: str, demo_seed: str, origin: Origin, api: BotApi, tmp_path: Path
) -> None:
    rng = seeded_random("kill9-scaled")
    kills_wanted = count("FAULTS_SCALED_KILLS", 3, 12)
    chats = Chats(tuple(range(7001, 7001 + count("FAULTS_KILL_CHATS", 16, 60))))
    await seed_copy(redis, demo_seed, frozenset(PAIRS))
    await chats.subscribe(redis)
    serve_demo(origin, PAIRS, delay=0.3)

    reference = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")
    try:
        await copy_db(redis, reference)
        expected = await reference_run(reference, origin.url, START)
        await reference.flushdb()
    finally:
        await reference.aclose()
    total = sum(sum(c.values()) for c in expected.values())
    print(
        f"[faults] kill9-scaled: {len(chats.ids)} chats, {total} alert deliveries and "
        f"{COMMANDS_PER_ROUND} commands a round expected, {kills_wanted} kills"
    )

    port = free_port()
    fleet = _fleet(api, redis_url, origin.url, tmp_path, port)
    kills: list[Kill] = []
    posted: list[int] = []
    try:
        fleet.start()
        phases = ["cycle", "delivery", "worker"]
        for n in range(kills_wanted):
            phase = phases[n % 3]
            if phase == "cycle" and not await _cycles_left(redis):
                phase = "delivery"
            if (
                phase == "delivery"
                and not await _cycles_left(redis)
                and not await redis.zcard(keys.OUTBOX_DUE)
            ):
                continue  # nothing left to send
            if phase == "cycle":
                kills.append(await _kill_scheduler(fleet, api, redis, rng, origin))
            elif phase == "delivery":
                kills.append(await _kill_delivery(fleet, api, rng, n // 3 % 2))
            else:
                kills.append(await _kill_worker(fleet, api, redis, port, rng, _round_of_chats(posted)))
        if not posted:
            await _post_commands(port, api, _round_of_chats(posted))

        async def settled() -> bool:
            return (
                not await _cycles_left(redis)
                and await redis.zcard(keys.OUTBOX_DUE) == 0
                and all(api.texts(chat) for chat in posted)
                and await _unacknowledged(redis) == 0
            )

        await until(
            settled, 180, "every cycle done, the outbox empty, every command answered", logs=fleet.tails
        )
        await asyncio.sleep(2)  # anything sent twice would arrive by now
        assert all(p.alive() for p in fleet.all), fleet.tails()
        leftover = await outbox_alerts(redis)
    finally:
        for proc in fleet.all:
            proc.stop()

    print(
        f"[faults] kill9-scaled: {len(kills)} kills: "
        + ", ".join(f"{k.label}({k.phase})+{k.after_s:.2f}s" for k in kills)
    )
    assert {"delivery", "worker"} <= {k.phase for k in kills} or kills_wanted < 3
    assert any(k.phase == "cycle" for k in kills) or kills_wanted < 3, "no kill landed inside a cycle"
    assert not leftover
    assert not await redis.lrange(keys.OUTBOX_DEAD, 0, -1), "nothing may be dead-lettered"
    problems, window = compare_alerts(
        api, expected, lambda chat, ident: _window_note(api, chat, ident, kills)
    )
    problems += _compare_commands(api, kills, window, posted)
    print(
        f"[faults] kill9-scaled: documented-window duplicates: {len(window)}"
        + "".join(f"\n  {w}" for w in window)
    )
    assert not problems, "\n".join(problems) + "\n" + fleet.tails()
    for proc in fleet.all:
        assert_clean_log(proc.text())


def _window_note(api: BotApi, chat: int, ident: str, kills: list[Kill]) -> tuple[bool, str]:
    """(True, why) when a duplicate alert is the outbox's documented window: the delivery process that had Telegram
    accept the first copy was killed before it sent anything else; else (False, what the copies were)."""
    sends = [c for c in api.sent if c.ok and c.method.lower() in ("sendmessage", "sendphoto")]
    copies = [
        c
        for c in sends
        if c.chat_id == chat and ident in identities_in(parse_html(str(c.params.get("text", "")))[0])
    ]
    if not copies:
        return False, ""
    first = copies[0]
    kill = next((k for k in kills if k.token == first.token and k.at >= first.time), None)
    if kill is not None and not any(first.time < c.time < kill.at for c in sends if c.token == first.token):
        return (
            True,
            f" — documented window: accepted {kill.at - first.time:.2f} s before {kill.label} was killed",
        )
    seen = ", ".join(
        f"{c.token[-1]}@{c.time:.2f} with {identities_in(parse_html(str(c.params.get('text', '')))[0])}"
        for c in copies
    )
    kills_seen = ", ".join(f"{k.label}@{k.at:.2f}" for k in kills)
    return False, f" (not the documented window: copies by token {seen}; kills {kills_seen})"


def _compare_commands(api: BotApi, kills: list[Kill], window: list[str], posted: list[int]) -> list[str]:
    """Every command answered; a second answer only for an update the killed worker held unacknowledged."""
    problems = []
    held = set().union(*(k.pending for k in kills if k.phase == "worker"))
    for chat in posted:
        answers = len(api.texts(chat))
        if answers == 0:
            problems.append(f"LOST command of chat {chat}")
        elif answers > 1:
            line = f"DUPLICATE x{answers} answer to chat {chat}"
            (window if chat in held else problems).append(
                line + (" — the killed worker had it unacknowledged" if chat in held else "")
            )
    return problems
