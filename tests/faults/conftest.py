"""Fixtures of the fault-injection suite: a Bot API stand-in per test, the demo history seeded once per session
(the redis and origin fixtures come from tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from tests.support.botapi import BotApi
from tests.support.bothelpers import seed_demo


@pytest.fixture
def api() -> Iterator[BotApi]:
    """A running Bot API stand-in."""
    with BotApi() as server:
        yield server


SEED_DB = 2  # the demo history stored once per session, copied into db 0 by the tests that need it


@pytest.fixture(scope="session")
def demo_seed(redis_url: str) -> str:
    """URL of a database holding the whole demo history (seeding takes seconds; copying it, milliseconds)."""
    url = redis_url.rsplit("/", 1)[0] + f"/{SEED_DB}"

    async def seed() -> None:
        client = Redis.from_url(url)
        try:
            await client.flushdb()
            await seed_demo(client)
        finally:
            await client.aclose()

    asyncio.run(seed())
    return url
