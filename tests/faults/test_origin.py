"""The data origin misbehaving under a running `positioning-bot run`: 404, 5xx, a hung request, a placeholder page
with 200, a truncated file, a changed layout. No alert from bad data, nothing stored or marked done, the process
keeps running and answering, the admins hear about the files that do not parse, and the good files then alert
once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.errors import MalformedFile, NotPublishedYet
from alerts.sources import get_source
from alerts.store import keys
from alerts.store.frames import FrameStore
from tests.faults.harness import BotProcess, assert_clean_log, bot_env, hk_iso, until
from tests.faults.scenario import Chats, copy_db, demo_bytes, received, reference_run, seed_copy
from tests.support.botapi import BotApi
from tests.support.bothelpers import ADMIN
from tests.support.origin import Origin
from tests.support.paths import FIXTURES

pytestmark = pytest.mark.faults

DAY = date(2025, 11, 27)
START = datetime(2025, 11, 27, 18, 0, tzinfo=HK_TZ)  # inside the windows of quotes, buybacks and DI for DAY
QUOTES, BUYBACKS, DI = "hkex-quotes", "hkex-buybacks", "hkex-di"
# Earlier quotes files, past their windows: polled once at start (catch-up), then only every 10 minutes. They
# carry the broken files, so one poll round shows every fault and the next one the good files of DAY.
TRUNCATED, CHANGED = date(2025, 11, 26), date(2025, 11, 25)
PAIRS = [(QUOTES, DAY), (BUYBACKS, DAY), (DI, DAY), (QUOTES, TRUNCATED), (QUOTES, CHANGED)]
FETCH_TIMEOUT = 30.0  # the bot's HTTP client timeout for source files (bot/deps.py)


def _path(source: str, day: date = DAY) -> str:
    return get_source(source).paths(day)[0]


def _good(source: str, day: date = DAY) -> dict[str, bytes]:
    files = {path: demo_bytes(source, day, path) for path in get_source(source).paths(day)}
    assert all(body is not None for body in files.values()), source
    return files  # type: ignore[return-value]


def _bad_files() -> dict[str, bytes]:
    """The broken variants, each checked against the parser so the test cannot pass on a file that parses."""
    truncated = _good(QUOTES, TRUNCATED)[_path(QUOTES, TRUNCATED)]
    changed = _good(QUOTES, CHANGED)[_path(QUOTES, CHANGED)]
    bad = {
        "changed": changed.replace(b'name = "quotations"', b'name = "prices"'),  # a renamed section
        "truncated": truncated[: len(truncated) // 2],
        "placeholder": (FIXTURES / "hkex-di" / "DSM20251110C1_unavailable.htm").read_bytes(),
    }
    for source, name, error in (
        (QUOTES, "changed", MalformedFile),
        (QUOTES, "truncated", MalformedFile),
        (DI, "placeholder", NotPublishedYet),
    ):
        with pytest.raises(error):
            get_source(source).parse_all(bad[name])
    return bad


async def _touched(redis: Redis) -> list[tuple[str, date]]:
    """Which (source, day) got stored or marked done (none may be, from bad data)."""
    store, out = FrameStore(redis), []
    for source, day in PAIRS:
        if await redis.exists(keys.cycle_done(source, day)) or await store.dates(source, "main", day, day):
            out.append((source, day))
    return out


def _hits(origin: Origin, path: str, since: int = 0) -> int:
    return sum(1 for r in origin.requests[since:] if r.path == path)


@pytest.mark.timeout(300)
async def test_origin_faults_no_alert_from_bad_data(
    redis: Redis, redis_url: str, demo_seed: str, origin: Origin, api: BotApi, tmp_path: Path
) -> None:
    bad = _bad_files()
    await seed_copy(redis, demo_seed, frozenset(PAIRS))
    chats = Chats((8401, 8402, 8403))
    await chats.subscribe(redis)

    # What the good files of DAY give when nothing goes wrong (computed on a copy of the database). Only the quotes
    # file alerts; the buyback and DI files of DAY add no new alert (anything more would show as unexpected below).
    for source in (QUOTES, BUYBACKS, DI):
        for path, body in _good(source).items():
            origin.add(path, body)
    reference = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")
    try:
        await copy_db(redis, reference)
        expected = await reference_run(reference, origin.url, START, (QUOTES,))
        await reference.flushdb()
    finally:
        await reference.aclose()
    assert expected, "the good files alert some chat"
    origin.routes.clear()
    origin.requests.clear()

    # Round 1: quotes of DAY not published (404), buybacks 503, DI hangs past the bot's timeout; the earlier quotes
    # files are truncated and have a changed layout.
    origin.add(_path(BUYBACKS), b"", status=503)
    origin.add(_path(DI), b"", delay=FETCH_TIMEOUT + 10)
    origin.add(_path(QUOTES, TRUNCATED), bad["truncated"])
    origin.add(_path(QUOTES, CHANGED), bad["changed"])
    bot = BotProcess(
        bot_env(
            api_url=api.base_url,
            redis_url=redis_url,
            origin_url=origin.url,
            home=tmp_path,
            ADMIN_CHAT_IDS=str(ADMIN),
            CLOCK_START=hk_iso(START),
        ),
        tmp_path / "bot.log",
    )
    try:
        bot.start()
        # Sources are fetched concurrently: the buyback retries go on while the DI request hangs.
        await until(
            lambda: _hits(origin, _path(DI)) and _hits(origin, _path(BUYBACKS)) >= 4,
            60,
            "the DI request that hangs and the buyback retries",
            logs=bot.tail,
        )
        assert _hits(origin, _path(QUOTES)) == 1 and _hits(origin, _path(BUYBACKS)) == 4  # 503: three retries
        assert _hits(origin, _path(QUOTES, TRUNCATED)) == 1 and _hits(origin, _path(QUOTES, CHANGED)) == 1
        # While the fetch hangs, the bot still answers commands.
        api.push_message(chats.ids[0], "/help")
        await until(
            lambda: api.messages(chats.ids[0]), 30, "an answer to /help during the hang", logs=bot.tail
        )
        help_answers = len(api.messages(chats.ids[0]))
        # The retry after the timeout finds a placeholder page served with 200; meanwhile the good files of DAY
        # appear for quotes and buybacks (their next poll comes after this round).
        origin.add(_path(DI), bad["placeholder"])
        for source in (QUOTES, BUYBACKS):
            for path, body in _good(source).items():
                origin.add(path, body)
        await until(lambda: _hits(origin, _path(DI)) >= 2, FETCH_TIMEOUT + 30, "the DI retry", logs=bot.tail)
        await until(
            lambda: "status=not_published" in bot.text().rsplit("hkex-di 2025-11-27", 1)[-1],
            10,
            "the placeholder judged",
            logs=bot.tail,
        )
        await until(
            lambda: len(_notices(api)) >= 2, 30, "the admins told about two broken files", logs=bot.tail
        )

        assert bot.alive(), bot.tail()
        assert await _touched(redis) == [], "nothing may be stored or marked done from bad data"
        assert all(len(api.messages(c)) == (help_answers if c == chats.ids[0] else 0) for c in chats.ids)
        text = bot.text()
        for status in ("malformed", "failed", "not_published"):
            assert f"status={status}" in text, status

        # Round 2: the good files (DI's too) are fetched at the next polls; the alerts fire, once.
        for path, body in _good(DI).items():
            origin.add(path, body)

        async def done() -> bool:
            return (
                all([await redis.exists(keys.cycle_done(s, DAY)) for s in (QUOTES, BUYBACKS, DI)])
                and await redis.zcard(keys.OUTBOX_DUE) == 0
                and all(received(api.messages(c)) for c in expected)
            )

        await until(done, 90, "the good files processed and delivered", logs=bot.tail)
        await asyncio.sleep(3)  # a second copy would arrive by now
        assert bot.alive(), bot.tail()
        assert [p for p in await _touched(redis) if p[1] != DAY] == [], "the broken files stay unprocessed"
        # Past their windows, the broken files are retried every 10 minutes, not at the 20 s pace of DAY's window.
        assert _hits(origin, _path(QUOTES, TRUNCATED)) == 1 and _hits(origin, _path(QUOTES, CHANGED)) == 1
    finally:
        bot.stop()
    for chat, wanted in expected.items():
        assert received(api.messages(chat)) == wanted, chat
    notices = _notices(api)
    print(f"[faults] origin: admin notices about broken files: {notices}")
    assert (
        len(notices) == 2
        and any(TRUNCATED.isoformat() in n for n in notices)
        and any(CHANGED.isoformat() in n for n in notices)
    )
    assert Counter(notices).most_common(1)[0][1] == 1, "each broken file is announced once"
    assert_clean_log(bot.text())


def _notices(api: BotApi) -> list[str]:
    return [str(m.get("text", "")) for m in api.messages(ADMIN) if "did not parse" in str(m.get("text", ""))]
