"""The one Redis client builder: the cluster client for a cluster REDIS_URL (or REDIS_CLUSTER), else the plain one."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from alerts.store.connect import client_url as connect_client_url
from alerts.store.connect import connect, is_cluster
from config.settings import load_settings


@pytest.mark.parametrize(
    ("env", "cluster", "client_url"),
    [
        ({"REDIS_URL": "redis://h:6379/0"}, False, "redis://h:6379/0"),
        ({"REDIS_URL": "redis+cluster://h:7000"}, True, "redis://h:7000"),
        ({"REDIS_URL": "rediss+cluster://u:p@h:7000"}, True, "rediss://u:p@h:7000"),
        ({"REDIS_URL": "redis://h:7000", "REDIS_CLUSTER": "1"}, True, "redis://h:7000"),
        ({"REDIS_URL": "redis://h:7000", "REDIS_CLUSTER": "false"}, False, "redis://h:7000"),
    ],
)
async def test_redis_cluster_selects_the_cluster_client(
    env: dict[str, str], cluster: bool, client_url: str
) -> None:
    settings = load_settings(env, env_file=None)
    assert settings.redis_cluster is cluster
    client = connect(settings)
    try:
        assert isinstance(client, RedisCluster) is cluster and is_cluster(client) is cluster
        assert isinstance(client, Redis) is not cluster
    finally:
        await client.aclose()
    assert connect_client_url(settings.redis_url) == client_url


async def test_the_cluster_client_talks_to_the_test_cluster(redis_cluster_url: str) -> None:
    client = connect(load_settings({"REDIS_URL": redis_cluster_url}, env_file=None))
    try:
        await client.set("pb:probe", "1")
        assert await client.get("pb:probe") == b"1"
        nodes = client.get_primaries()  # type: ignore[attr-defined]  # the cluster client's own method
        assert len(nodes) == 3
    finally:
        await client.delete("pb:probe")
        await client.aclose()
