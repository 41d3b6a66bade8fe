"""Notices to the operators (ADMIN_CHAT_IDS): queued through the outbox, once per notice, like any other message.

Going through the outbox means rate limits, retries and redaction apply (Outbox.put redacts text items), and a
notice survives a restart. Each notice has an identity: the item id is derived from the admin and that identity, so
queueing the same notice again (a second leader, a retried tick) is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from redis.exceptions import RedisError

from alerts.store.outbox import Outbox, OutboxItem, item_id
from alerts.store.subscriptions import SubscriptionStore

# A notice: a fixed text (operator notices written in English), or the text for an admin's language.
Notice = str | Callable[[str], str]


async def notify_admins(
    outbox: Outbox,
    admins: Iterable[int],
    notice: Notice,
    identities: list[str],
    due: datetime,
    *,
    subs: SubscriptionStore | None = None,
) -> None:
    """Queue `notice` for every admin chat, due at `due`; the same `identities` never queue it twice."""
    for admin in admins:
        text = notice if isinstance(notice, str) else notice(await chat_lang(subs, admin))
        item = OutboxItem(id=item_id(admin, "text", identities), chat_id=admin, kind="text", text=text)
        await outbox.put(item, due)


async def chat_lang(subs: SubscriptionStore | None, chat_id: int) -> str:
    """A chat's language; English without a store or when Redis cannot say (the notice may be about Redis itself)."""
    if subs is None:
        return "en"
    try:
        return (await subs.settings(chat_id)).lang
    except RedisError:
        return "en"
