"""History from day one (issue 20): after a backfill, /history, /top and the card through the real Application.

The demo files are stored in a private Redis as a backfill leaves them; `positioning-bot replay --record` (a real
process) records the span's alerts as history; the real python-telegram-bot Application answers against the Bot
API stand-in, and a live cycle afterwards for an already-recorded day sends nothing.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

from redis.asyncio import Redis

from alerts.calendar import HK_TZ
from alerts.pipeline import CycleReport, evaluate_and_route
from alerts.store.alertlog import AlertLog
from alerts.store.outbox import Outbox
from alerts.store.subscriptions import SubscriptionStore
from bot.i18n import catalogue, day
from config.settings import Settings
from tests.support.botapi import BotApi, parse_html
from tests.support.bothelpers import DEMO_NOW, running_bot, seed_demo
from tests.support.cli import run_cli

USER, ZH_USER = 4001, 4002
SPAN = ("--from", "2025-10-27", "--to", "2025-11-28")  # from the week the first of 01810's SFC jumps came out
CLOCK = DEMO_NOW.isoformat()


async def _ask(api: BotApi, chat: int, text: str, n: int, **kw: object) -> str:
    api.push_message(chat, text, **kw)  # type: ignore[arg-type]
    await api.await_sent(n, chat_id=chat, timeout=30)
    return parse_html(api.texts(chat)[n - 1])[0]


async def test_history_after_a_backfill_lists_the_past_with_outcomes_and_pushes_nothing(
    api: BotApi, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    await seed_demo(redis)
    subs = SubscriptionStore(redis)
    for chat in (
        USER,
        ZH_USER,
    ):  # watchers of 01810 before the backfill: they must not be told about the past
        await subs.touch(chat)
        await subs.watch(chat, ["01810"])
        await subs.set_market(chat, True)
    env = {"REDIS_URL": redis_url, "CLOCK_START": CLOCK, "LOG_LEVEL": "WARNING"}
    first = await asyncio.to_thread(run_cli, "replay", "--record", *SPAN, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    recorded = first.stdout.strip().splitlines()[-1]
    assert recorded.startswith("recorded ") and recorded.endswith(" historical alerts (0 already known)")
    count = int(recorded.split()[1])
    assert count > 0
    again = await asyncio.to_thread(
        run_cli, "replay", "--record", *SPAN, "--format", "json", env=env, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    row = json.loads(again.stdout.strip().splitlines()[-1])
    assert row == {"type": "recorded", "new": 0, "known": count, "revised": 0, "live": 0, "later": 0}
    assert await Outbox(redis).pending() == 0

    async with running_bot(api, redis_url) as app:
        await app.bot_data["deps"].view()
        text = await _ask(api, USER, "/history 1810", 1)
        lines = text.split("\n")
        found = catalogue("en")["ans.history.found"].replace("<i>", "").replace("</i>", "")
        spike = [line for line in lines if " 🔺 Short-selling ratio spike: " in line]
        jumps = [line for line in lines if " 📊 Reported short position change: " in line]
        assert [line.split(" 🔺")[0] for line in spike] == [day("en", date(2025, 11, 19))]
        # The 15 newest are all from the demo weeks (01810's southbound net buying and the confluences it joins
        # fill them); the older jump of 31/10 is counted in the total and logged (asserted at the end).
        assert [line.split(" 📊")[0] for line in jumps] == [day("en", date(2025, 11, 21))]
        assert "(15 of " in lines[0] and int(lines[0].split("(15 of ")[1].split(")")[0]) > 15
        for line in spike + jumps:
            assert line.endswith(found) and "1d " in line and "5d " in line and "20d " in line
        assert "Hit rates" in text and "vs a base rate of" in text
        assert "Short-selling ratio spike: 1 of 1 judged alerts" in text

        top = await _ask(api, USER, "/top", 2)
        assert top == parse_html(catalogue("en")["ans.top.none"])[0]  # nothing was pushed today

        card = await _ask(api, USER, "/card 1810", 3)
        (last,) = [line for line in card.split("\n") if line.startswith("🕰 Last alerts")]
        assert f"Southbound net buying or selling (same day) {day('en', date(2025, 11, 25))}" in last
        assert f"Reported short position change {day('en', date(2025, 11, 21))}" in last

        await _ask(api, ZH_USER, "/lang zh", 1)
        zh = await _ask(api, ZH_USER, "/history 1810", 2)
        assert "回補歷史數據時找出，未曾推送" in zh and "沽空比率急升" in zh

        # A live cycle afterwards for an already-recorded day (the quotations of 27/11) sends nothing.
        report = await evaluate_and_route(
            CycleReport("hkex-quotes", date(2025, 11, 27), "processed"),
            settings=Settings(),
            redis=redis,
            now=DEMO_NOW.astimezone(HK_TZ),
            force=True,
        )
        assert report.alerts > 0 and report.historical == report.alerts and report.enqueued == 0
        await asyncio.sleep(1.0)  # several drains of the outbox
        assert len(api.messages(USER)) == 3 and len(api.messages(ZH_USER)) == 2  # the replies only
    assert app.bot_data.get("handler_errors", []) == []
    logged = await AlertLog(redis).logged_day(date(2025, 11, 19))
    assert any(e.historical and e.alert.rule == "short_ratio_spike" for e in logged)
    older = [
        *await AlertLog(redis).logged_day(date(2025, 10, 31)),
        *await AlertLog(redis).logged_day(date(2025, 11, 7)),
    ]
    assert any(
        e.historical and e.alert.rule == "short_position_jump" and e.alert.trade_date == date(2025, 10, 31)
        for e in older
    )
