"""Route alerts to the chats that watch their stocks: filter, mark once per (fingerprint × chat), group, enqueue."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from alerts.calendar import HK_TZ
from alerts.model import Alert
from alerts.store import keys
from alerts.store.audience import Audience, audience
from alerts.store.outbox import AlertRow, Outbox, OutboxItem, item_id, item_id_of
from alerts.store.subscriptions import ChatSettings, SubscriptionStore

log = logging.getLogger(__name__)
SEVERITY_RANK = {"info": 0, "notice": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True)
class Decision:
    """Whether one alert goes to one chat, and why (logs explain themselves)."""

    send: bool
    reason: str


def decide(alert: Alert, settings: ChatSettings, mutes: dict[str, datetime]) -> Decision:
    """Pure filter of one alert for one chat."""
    if not settings.active:
        return Decision(False, "chat inactive")
    if alert.rule in settings.rules_off:
        return Decision(False, f"rule {alert.rule} off")
    if alert.code in mutes:
        return Decision(False, f"{alert.code} muted")
    if alert.rule in mutes:
        return Decision(False, f"{alert.rule} muted")
    minimum = settings.thresholds.get("_all", {}).get("min_severity")
    if minimum is not None and SEVERITY_RANK[alert.severity] < minimum:
        return Decision(False, "below the chat's minimum severity")
    # Per-rule thresholds name a fact of the alert and the smallest magnitude the chat wants (e.g. |z| ≥ 3).
    for fact_name, smallest in settings.thresholds.get(alert.rule, {}).items():
        fact = alert.fact(fact_name)
        if fact is not None and isinstance(fact.value, int | float) and abs(fact.value) < smallest:
            return Decision(False, f"{alert.rule} {fact_name} below the chat's threshold")
    return Decision(True, "watching")


@dataclass
class RouteReport:
    """What a routing pass did."""

    enqueued: int = 0
    digested: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    chats: set[int] = field(default_factory=set)


_SKIP_OLD = "older than the routed marks are kept"


async def route(alerts: list[Alert], subs: SubscriptionStore, outbox: Outbox, now: datetime) -> RouteReport:
    """Fan alerts out to watching chats and enqueue one grouped item per chat (digest chats get a queue)."""
    report = RouteReport()
    # A pass a crash cut short is finished first: its marks then keep this pass from sending its alerts again.
    await apply_journal(subs.redis, outbox)
    firsts: dict[str, Alert] = {}
    for alert in alerts:
        firsts.setdefault(alert.fingerprint, alert)  # an alert listed twice still reaches a chat once
    today = now.astimezone(HK_TZ).date()
    live: list[Alert] = []
    for alert in firsts.values():
        # Its marks are gone (or going) after that day: routing it again could send it twice, so it is not routed.
        if keys.routed_last_day(alert.trade_date) < today:
            _skip(report, _SKIP_OLD)
        else:
            live.append(alert)
    if not live:
        return report
    # Watchers, settings and mutes come from the in-process cache, re-read only where a write changed them since.
    seen = await audience(subs.redis)
    watchers = await seen.watchers(a.code for a in live)
    live = [a for a in live if len(watchers[a.code])]
    fingerprints = [a.fingerprint for a in live]
    # Each alert's body is stored once (not once per chat); items and digest queues refer to it by fingerprint.
    await outbox.store_alerts(
        {fp: json.dumps(a.as_dict(), ensure_ascii=False) for fp, a in zip(fingerprints, live, strict=True)}
    )
    if not live:
        return report
    # Every (alert, watcher) pair as two arrays, alert by alert: the matching works on arrays, not pair by pair.
    chats = np.concatenate([watchers[a.code] for a in live])
    which = np.repeat(np.arange(len(live)), [len(watchers[a.code]) for a in live])
    await seen.load(np.unique(chats).tolist())
    send = _decide_all(live, chats, which, seen, now, report)
    # The idempotency key (fingerprint × chat): an alert reaches a chat once, whatever re-runs or revisions happen.
    # The pass's writes go through the journal (_Pass), so a crash part-way is finished, never recomputed.
    marks = await _routed_already(subs.redis, fingerprints)
    bounds = np.concatenate([[0], np.cumsum([len(watchers[a.code]) for a in live])])
    for index, routed in enumerate(marks):
        if routed.size:
            part = slice(bounds[index], bounds[index + 1])
            again = send[part] & np.isin(chats[part], routed)
            if count := int(again.sum()):
                report.skipped["already routed"] = report.skipped.get("already routed", 0) + count
                send[part] &= ~again
    chats, which = chats[send], which[send]
    digests: dict[int, list[str]] = {}
    rows = list(_items(chats, which, fingerprints, seen, now, report, digests))
    expiries = [_marks_expire_at(a) for a in live]
    # Written ahead of everything else of the pass, applied, then removed: see keys.ROUTING_JOURNAL.
    journal = _Pass(now.isoformat(), fingerprints, expiries, chats, which, rows, digests)
    await journal.write(subs.redis)
    report.enqueued += await journal.apply(subs.redis, outbox)
    return report


def _marks_expire_at(alert: Alert) -> float:
    """Epoch seconds at which an alert's routed marks go: the end of the last day it may still be routed."""
    return datetime.combine(
        keys.routed_last_day(alert.trade_date) + timedelta(days=1), time(), HK_TZ
    ).timestamp()


@dataclass
class _Pass:
    """One routing pass's writes: digest entries, marks (fingerprint × chat) and outbox items, kept in the journal
    until all are done. Applying is idempotent: digest entries are listed once by flush_digest, marks are a set in
    effect, items are put NX and their sent parts are recorded."""

    now: str
    fingerprints: list[str]
    expiries: list[float]
    chats: np.ndarray
    which: np.ndarray
    rows: list[AlertRow]
    digests: dict[int, list[str]]

    @property
    def key(self) -> str:
        """The pass's field in the journal: the same pass gives the same field."""
        return item_id_of(0, "pass", self.now + "|" + ",".join(self.fingerprints))

    async def write(self, redis: Redis) -> None:
        """Record the pass in the journal (one command: all or nothing)."""
        body = {
            "now": self.now,
            "fingerprints": self.fingerprints,
            "expiries": self.expiries,
            "chats": base64.b64encode(self.chats.astype("<i8").tobytes()).decode(),
            "which": base64.b64encode(self.which.astype("<i4").tobytes()).decode(),
            "rows": self.rows,
            "digests": {str(chat): refs for chat, refs in self.digests.items()},
        }
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.ROUTING_JOURNAL, self.key, json.dumps(body, separators=(",", ":")))
            pipe.expire(keys.ROUTING_JOURNAL, keys.ROUTING_JOURNAL_TTL_SECONDS)
            await pipe.execute()

    @classmethod
    def read(cls, raw: bytes | str) -> _Pass:
        """A pass from its journal entry."""
        body = json.loads(raw)
        return cls(
            body["now"],
            body["fingerprints"],
            body["expiries"],
            np.frombuffer(base64.b64decode(body["chats"]), dtype="<i8"),
            np.frombuffer(base64.b64decode(body["which"]), dtype="<i4").astype(np.int64),
            [(r[0], r[1], r[2], r[3], r[4]) for r in body["rows"]],
            {int(chat): refs for chat, refs in body["digests"].items()},
        )

    async def apply(self, redis: Redis, outbox: Outbox) -> int:
        """Digest entries, marks, items, then the journal entry removed; the number of new items."""
        async with redis.pipeline(transaction=False) as pipe:
            for chat, refs in self.digests.items():
                _to_digest(pipe, chat, refs)
            await pipe.execute()
        # Marks before items: a re-run that finds them skips these (alert, chat) pairs, and the items they stand for
        # are put by this pass, or by the next pass applying the journal if this one is cut short.
        await _write_marks(redis, self.expiries, self.fingerprints, self.chats, self.which, self.now)
        created = await outbox.put_alerts(self.fingerprints, self.now, self.rows)
        await redis.hdel(keys.ROUTING_JOURNAL, self.key)
        return len(created)


async def apply_journal(redis: Redis, outbox: Outbox) -> int:
    """Finish the passes a crash cut short (see keys.ROUTING_JOURNAL); the number of items they put."""
    entries = await redis.hgetall(keys.ROUTING_JOURNAL)
    done = 0
    for raw in entries.values():
        journal = _Pass.read(raw)
        done += await journal.apply(redis, outbox)
        log.info(
            "routing: finished a pass cut short (%d alerts, %d items)",
            len(journal.fingerprints),
            len(journal.rows),
        )
    return done


def _skip(report: RouteReport, reason: str) -> None:
    report.skipped[reason] = report.skipped.get(reason, 0) + 1


def _decide_all(
    alerts: list[Alert],
    chats: np.ndarray,
    which: np.ndarray,
    seen: Audience,
    now: datetime,
    report: RouteReport,
) -> np.ndarray:
    """Which (alert, chat) pairs go: every pair of a chat without filters; `decide` for the chats with some."""
    send = np.ones(len(chats), dtype=bool)
    ask = np.flatnonzero(np.isin(chats, seen.filtering()))
    stamp = now.timestamp()
    for index, chat, alert_index in zip(ask.tolist(), chats[ask].tolist(), which[ask].tolist(), strict=True):
        entry = seen.route_of(chat)
        assert entry is not None  # a chat with filters always has its route
        mutes = {t: datetime.fromtimestamp(s, tz=HK_TZ) for t, s in entry.mutes.items() if s > stamp}
        decision = decide(alerts[alert_index], entry.settings, mutes)
        if not decision.send:
            send[index] = False
            _skip(report, decision.reason)
    return send


def _items(
    chats: np.ndarray,
    which: np.ndarray,
    fingerprints: list[str],
    seen: Audience,
    now: datetime,
    report: RouteReport,
    digests: dict[int, list[str]],
) -> Iterator[AlertRow]:
    """One outbox item per chat with its alerts in the pass's order; a digest chat's go to `digests` instead.

    Items are rows for `Outbox.put_alerts`: (item id, due epoch seconds, chat, silent, alerts as comma-separated
    indices into `fingerprints`).
    """
    if not len(chats):
        return
    chats, which = _by_chat(chats, which, len(fingerprints))
    flat = which.tolist()
    starts = np.flatnonzero(np.concatenate([[True], chats[1:] != chats[:-1]]))
    firsts = chats[starts]
    # Most chats are plain (every alert at once, not silent, no digest): only the others need their settings.
    special = np.isin(firsts, seen.special()).tolist()
    stamp = now.timestamp()
    # Many chats receive the same set of alerts: its sorted fingerprint text and its index list are built once.
    shapes: dict[tuple[int, ...], tuple[str, str]] = {}
    chat_list = firsts.tolist()
    report.chats.update(chat_list)
    bounds = [*starts.tolist(), len(flat)]
    for n, chat in enumerate(chat_list):
        shape = tuple(flat[bounds[n] : bounds[n + 1]])
        if (known := shapes.get(shape)) is None:
            known = shapes[shape] = (
                ",".join(sorted([fingerprints[i] for i in shape])),
                ",".join(map(str, shape)),
            )
        quiet, due = False, stamp
        if special[n] and (entry := seen.route_of(chat)) is not None:
            if entry.settings.digest:
                digests[chat] = [fingerprints[i] for i in shape]
                report.digested += len(shape)
                continue
            if entry.settings.in_quiet(now):
                quiet, due = True, entry.settings.quiet_end(now).timestamp()
        yield item_id_of(chat, "alerts", known[0]), due, chat, quiet, known[1]


def _by_chat(chats: np.ndarray, which: np.ndarray, alerts: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ordered by chat, then alert: one sort of both packed in an int64 when the chat ids leave room
    (Telegram's ids have at most 52 significant bits), else a lexsort (several times slower)."""
    bits = max(1, alerts.bit_length())
    if int(np.abs(chats).max()) < 1 << (62 - bits):
        packed = np.sort(chats.astype(np.int64) << bits | which)
        return packed >> bits, packed & ((1 << bits) - 1)
    order = np.lexsort((which, chats))
    return chats[order], which[order]


async def _routed_already(redis: Redis, fingerprints: list[str]) -> list[np.ndarray]:
    """For each alert, the chats it was routed to before (packed marks, and the SETs of before the packing)."""
    async with redis.pipeline(transaction=False) as pipe:
        for fingerprint in fingerprints:
            pipe.get(keys.routed(fingerprint))
            pipe.exists(keys.routed_legacy(fingerprint))
        replies = await pipe.execute()
    packed, legacy = replies[0::2], replies[1::2]
    marks = [np.frombuffer(raw or b"", dtype="<i8") for raw in packed]
    older = [index for index, flag in enumerate(legacy) if flag]
    if older:
        async with redis.pipeline(transaction=False) as pipe:
            for index in older:
                pipe.smembers(keys.routed_legacy(fingerprints[index]))
            sets = await pipe.execute()
        for index, members in zip(older, sets, strict=True):
            marks[index] = np.concatenate([marks[index], np.array([int(m) for m in members], dtype=np.int64)])
    return marks


async def _write_marks(
    redis: Redis,
    expiries: list[float],
    fingerprints: list[str],
    chats: np.ndarray,
    which: np.ndarray,
    now: str,
) -> None:
    """Append each alert's newly routed chats to its marks; they expire at the end of the alert's last day."""
    order = np.argsort(which, kind="stable")
    chats, which = chats[order], which[order]
    cuts = np.searchsorted(which, np.arange(len(fingerprints) + 1))
    stamp = datetime.fromisoformat(now).timestamp()
    async with redis.pipeline(transaction=False) as pipe:
        for index, (until, fingerprint) in enumerate(zip(expiries, fingerprints, strict=True)):
            routed = chats[cuts[index] : cuts[index + 1]]
            if not routed.size:
                continue
            pipe.append(keys.routed(fingerprint), routed.astype("<i8").tobytes())
            # Relative to the pass's clock, so a pass replayed with an older clock keeps its marks as long.
            pipe.expire(keys.routed(fingerprint), max(1, int(until - stamp)))
        await pipe.execute()


# Append to a digest queue and renew its TTL in one command (ARGV: the TTL, then the fingerprints): a pass queues for
# thousands of digest chats, and one command a chat instead of two is about half their cost. One key: cluster-safe.
_DIGEST_PUSH = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
return redis.call('EXPIRE', KEYS[1], ARGV[1])
"""


def _to_digest(pipe: Pipeline, chat: int, fingerprints: list[str]) -> None:
    pipe.eval(_DIGEST_PUSH, 1, keys.digest_queue(chat), keys.DIGEST_TTL_SECONDS, *fingerprints)


async def flush_digest(subs: SubscriptionStore, outbox: Outbox, chat: int, now: datetime) -> bool:
    """Move a chat's held alerts into one digest item (atomically emptying the queue); True if any."""
    redis: Redis = subs.redis
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.digest_queue(chat), 0, -1)
        pipe.delete(keys.digest_queue(chat))
        raw, _ = await pipe.execute()
    if not raw:
        return False
    refs, legacy = [], {}
    for entry in (r.decode() for r in raw):
        if entry.startswith("{"):  # queued before bodies were stored apart: the whole alert inline
            body = json.loads(entry)
            legacy[body["fingerprint"]] = entry
            refs.append(body["fingerprint"])
        else:
            refs.append(entry)
    await outbox.store_alerts(legacy)
    refs = list(dict.fromkeys(refs))  # an alert queued twice is listed once
    item = OutboxItem(
        id=item_id(chat, "digest", refs),
        chat_id=chat,
        kind="digest",
        refs=refs,
        silent=True,
        created_at=now.isoformat(),
    )
    await outbox.put(item, now)
    return True
