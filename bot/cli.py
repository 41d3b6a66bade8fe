"""`positioning-bot` command line: parse, fetch, backfill (and more as the product grows).

Exit codes: 0 success; 1 a source was not published / fetch failed; 2 bad usage, bad configuration or a
malformed file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from alerts.errors import MalformedFile, NotPublishedYet, SourceError
from alerts.sources import SOURCES, get_source
from config.settings import REJECTED_TOKEN, ConfigError, Settings, load_settings, redact, setup_logging

if TYPE_CHECKING:  # imported where used: most commands never load the history
    from redis.asyncio import Redis

    from alerts.backfill import HistoryRecord
    from alerts.history import History
    from alerts.replay import ReplayResult

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _source_name(text: str) -> str:
    if text not in SOURCES:
        raise argparse.ArgumentTypeError(f"unknown source {text!r}; choose one of: {', '.join(SOURCES)}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree for every command."""
    parser = argparse.ArgumentParser(
        prog="positioning-bot",
        description="Alerts on unusual positioning around HK and US stocks: data tools and the Telegram bot.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sources_help = f"source name: {', '.join(SOURCES)}"

    p = sub.add_parser(
        "parse",
        help="parse a local source file and print its canonical table",
        description="Parse a local file of SOURCE and print the canonical table to stdout "
        "(CSV with a header row, ISO dates, 5-digit codes). Exit 2 on a malformed file.",
    )
    p.add_argument("source", type=_source_name, metavar="SOURCE", help=sources_help)
    p.add_argument("file", type=Path, metavar="FILE", help="path of the file to parse")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    p.add_argument(
        "--table",
        default="main",
        help="which table of the source to print (default main; "
        "hkex-short and hkex-quotes also have 'market')",
    )

    f = sub.add_parser(
        "fetch",
        help="fetch a source file, store it in Redis and print a summary",
        description="Fetch SOURCE from its configured base URL, parse, store in Redis and print "
        "a one-line summary. --date is the date the file is named or published for; "
        "without it, the latest due date.",
    )
    f.add_argument("source", type=_source_name, metavar="SOURCE", help=sources_help)
    f.add_argument("--date", type=_iso_date, help="file date YYYY-MM-DD (default: latest due)")

    b = sub.add_parser(
        "backfill",
        help="fetch a range of trading days with a progress bar, then record their alerts as history",
        description="Fetch SOURCE for every date in [--from, --to] that has a file "
        "(non-sessions are skipped), storing each; failures are listed at the end. Then "
        "the rules run point in time over everything stored from --from to today and "
        "the alerts they find are recorded in the alert log as history (for /history, "
        "hit rates and the card): never pushed, and a live cycle for the same file "
        "pushes them neither. Running it again records nothing twice.",
    )
    b.add_argument("source", type=_source_name, metavar="SOURCE", help=sources_help)
    b.add_argument("--from", dest="start", type=_iso_date, required=True, help="first date YYYY-MM-DD")
    b.add_argument("--to", dest="end", type=_iso_date, required=True, help="last date YYYY-MM-DD")
    b.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="only fetch (e.g. before backfilling another source; the last backfill records)",
    )
    r = sub.add_parser(
        "replay",
        help="run the rules day by day over stored or local data, with outcomes",
        description="Run the rules for every session in [--from, --to] over data stored in Redis "
        "or, with --data, a directory laid out like the source URLs; print each alert "
        "with the stock's close-to-close move 1/5/20 sessions later and a summary "
        "per rule. JSON: one object per line.",
    )
    r.add_argument("--from", dest="start", type=_iso_date, required=True, help="first date YYYY-MM-DD")
    r.add_argument("--to", dest="end", type=_iso_date, required=True, help="last date YYYY-MM-DD")
    r.add_argument("--data", type=Path, help="directory laid out like the source URLs (default: Redis)")
    r.add_argument("--codes", type=_codes, help="comma list of stock codes, e.g. 01810,700")
    r.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    r.add_argument(
        "--record",
        action="store_true",
        help="also record the alerts found in the alert log as history (Redis only: never pushed, "
        "not recorded twice)",
    )

    d = sub.add_parser(
        "demo",
        help="replay a bundled data set (17-28 Nov 2025) and chat with the bot in the console",
        description="Runs with no token, no network and no Redis: replays the bundled data set "
        "(2025-11-17 .. 2025-11-28), prints the alerts as they would look in "
        "Telegram, then lets you type the bot's commands. With standard input not a "
        "terminal it prints the replay and exits.",
    )
    d.add_argument("--no-chat", action="store_true", help="print the replay and exit")
    d.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="language of the alerts: en or zh (繁體中文)"
    )

    po = sub.add_parser(
        "poll",
        help="run one cycle now (fetch, store, rules, route to the outbox) and exit",
        description="Run one cycle per SOURCE (default: every source) for --date or the latest due "
        "date: fetch, store, evaluate the rules, route alerts to watchers' outbox. "
        "A running `positioning-bot run` delivers them within seconds; --deliver "
        "drains the outbox from here. Exit 0 when every cycle processed, found "
        "nothing new or nothing published yet; 1 on fetch failures; 2 on malformed "
        "files.",
    )
    po.add_argument("sources", nargs="*", type=_source_name, metavar="SOURCE", help=sources_help)
    po.add_argument("--date", type=_iso_date, help="file date YYYY-MM-DD (default: latest due)")
    po.add_argument(
        "--deliver", action="store_true", help="also send what is in the outbox (needs the token)"
    )

    rp = sub.add_parser(
        "reparse",
        help="re-run kept files that failed to parse through the current parsers",
        description="A file that failed to parse is kept 30 days. After upgrading, run it through "
        "the current parser: stored like a fetch, then the rules run and the alerts "
        "are routed to watchers' outbox (late, but never twice). One line per date; "
        "exit 2 when a file still does not parse (it stays kept), 1 when nothing is "
        "kept for --date or a sibling file could not be fetched.",
    )
    rp.add_argument(
        "source",
        nargs="?",
        type=_source_name,
        metavar="SOURCE",
        help=f"{sources_help} (optional with --all-failed: every source)",
    )
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--date", type=_iso_date, help="file date YYYY-MM-DD of the kept file(s)")
    which.add_argument("--all-failed", action="store_true", help="every kept date, oldest first")

    dr = sub.add_parser(
        "doctor",
        help="live self-check: fetch and parse the latest due file of every source",
        description="For each source, fetch the file of the latest due date from its configured "
        "base URL (the previous due date while that one is not published yet), parse "
        "it and print URL, HTTP status and redirects, bytes, the layout recognised, "
        "rows, totals reconciled, publication lag and the last good file in Redis. "
        "Read-only: nothing is stored. Exit 0 only when every source is healthy, 1 "
        "otherwise, 2 on bad configuration.",
    )
    dr.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    dr.add_argument(
        "--source",
        dest="sources",
        action="append",
        type=_source_name,
        metavar="NAME",
        help=f"check only this source (repeatable); {sources_help}",
    )
    dr.add_argument(
        "--timeout",
        type=_timeout_seconds,
        default=30.0,
        metavar="SECONDS",
        help="deadline per source, all requests and retries included (default 30)",
    )

    sub.add_parser(
        "status",
        help="show data freshness per source, the leader and the outbox",
        description="Print, per source, the last successful fetch (file date, when, lag against the "
        "expected publication) and the last error; which process holds the leader lease; "
        "how many messages wait in the outbox and how many were dead-lettered.",
    )

    sub.add_parser(
        "migrate-keys",
        help="rename keys of releases before Redis Cluster support to their hash-tagged names",
        description="Walk the keyspace once and rename every key written under the old names (before the "
        "hash tags of alerts/store/keys.py) to its new name: RENAMENX on one server, DUMP/RESTORE on a "
        "Redis Cluster. Safe to run again and on an empty Redis; `run` does it at start-up by itself.",
    )

    sub.add_parser(
        "run",
        help="run the Telegram bot (long polling; webhook when WEBHOOK_URL is set)",
        description="Start the bot with TELEGRAM_BOT_TOKEN against TELEGRAM_API_URL. Long polling by "
        "default; with WEBHOOK_URL (+ PORT, WEBHOOK_SECRET) it serves a webhook and rejects "
        "requests without the secret token.",
    )

    sub.add_parser(
        "delivery",
        help="only send the outbox to Telegram, sharing the limits in Redis with other delivery processes",
        description="Send what is due in the outbox until SIGTERM, under Telegram's limits (DELIVERY_RATE overall, "
        "1/s per chat, 20/min per group, a 429's retry_after) kept in Redis and shared by every delivery "
        "process, on any machine. No Telegram updates, no scheduler: set DELIVERY_PROCESSES on the `run` "
        "process so it leaves the outbox to these. SIGTERM finishes the message being sent and hands the "
        "other claimed ones back; /healthz on HEALTH_PORT (else PORT, unless WEBHOOK_URL is set).",
    )
    sub.add_parser(
        "web",
        help="accept Telegram's webhook posts into the Redis update stream (scaled-out webhook mode)",
        description="Serve POST at the path of WEBHOOK_URL on PORT (8443 when unset): check "
        "WEBHOOK_SECRET, queue the update in its chat's partition of the Redis update stream, answer "
        "200 once Redis has it (503 while it fails). Sets the webhook at start. Run any number behind "
        "a load balancer, with `worker` and one `scheduler`.",
    )
    sub.add_parser(
        "worker",
        help="answer the updates `web` queued (scaled-out webhook mode)",
        description="Handle the updates of a fair share of the UPDATE_PARTITIONS partitions, one chat's "
        "updates in order; a dead worker's partitions and unacknowledged updates are taken over within "
        "seconds. /healthz on HEALTH_PORT when set.",
    )
    sub.add_parser(
        "scheduler",
        help="the leader without updates or delivery: cycles, doctor and digests (scaled-out mode)",
        description="Like `run`, holding the leader lease (others wait as hot standby), but it takes no "
        "updates (`web` and `worker` do) and does not drain the outbox (delivery processes do).",
    )
    return parser


def _codes(text: str) -> frozenset[str]:
    from alerts.sources.common import norm_code

    try:
        return frozenset(norm_code(part) for part in text.split(",") if part.strip())
    except MalformedFile:
        raise argparse.ArgumentTypeError(f"not a list of stock codes: {text!r}") from None


def format_table(frame: pd.DataFrame, fmt: str) -> str:
    """Render a canonical frame as CSV (header first) or a JSON array, dates as YYYY-MM-DD."""
    out = frame.copy()
    for col in out.columns:
        if str(out[col].dtype).startswith("datetime64"):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
    if fmt == "json":
        records = json.loads(out.to_json(orient="records", force_ascii=False))
        return json.dumps(records, ensure_ascii=False, indent=None)
    return out.to_csv(index=False, lineterminator="\n")


def cmd_parse(args: argparse.Namespace) -> int:
    """Parse a local file and print it."""
    source = get_source(args.source)
    if args.table not in source.tables:
        print(
            f"error: {source.name} has no table {args.table!r} (tables: {', '.join(source.tables)})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        frame = source.tables[args.table].read(data, source.name)
    except SourceError as exc:
        print(f"error: {args.file}: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, MalformedFile) else EXIT_FAILED
    sys.stdout.write(format_table(frame, args.format))
    if args.format == "json":
        sys.stdout.write("\n")
    return EXIT_OK


def _config_error(exc: ConfigError) -> int:
    """Print a configuration error naming the variable; exit code 2."""
    print(f"configuration error: {exc}", file=sys.stderr)
    return EXIT_BAD_INPUT


class _NoRedis(Exception):
    """The embedded Redis could not be used; carries the exit code and the message already printed."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@contextmanager
def _redis(settings: Settings) -> Iterator[Settings]:
    """`settings` with a Redis to use: REDIS_URL when set (it always wins), else the machine's embedded server
    under DATA_DIR, started or reused here and stopped on the way out when no other process still uses it."""
    if settings.redis_url:
        yield settings
        return
    from alerts.store.embedded import EmbeddedRedis, EmbeddedRedisError, find_binary

    server = EmbeddedRedis(settings.data_dir)
    try:
        server.start()
    except EmbeddedRedisError as exc:
        try:
            find_binary()
        except EmbeddedRedisError:
            # Nothing to start: a configuration problem, named as such (exit 2).
            print(f"configuration error: REDIS_URL: not set, and {exc}", file=sys.stderr)
            raise _NoRedis(EXIT_BAD_INPUT) from None
        print(f"error: embedded Redis: {exc}", file=sys.stderr)
        raise _NoRedis(EXIT_FAILED) from None
    try:
        yield dataclasses.replace(settings, redis_url=server.url)
    finally:
        server.stop()


def _one_line(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split()))


def _now(settings: Settings) -> datetime:
    """Now in Hong Kong, by the process clock (CLOCK_START shifts it for replays and rehearsals)."""
    from alerts.calendar import HK_TZ

    return settings.clock()().astimezone(HK_TZ)


async def _fetch(
    settings: Settings, source_name: str, days: list[date], *, progress: bool, first_available: bool = False
) -> int:
    """Ingest `days` in order; with `first_available`, stop at the first date that is published."""
    from tqdm import tqdm

    from alerts.fetch import make_client
    from alerts.ingest import ingest
    from alerts.store.connect import connect
    from alerts.store.frames import FrameStore

    source = get_source(source_name)
    failures: list[str] = []
    redis = connect(settings)
    try:
        async with make_client() as client:
            store = FrameStore(redis)
            bar = tqdm(days, desc=source_name, unit="day", file=sys.stderr, disable=not progress)
            for day in bar:
                try:
                    report = await ingest(
                        source, day, settings=settings, client=client, store=store, now=_now(settings)
                    )
                except SourceError as exc:
                    failures.append(f"{day.isoformat()}: {type(exc).__name__}: {_one_line(exc)}")
                    if first_available and isinstance(exc, NotPublishedYet) and day != days[-1]:
                        continue
                    if not progress:
                        print(
                            f"error: {source_name} {day.isoformat()}: {type(exc).__name__}: {_one_line(exc)}",
                            file=sys.stderr,
                        )
                        return EXIT_BAD_INPUT if isinstance(exc, MalformedFile) else EXIT_FAILED
                    continue
                if progress:
                    bar.set_postfix_str(report.status)
                else:
                    print(report.summary())
                if first_available:
                    return EXIT_OK
    finally:
        await redis.aclose()
    if progress:
        print(f"{source_name}: {len(days) - len(failures)} of {len(days)} date(s) ok")
        for line in failures:
            print(f"  failed {line}", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    """Fetch one date (or the latest due) of a source."""
    from alerts.calendar import schedule_for

    if args.date is not None:
        return asyncio.run(_fetch(settings, args.source, [args.date], progress=False))
    schedule = schedule_for(args.source)
    # Weekly files come out "about a week" after their date: fall back to the previous weeks' files.
    candidates = schedule.due_dates(_now(settings), 3 if schedule.dates == "week_end" else 1)
    if not candidates:
        print(f"error: no due date found for {args.source}", file=sys.stderr)
        return EXIT_FAILED
    return asyncio.run(_fetch(settings, args.source, candidates, progress=False, first_available=True))


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Fetch every date with a file in a range."""
    from alerts.calendar import schedule_for

    source = get_source(args.source)
    if args.start > args.end:
        print("error: --from is after --to", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not source.history:
        print(
            f"error: {source.name} pages hold only the latest session; backfill hkex-quotes for history",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    schedule = schedule_for(source.name)
    now = _now(settings)
    span = (args.end - args.start).days
    days = [d for d in (args.start + timedelta(days=i) for i in range(span + 1)) if schedule.is_due(d, now)]
    if not days:
        print(f"{source.name}: no dates with a due file between {args.start} and {args.end}")
        return EXIT_OK
    code = asyncio.run(_fetch(settings, source.name, days, progress=True))
    if args.record and source.calendar != "XHKG":
        print(f"{source.name}: the replay covers Hong Kong sources only; no history recorded")
    elif args.record:  # what was stored (failed dates aside) becomes history from --from up to today
        done = _now(settings)  # after the fetches: a file fetched late counts as known from its fetch
        print(asyncio.run(_record_history(settings, args.start, done.date(), done)))
    return code


async def _record_history(settings: Settings, start: date, end: date, now: datetime) -> str:
    """Replay what Redis holds over [start, end] and record the alerts as history; the line to print."""
    from alerts.backfill import record_history
    from alerts.store.connect import connect

    redis = connect(settings)
    try:
        return (await record_history(redis, start, end, now)).line()
    finally:
        await redis.aclose()


def _timeout_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"not a number of seconds in (0, 3600]: {text!r}")
    return value


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Check every (or the chosen) source live, read-only, and print the table or JSON."""
    from alerts.doctor import exit_code, render_json, render_table, run_doctor

    now = settings.clock()()
    checks, notes = asyncio.run(run_doctor(settings, args.sources, now=now, deadline=args.timeout))
    render = render_json if args.format == "json" else render_table
    sys.stdout.write(render(checks, now=now, notes=notes))
    return exit_code(checks)


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay the rules over a date range and print alerts, outcomes and a summary."""
    from alerts.history import load_directory, span
    from alerts.replay import format_text, json_lines, replay
    from alerts.rules import load_params

    if args.start > args.end:
        print("error: --from is after --to", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.record and args.data is not None:
        print("error: --record records what Redis holds; it cannot be used with --data", file=sys.stderr)
        return EXIT_BAD_INPUT
    first, last = span(args.start, args.end)
    record: HistoryRecord | None = None
    if args.data is not None:
        if not args.data.is_dir():
            print(f"error: --data {args.data} is not a directory", file=sys.stderr)
            return EXIT_BAD_INPUT
        result = replay(
            load_directory(args.data, first, last), args.start, args.end, load_params(), args.codes
        )
    else:
        try:
            settings = load_settings()
        except ConfigError as exc:
            return _config_error(exc)
        if not settings.redis_url:
            setup_logging(settings.log_level)  # to say where the embedded Redis keeps the data
        try:
            with _redis(settings) as settings:
                history = asyncio.run(_history_from_redis(settings, first, last))
                result = replay(history, args.start, args.end, load_params(), codes=args.codes)
                if args.record:
                    record = asyncio.run(_record_result(settings, result, _now(settings)))
        except _NoRedis as exc:
            return exc.code
    if args.format == "json":
        for row in json_lines(result):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        if record is not None:
            sys.stdout.write(json.dumps(_record_row(record)) + "\n")
    else:
        sys.stdout.write(format_text(result, args.start, args.end))
        if record is not None:
            sys.stdout.write(record.line() + "\n")
    return EXIT_OK


async def _record_result(settings: Settings, result: ReplayResult, now: datetime) -> HistoryRecord:
    from alerts.backfill import record_result
    from alerts.store.connect import connect

    redis = connect(settings)
    try:
        return await record_result(redis, result, now)
    finally:
        await redis.aclose()


def _record_row(record: HistoryRecord) -> dict[str, object]:
    """The JSON line of `replay --record`: what recording the replay's alerts as history did."""
    counts = record.recorded
    return {
        "type": "recorded",
        "new": counts.new,
        "known": counts.known,
        "revised": counts.revised,
        "live": counts.live,
        "later": record.later,
    }


async def _history_from_redis(settings: Settings, first: date, last: date) -> History:
    from alerts.history import load_store
    from alerts.store.connect import connect
    from alerts.store.frames import FrameStore

    redis = connect(settings)
    try:
        return await load_store(FrameStore(redis), first, last)
    finally:
        await redis.aclose()


async def _poll(settings: Settings, sources: list[str], day: date | None, *, deliver: bool) -> int:
    """One cycle per source, then optionally drain the outbox."""
    from alerts.calendar import schedule_for
    from alerts.fetch import make_client
    from alerts.pipeline import run_cycle
    from alerts.store.connect import connect

    if deliver:
        try:
            settings.require_token()
        except ConfigError as exc:
            return _config_error(exc)
    now = settings.clock()()
    worst = EXIT_OK
    redis = connect(settings)
    try:
        async with make_client() as client:
            for name in sources:
                target = day or schedule_for(name).latest_due(now)
                if target is None:
                    print(f"{name}: no due date")
                    continue
                report = await run_cycle(name, target, settings=settings, client=client, redis=redis, now=now)
                print(report.line())
                worst = max(worst, {"failed": EXIT_FAILED, "malformed": EXIT_BAD_INPUT}.get(report.status, 0))
        if deliver:
            sent = await _deliver(settings, redis)
            print(f"delivered {sent} message(s)")
    finally:
        await redis.aclose()
    return worst


async def _reparse(settings: Settings, sources: list[str], day: date | None) -> int:
    """Reparse the kept files of `day` (or of every kept date) per source; print one line per date."""
    from alerts.fetch import make_client
    from alerts.reparse import reparse_day
    from alerts.store.connect import connect
    from alerts.store.failed import FailedFiles

    now = settings.clock()()
    worst, done = EXIT_OK, 0
    redis = connect(settings)
    try:
        async with make_client() as client:
            for name in sources:
                for target in [day] if day is not None else await FailedFiles(redis).days(name):
                    result = await reparse_day(
                        name, target, settings=settings, redis=redis, client=client, now=now
                    )
                    if result is None:
                        print(
                            f"reparse {name} {target.isoformat()}: no kept file (none failed, already reparsed, "
                            "or expired)",
                            file=sys.stderr,
                        )
                        worst = max(worst, EXIT_FAILED)
                        continue
                    done += 1
                    print(result.line(), file=sys.stdout if result.error is None else sys.stderr)
                    if result.error is not None:
                        worst = max(
                            worst, EXIT_BAD_INPUT if isinstance(result.error, MalformedFile) else EXIT_FAILED
                        )
    finally:
        await redis.aclose()
    if day is None and not done:
        print("reparse: no kept failed files")
    return worst


async def _print_update_workers(redis: Redis, settings: Settings) -> None:
    """The scaled-out update workers, when there are any (or updates wait for them)."""
    from alerts.store.updates import UpdateStream, live_workers

    workers = await live_workers(redis)
    unacked = await UpdateStream(redis, settings.update_partitions).pending()
    if workers or unacked:
        print(f"update workers: {workers} live; unacknowledged updates: {unacked}")


async def _status(settings: Settings) -> int:
    """Print the operational status; exit 1 when Redis cannot be reached."""
    from redis.exceptions import RedisError

    from alerts.calendar import HK_TZ, schedule_for
    from alerts.store.connect import connect
    from alerts.store.frames import FrameStore
    from alerts.store.lease import Lease
    from alerts.store.outbox import Outbox

    redis = connect(settings)
    try:
        store = FrameStore(redis)
        print(f"{'source':<22} {'last file':<11} {'fetched (HKT)':<17} {'lag':>8}  last error")
        for name in SOURCES:
            status = await store.status(name)
            fetched = datetime.fromisoformat(status["ok_at"]).astimezone(HK_TZ) if "ok_at" in status else None
            lag = ""
            if fetched and status.get("ok_date"):
                published = schedule_for(name).published_at(date.fromisoformat(status["ok_date"]))
                lag = f"{(fetched - published).total_seconds() / 60:+.0f}m"
            error = (
                status.get("error_message", "")
                if status.get("error_at", "") > status.get("ok_at", "")
                else ""
            )
            print(
                f"{name:<22} {status.get('ok_date', 'never'):<11} "
                f"{fetched.strftime('%Y-%m-%d %H:%M') if fetched else '-':<17} {lag:>8}  {error[:100]}"
            )
        holder = await Lease(redis).holder()
        outbox = Outbox(redis)
        print(f"leader: {holder or 'none'}")
        print(f"outbox: {await outbox.pending()} pending, {len(await outbox.dead())} dead-lettered")
        await _print_update_workers(redis, settings)
    except RedisError as exc:
        print(f"error: cannot reach Redis: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await redis.aclose()
    return EXIT_OK


async def _migrate_keys(settings: Settings) -> int:
    """Rename old-layout keys (alerts/store/migrate.py); print what was done; exit 1 when Redis fails."""
    from redis.exceptions import RedisError

    from alerts.store.connect import connect
    from alerts.store.migrate import migrate_keys

    redis = connect(settings)
    try:
        report = await migrate_keys(redis)
    except RedisError as exc:
        print(f"error: Redis: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await redis.aclose()
    print(report.summary())
    return EXIT_OK


async def _deliver(settings: Settings, redis: Redis) -> int:
    """Drain the outbox to Telegram until nothing is due (at most two minutes)."""
    import time

    from telegram import Bot

    from bot.delivery import worker_for

    sent = 0
    async with Bot(settings.require_token(), base_url=settings.telegram_api_url) as bot:
        # Beside delivery processes, under their shared limits (else this would add its own 30/s to theirs).
        worker = worker_for(bot, redis, settings, shared=bool(settings.delivery_processes))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            report = await worker.drain()
            sent += report.sent
            if not (report.sent or report.retried):
                break
    return sent


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `positioning-bot` console script."""
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # inside the try: a closed pipe often shows only when the last output is flushed
        return code
    except BrokenPipeError:
        # `positioning-bot demo | head`: the reader has gone, so stop quietly instead of with a traceback; stdout
        # goes to /dev/null so that flushing it at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a writer whose pipe was closed (128 + SIGPIPE)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one exit for errors no command handled
        return _uncaught(exc)


def _uncaught(exc: BaseException) -> int:
    """Print an error no command handled, redacted, and return the exit code.

    Exception texts can quote the token (PTB's InvalidToken names it; a Bot API or proxy answer can quote the
    request path /bot<token>/…), so Python must not print the traceback itself.
    """
    errors = sys.modules.get("telegram.error")  # loaded by whatever raised a Telegram error
    if errors is not None and isinstance(exc, errors.InvalidToken):
        print(REJECTED_TOKEN, file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    sys.stderr.flush()
    return 130 if isinstance(exc, KeyboardInterrupt) else EXIT_FAILED


def _dispatch(args: argparse.Namespace) -> int:
    """Run the chosen subcommand."""
    if args.command == "parse":
        return cmd_parse(args)
    if args.command == "replay":
        return cmd_replay(args)
    if args.command == "demo":
        from bot.demo import run_demo

        return run_demo(chat=not args.no_chat, lang=args.lang)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _config_error(exc)
    setup_logging(settings.log_level)
    # Usage and configuration errors first: no Redis is started for a command that cannot run.
    if args.command in ("run", "delivery", "web", "worker", "scheduler"):
        try:
            settings.require_token()
        except ConfigError as exc:
            return _config_error(exc)
    if args.command == "web" and not (settings.webhook_url and settings.webhook_secret):
        print("configuration error: WEBHOOK_URL and WEBHOOK_SECRET: `web` needs both", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.command == "reparse" and args.source is None and args.date is not None:
        print("error: reparse --date needs a SOURCE", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with _redis(settings) as settings:
            return _with_redis(args, settings)
    except _NoRedis as exc:
        return exc.code


def _with_redis(args: argparse.Namespace, settings: Settings) -> int:
    """Run a subcommand that uses Redis, `settings.redis_url` set."""
    if args.command == "fetch":
        return cmd_fetch(args, settings)
    if args.command == "backfill":
        return cmd_backfill(args, settings)
    if args.command == "status":
        return asyncio.run(_status(settings))
    if args.command == "doctor":
        return cmd_doctor(args, settings)
    if args.command == "poll":
        return asyncio.run(_poll(settings, args.sources or list(SOURCES), args.date, deliver=args.deliver))
    if args.command == "reparse":
        return asyncio.run(_reparse(settings, [args.source] if args.source else list(SOURCES), args.date))
    if args.command == "migrate-keys":
        return asyncio.run(_migrate_keys(settings))
    if args.command in ("run", "scheduler"):
        from bot.leader import run

        run(settings, scheduler_only=args.command == "scheduler")
        return EXIT_OK
    if args.command in ("web", "worker"):
        from bot.scaleout import run_web, run_worker

        (run_web if args.command == "web" else run_worker)(settings)
        return EXIT_OK
    if args.command == "delivery":
        from bot.couriers import run_delivery

        run_delivery(settings)
        return EXIT_OK
    raise AssertionError(args.command)  # argparse guarantees a known command


if __name__ == "__main__":
    raise SystemExit(main())
