"""Route alerts to the chats that watch their stocks: filter, mark once per (fingerprint × chat), group, enqueue."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from alerts.model import Alert
from alerts.store import keys
from alerts.store.outbox import Outbox, OutboxItem, item_id
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


ROUTE_CHUNK = 500  # chats whose settings, marks and items travel in one pipeline each
# Add a chunk's routed chats to each fingerprint's mark set and renew its TTL, in one command.
# KEYS: one mark set per fingerprint; ARGV: the TTL, then for each key the number of chats followed by the chats.
_SET_MARKS = """
local at = 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  for j = at + 1, at + n do redis.call('SADD', key, ARGV[j]) end
  at = at + n + 1
  redis.call('EXPIRE', key, ARGV[1])
end
return #KEYS
"""


async def route(alerts: list[Alert], subs: SubscriptionStore, outbox: Outbox, now: datetime) -> RouteReport:
    """Fan alerts out to watching chats and enqueue one grouped item per chat (digest chats get a queue)."""
    report = RouteReport()
    per_chat: dict[int, list[Alert]] = defaultdict(list)
    market_chats = await subs.market_subscribers()
    firsts: dict[str, Alert] = {}
    for alert in alerts:
        firsts.setdefault(alert.fingerprint, alert)  # an alert listed twice still reaches a chat once
    alerts = list(firsts.values())
    # Fingerprints are hashes: computed once per routing pass rather than once per (alert × chat).
    fingerprints = {id(alert): alert.fingerprint for alert in alerts}
    bodies: dict[str, str] = {}
    for alert in alerts:
        watchers = market_chats if alert.code == "MARKET" else await subs.watchers(alert.code)
        for chat in watchers:
            per_chat[chat].append(alert)
        if watchers:
            bodies[fingerprints[id(alert)]] = json.dumps(alert.as_dict(), ensure_ascii=False)
    # Each alert's body is stored once (not once per chat); items and digest queues refer to it by fingerprint.
    await outbox.store_alerts(bodies)
    # Pipelined a chunk of chats at a time: a popular code's alert reaches tens of thousands of chats, and a round
    # trip per chat and per mark would take minutes.
    chats = list(per_chat)
    for start in range(0, len(chats), ROUTE_CHUNK):
        chunk = {chat: per_chat[chat] for chat in chats[start : start + ROUTE_CHUNK]}
        await _route_chunk(chunk, fingerprints, subs, outbox, now, report)
    return report


def _skip(report: RouteReport, reason: str) -> None:
    report.skipped[reason] = report.skipped.get(reason, 0) + 1


async def _route_chunk(
    per_chat: dict[int, list[Alert]],
    fingerprints: dict[int, str],
    subs: SubscriptionStore,
    outbox: Outbox,
    now: datetime,
    report: RouteReport,
) -> None:
    redis: Redis = subs.redis
    settings = await subs.settings_many(list(per_chat))
    mutes = await subs.active_mutes_many(list(per_chat), now)
    wanted: list[tuple[int, Alert]] = []
    for chat, chat_alerts in per_chat.items():
        for alert in chat_alerts:
            decision = decide(alert, settings[chat], mutes[chat])
            if decision.send:
                wanted.append((chat, alert))
            else:
                _skip(report, decision.reason)
    # The idempotency key (fingerprint × chat): an alert reaches a chat once, whatever re-runs or revisions happen.
    # Marks are checked first and set only once the items are written, so a crash in between loses nothing: the
    # re-run finds the same fresh alerts, hence the same item ids (put is NX, sent parts are recorded).
    seen = await _routed_already(redis, [(chat, fingerprints[id(alert)]) for chat, alert in wanted])
    fresh: dict[int, list[Alert]] = defaultdict(list)
    fresh_marks: dict[str, list[int]] = defaultdict(list)  # fingerprint -> chats to mark
    for (chat, alert), already in zip(wanted, seen, strict=True):
        if already:
            _skip(report, "already routed")
        else:
            fresh[chat].append(alert)
            fresh_marks[fingerprints[id(alert)]].append(chat)
    items: list[tuple[OutboxItem, datetime]] = []
    digests: dict[int, list[Alert]] = {}
    for chat, chat_alerts in fresh.items():
        report.chats.add(chat)
        if settings[chat].digest:
            digests[chat] = chat_alerts
            report.digested += len(chat_alerts)
            continue
        quiet = settings[chat].in_quiet(now)
        refs = [fingerprints[id(a)] for a in chat_alerts]
        items.append(
            (
                OutboxItem(
                    id=item_id(chat, "alerts", refs),
                    chat_id=chat,
                    kind="alerts",
                    refs=refs,
                    silent=quiet,
                    created_at=now.isoformat(),
                ),
                settings[chat].quiet_end(now) if quiet else now,
            )
        )
    if items:
        await outbox.put_many(items)
        report.enqueued += len(items)
    async with redis.pipeline(transaction=False) as pipe:
        for chat, chat_alerts in digests.items():
            _to_digest(pipe, chat, [fingerprints[id(a)] for a in chat_alerts])
        # One script call per mark set, in the same pipeline: each set is its own key (slot) on a Redis Cluster,
        # where a script may only touch keys of one slot; nothing needs the sets marked together.
        for fingerprint, chats in fresh_marks.items():
            pipe.eval(_SET_MARKS, 1, keys.routed(fingerprint), keys.ROUTED_TTL_SECONDS, len(chats), *chats)
        await pipe.execute()


async def _routed_already(redis: Redis, pairs: list[tuple[int, str]]) -> list[bool]:
    """For each (chat, fingerprint): was that alert routed to that chat before? One SMISMEMBER per fingerprint."""
    by_fingerprint: dict[str, list[int]] = defaultdict(list)
    for chat, fingerprint in pairs:
        by_fingerprint[fingerprint].append(chat)
    if not by_fingerprint:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for fingerprint, chats in by_fingerprint.items():
            pipe.smismember(keys.routed(fingerprint), chats)
        answers = await pipe.execute()
    known = {
        (chat, fingerprint)
        for (fingerprint, chats), flags in zip(by_fingerprint.items(), answers, strict=True)
        for chat, flag in zip(chats, flags, strict=True)
        if flag
    }
    return [pair in known for pair in pairs]


def _to_digest(pipe: Pipeline, chat: int, fingerprints: list[str]) -> None:
    pipe.rpush(keys.digest_queue(chat), *fingerprints)
    pipe.expire(keys.digest_queue(chat), keys.DIGEST_TTL_SECONDS)


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
