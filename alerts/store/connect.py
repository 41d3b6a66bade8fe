"""The one place a Redis client is built from the settings: one server, or a Redis Cluster.

`REDIS_URL` names one server (redis://, rediss://, unix://) or a node of a Redis Cluster (redis+cluster://,
rediss+cluster://, or redis:// with REDIS_CLUSTER=1). For a cluster, redis-py's own cluster client
(redis.asyncio.cluster.RedisCluster) is used: it reads the slot map from that node, sends every command to the
node owning its key's slot, follows MOVED/ASK redirections and splits a non-transactional pipeline per node.
The code needs no other change because every multi-key transaction and Lua script keeps its keys in one hash slot
(see the table in alerts/store/keys.py).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from config.settings import CLUSTER_SCHEMES, Settings


def client_url(url: str) -> str:
    """The URL as redis-py takes it: redis+cluster:// → redis://, rediss+cluster:// → rediss://."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        return urlunsplit(parts._replace(scheme=parts.scheme.removesuffix("+cluster")))
    return url


def connect_url(url: str, *, cluster: bool = False, **options: Any) -> Redis:
    """An asyncio client for `url`: a cluster client for a cluster URL or with `cluster`, else the plain one.

    Typed as the plain client: the project uses only commands both clients offer (the store suites run against a
    real cluster to keep it so), and a union would make every caller narrow it for nothing.
    """
    if cluster or urlsplit(url).scheme in CLUSTER_SCHEMES:
        return cast("Redis", RedisCluster.from_url(client_url(url), **options))
    return Redis.from_url(url, **options)


def connect(settings: Settings, **options: Any) -> Redis:
    """The client for `settings.redis_url` (REDIS_URL / REDIS_CLUSTER); `options` go to redis-py."""
    return connect_url(settings.redis_url, cluster=settings.redis_cluster, **options)


def is_cluster(redis: Redis) -> bool:
    """True when `redis` is a Redis Cluster client (its commands must keep multi-key work in one slot)."""
    return isinstance(redis, RedisCluster)
