"""Update workers: commands answered per second by 1 and by 2 `positioning-bot worker` processes.

Each run starts N real worker processes (`python -m bot worker`) against the demo data seeded in a private
redis-server and the Bot API stand-in (tests/support/botapi.py) in this process. Once the workers share the
partitions and have loaded the data (a warm-up command per partition), the driver fills the update stream with a
backlog of CPU-heavy commands (/card, /short and /flows in turn, each about a different demo code, so no worker finds an
answer or a stock's figures computed before) from many private chats (10 commands each, under the bot's 20 a minute)
and times until every command is answered. The driver only appends and counts, so the workers get the cores.
The issue expects ≥ 1.7× from 2 workers on a 2-core machine.

Run: ``python -m bench.bench_workers [--commands 800] [--partitions 16]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("PTB_TIMEDELTA", "1")

import argparse
import asyncio
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from alerts.store import keys
from alerts.store.updates import UpdateStream
from bench.benchkit import machine_line, private_redis
from tests.support.botapi import SEND_METHODS, BotApi
from tests.support.bothelpers import DEMO_NOW, TOKEN, app_deps, running_bot, seed_demo

ROOT = Path(__file__).resolve().parents[1]
FIRST_CHAT = 70_000_000
PER_CHAT = 10
KINDS = ("card", "short", "flows")
WARM_CHAT = 60_000_000


def worker_env(api: BotApi, redis_url: str, partitions: int, home: Path) -> dict[str, str]:
    """A worker's environment: the stand-in, the private Redis, the demo's evening as its clock."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.base_url,
        "REDIS_URL": redis_url,
        "CLOCK_START": DEMO_NOW.isoformat(),
        "LOG_LEVEL": "WARNING",
        "PTB_TIMEDELTA": "1",
        "UPDATE_PARTITIONS": str(partitions),
        "UPDATE_LEASE_SECONDS": "2",
        "MPLCONFIGDIR": str(Path(tempfile.gettempdir()) / "positioning-bot-bench-mpl"),
    }


def commands(codes: list[str], count: int, rng: random.Random) -> list[str]:
    """`count` heavy commands, each about a different code (kinds in turn), shuffled: no worker finds an answer or a
    stock's figures already computed, with one worker or two."""
    if len(codes) < count:
        raise SystemExit(f"only {len(codes)} demo codes: ask for at most that many commands")
    chosen = rng.sample(codes, count)
    return [f"/{KINDS[i % len(KINDS)]} {code}" for i, code in enumerate(chosen)]


def answered(api: BotApi, chats: range) -> int:
    """Accepted replies to the chats of `chats`."""
    first, last = chats.start, chats.stop
    return sum(
        1
        for call in list(api.sent)
        if call.ok
        and call.method.lower() in SEND_METHODS
        and isinstance(call.chat_id, int)
        and first <= call.chat_id < last
    )


async def wait_for(predicate: object, what: str, timeout: float) -> None:  # noqa: ASYNC109
    """Poll `predicate` (sync or async) every 50 ms until truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate() if callable(predicate) else None
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {what}")
        await asyncio.sleep(0.05)


def start_workers(
    count: int, env: dict[str, str], home: Path, round_no: int
) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes, each logging its errors to a file of its own under `home`."""
    procs = []
    for n in range(count):
        with (home / f"worker-{round_no}-{n}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot", "worker"],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    return procs


async def one_run(
    workers: int, api: BotApi, url: str, texts: list[str], partitions: int, home: Path, round_no: int
) -> tuple[float, float]:
    """Start `workers` processes, warm them, queue the backlog; commands answered per second and the cores the
    workers kept busy meanwhile."""
    redis = Redis.from_url(url)
    stream = UpdateStream(redis, partitions)
    env = worker_env(api, url, partitions, home)
    procs = start_workers(workers, env, home, round_no)
    try:

        async def shared() -> bool:
            holders = [await redis.get(keys.update_lease(p)) for p in range(partitions)]
            counts = {h: holders.count(h) for h in set(holders)}
            return (
                None not in counts
                and len(counts) == workers
                and max(counts.values()) <= -(-partitions // workers)
            )

        await wait_for(shared, f"{workers} workers sharing the partitions", 120)
        warm = range(WARM_CHAT + round_no * 1000, WARM_CHAT + round_no * 1000 + partitions)
        for (
            chat
        ) in warm:  # one chat per partition: every worker loads what each kind reads before the clock starts
            for kind in KINDS:
                await stream.add(api.push_message(chat, f"/{kind} 1810"))
        await wait_for(lambda: answered(api, warm) >= len(KINDS) * len(warm), "warm-up answers", 120)
        base = FIRST_CHAT + round_no * 100_000
        chats = range(base, base + -(-len(texts) // PER_CHAT))
        updates = [api.push_message(base + i // PER_CHAT, text) for i, text in enumerate(texts)]
        started, driver_cpu = time.monotonic(), _cpu(resource.RUSAGE_SELF)
        workers_cpu = [_proc_cpu(proc.pid) for proc in procs]
        machine_before = _machine_busy()
        for at in range(
            0, len(updates), 50
        ):  # 50 scripts in flight: a fast fill without a connection per update
            await asyncio.gather(*(stream.add(update) for update in updates[at : at + 50]))
        await wait_for(lambda: answered(api, chats) >= len(texts), "every command answered", 600)
        elapsed = time.monotonic() - started
        driver = _cpu(resource.RUSAGE_SELF) - driver_cpu
        used = [_proc_cpu(proc.pid) - before for proc, before in zip(procs, workers_cpu, strict=True)]
        others = (_machine_busy() - machine_before - driver - sum(used)) / elapsed
        print(
            f"  {elapsed:.1f} s; CPU per command: driver and stand-in {1000 * driver / len(texts):.1f} ms, "
            f"workers {1000 * sum(used) / len(texts):.1f} ms ({', '.join(f'{u:.1f} s' for u in used)}: "
            f"{sum(used) / elapsed:.2f} cores busy; other processes kept {max(others, 0):.2f} cores busy)",
            flush=True,
        )
        return len(texts) / elapsed, sum(used) / elapsed
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await redis.aclose()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float:
    """CPU seconds every core spent busy since boot (Linux /proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running child (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def demo_codes(api: BotApi, url: str) -> list[str]:
    """The demo data's codes, as the bot's DataView names them."""
    async with running_bot(api, url) as app:
        return sorted((await app_deps(app).view()).names())


async def main(argv: list[str] | None = None) -> int:
    """Run 1 then 2 workers over the same kind of backlog; print both rates and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--commands", type=int, default=800, help="backlog per run (at most one per demo code)"
    )
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args(argv)
    rates: dict[int, float] = {}
    cores: dict[int, float] = {}
    with private_redis() as url, BotApi() as api, tempfile.TemporaryDirectory() as tmp:
        redis = Redis.from_url(url)
        await seed_demo(redis)
        await redis.aclose()
        codes = await demo_codes(api, url)
        rng = random.Random(18)
        for round_no, workers in enumerate((1, 2)):
            texts = commands(codes, args.commands, rng)
            rates[workers], cores[workers] = await one_run(
                workers, api, url, texts, args.partitions, Path(tmp), round_no
            )
            print(
                f"{workers} worker(s): {args.commands} commands, {rates[workers]:.1f} answered/s", flush=True
            )
        errors = api.errors
    ratio = rates[2] / rates[1]
    per_core = {n: rates[n] / cores[n] for n in rates}
    print(
        f"2 workers / 1 worker = {ratio:.2f}× (issue expects ≥ 1.7×): {'OK' if ratio >= 1.7 else 'UNDER'}; "
        f"{len(codes)} demo codes, /card /short /flows, {PER_CHAT} per chat, "
        f"{args.partitions} partitions; stand-in errors {len(errors)}"
    )
    # On a shared machine the two runs get different amounts of CPU: the rate per core the workers actually got
    # shows whether a second worker costs anything (per-command overhead) apart from the cores it is given.
    print(
        f"per core the workers got: 1 worker {per_core[1]:.1f}/s, 2 workers {per_core[2]:.1f}/s "
        f"({per_core[2] / per_core[1]:.2f}: 1.00 = a second worker adds no work per command)"
    )
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
