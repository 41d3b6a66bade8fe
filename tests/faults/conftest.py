"""Fixtures of the fault-injection suite: a Bot API stand-in per test (the redis and origin fixtures come from
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.botapi import BotApi


@pytest.fixture
def api() -> Iterator[BotApi]:
    """A running Bot API stand-in."""
    with BotApi() as server:
        yield server
