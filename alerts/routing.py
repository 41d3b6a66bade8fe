"""Route alerts to the chats that watch their stocks: filter, mark once per (fingerprint × chat), group, enqueue."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis

from alerts.model import Alert
from alerts.outbox import Outbox, OutboxItem, item_id
from alerts.store import keys
from alerts.subscriptions import ChatSettings, SubscriptionStore

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


async def route(alerts: list[Alert], subs: SubscriptionStore, outbox: Outbox, now: datetime) -> RouteReport:
    """Fan alerts out to watching chats and enqueue one grouped item per chat (digest chats get a queue)."""
    report = RouteReport()
    per_chat: dict[int, list[Alert]] = defaultdict(list)
    market_chats = await subs.market_subscribers()
    for alert in alerts:
        chats = market_chats if alert.code == "MARKET" else await subs.watchers(alert.code)
        for chat in chats:
            per_chat[chat].append(alert)
    redis: Redis = subs.redis
    for chat, chat_alerts in per_chat.items():
        settings = await subs.settings(chat)
        mutes = await subs.active_mutes(chat, now)
        fresh: list[Alert] = []
        for alert in chat_alerts:
            decision = decide(alert, settings, mutes)
            if not decision.send:
                report.skipped[decision.reason] = report.skipped.get(decision.reason, 0) + 1
                continue
            # The idempotency key: an alert reaches a chat once, whatever re-runs or revisions happen.
            if await redis.set(keys.routed(chat, alert.fingerprint), "1", nx=True, ex=keys.ROUTED_TTL_SECONDS):
                fresh.append(alert)
            else:
                report.skipped["already routed"] = report.skipped.get("already routed", 0) + 1
        if not fresh:
            continue
        report.chats.add(chat)
        if settings.digest:
            await _to_digest(redis, chat, fresh)
            report.digested += len(fresh)
            continue
        quiet = settings.in_quiet(now)
        item = OutboxItem(id=item_id(chat, "alerts", [a.fingerprint for a in fresh]), chat_id=chat, kind="alerts",
                          alerts=[a.as_dict() for a in fresh], silent=quiet, created_at=now.isoformat())
        await outbox.put(item, settings.quiet_end(now) if quiet else now)
        report.enqueued += 1
    return report


async def _to_digest(redis: Redis, chat: int, alerts: list[Alert]) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(keys.digest_queue(chat), *[json.dumps(a.as_dict(), ensure_ascii=False) for a in alerts])
        pipe.expire(keys.digest_queue(chat), keys.DIGEST_TTL_SECONDS)
        await pipe.execute()


async def flush_digest(subs: SubscriptionStore, outbox: Outbox, chat: int, now: datetime) -> bool:
    """Move a chat's held alerts into one digest item (atomically emptying the queue); True if any."""
    redis: Redis = subs.redis
    async with redis.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.digest_queue(chat), 0, -1)
        pipe.delete(keys.digest_queue(chat))
        raw, _ = await pipe.execute()
    if not raw:
        return False
    alerts = [json.loads(r) for r in raw]
    item = OutboxItem(id=item_id(chat, "digest", [a["fingerprint"] for a in alerts]), chat_id=chat, kind="digest",
                      alerts=alerts, silent=True, created_at=now.isoformat())
    await outbox.put(item, now)
    return True
