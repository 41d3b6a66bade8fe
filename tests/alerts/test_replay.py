"""Replay over the bundled demo data: the seed alerts fire, outcomes are measured, edge cases stay silent."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis

from alerts.history import History, load_directory, span
from alerts.replay import ReplayResult, base_day, format_text, json_lines, outcome, replay, summarize
from alerts.rules import load_params
from alerts.sources import get_source
from alerts.store import keys
from alerts.store.frames import dump_frame
from bot.demo import DEMO_END, DEMO_START, demo_root, load_demo
from tests.support.cli import run_cli


@functools.cache
def load_demo_cached() -> tuple[History, ReplayResult]:
    return load_demo()


@pytest.fixture(scope="module")
def demo() -> tuple[History, ReplayResult]:
    return load_demo_cached()


def _fired(result: ReplayResult) -> set[tuple[str, str, date]]:
    return {(a.rule, a.code, a.trade_date) for _, a in result.alerts}


def test_seed_alerts_fire(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    fired = _fired(result)
    assert ("buyback_filed", "01810", date(2025, 11, 20)) in fired
    assert ("buyback_filed", "01810", date(2025, 11, 21)) in fired
    assert ("insider_buy_near_round_number", "01810", date(2025, 11, 24)) in fired
    assert any(rule == "confluence" and code == "01810" for rule, code, _ in fired)
    assert ("short_ratio_drop", "09988", date(2025, 11, 27)) in fired
    assert ("short_ratio_drop", "00700", date(2025, 11, 27)) in fired
    assert ("market_short_swing", "MARKET", date(2025, 11, 27)) in fired
    assert ("southbound_net_flow", "01810", date(2025, 11, 21)) in fired
    assert ("southbound_net_flow", "01810", date(2025, 11, 25)) in fired
    assert ("eligibility_change", "80016", date(2025, 11, 24)) in fired
    assert not result.problems


# Every alert of the demo, as pushed: (day pushed, rule, code, trade date, identity). Confluence identities name
# their parts; the southbound_net_flow alerts (Stock Connect daily files) join 01810's confluences from 11-21 on.
DEMO_ALERTS = [
    ("2025-11-18", "buyback_filed", "00700", "2025-11-17", ""),
    ("2025-11-19", "buyback_filed", "00005", "2025-11-17", ""),
    ("2025-11-19", "buyback_filed", "00700", "2025-11-18", ""),
    ("2025-11-19", "short_ratio_spike", "01810", "2025-11-19", ""),
    ("2025-11-21", "buyback_filed", "01810", "2025-11-20", ""),
    ("2025-11-21", "confluence", "01810", "2025-11-21", "buyback_filed+short_ratio_spike"),
    (
        "2025-11-21",
        "confluence",
        "01810",
        "2025-11-21",
        "buyback_filed+short_ratio_spike+southbound_net_flow",
    ),
    ("2025-11-21", "southbound_net_flow", "01810", "2025-11-21", "streak:buy"),
    ("2025-11-24", "buyback_filed", "01810", "2025-11-21", ""),
    (
        "2025-11-24",
        "confluence",
        "01810",
        "2025-11-24",
        "buyback_filed+short_ratio_spike+southbound_net_flow",
    ),
    ("2025-11-24", "eligibility_change", "80016", "2025-11-24", "shortable_added"),
    ("2025-11-25", "buyback_filed", "00700", "2025-11-24", ""),
    (
        "2025-11-25",
        "confluence",
        "01810",
        "2025-11-25",
        "buyback_filed+short_ratio_spike+southbound_net_flow",
    ),
    ("2025-11-25", "southbound_net_flow", "01810", "2025-11-25", "large:buy"),
    ("2025-11-26", "confluence", "01810", "2025-11-25", "buyback_filed+southbound_level+southbound_net_flow"),
    ("2025-11-26", "southbound_level", "01810", "2025-11-25", "up:20"),
    ("2025-11-26", "buyback_filed", "00700", "2025-11-25", ""),
    (
        "2025-11-26",
        "confluence",
        "01810",
        "2025-11-26",
        "buyback_filed+insider_buy_near_round_number+southbound_level+southbound_net_flow",
    ),
    ("2025-11-26", "insider_buy_near_round_number", "01810", "2025-11-24", "DA20251126E00187"),
    ("2025-11-27", "confluence", "00700", "2025-11-27", "buyback_filed+short_ratio_drop"),
    ("2025-11-27", "market_short_swing", "MARKET", "2025-11-27", ""),
    ("2025-11-27", "short_ratio_drop", "00700", "2025-11-27", ""),
    ("2025-11-27", "short_ratio_drop", "09988", "2025-11-27", ""),
    (
        "2025-11-28",
        "confluence",
        "01810",
        "2025-11-21",
        "buyback_filed+insider_buy_near_round_number+short_position_jump+southbound_level+southbound_net_flow",
    ),
    ("2025-11-28", "short_position_jump", "01810", "2025-11-21", ""),
]


def test_the_demo_alerts_are_exactly_the_story(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    pushed = [
        (day.isoformat(), a.rule, a.code, a.trade_date.isoformat(), a.identity) for day, a in result.alerts
    ]
    assert pushed == DEMO_ALERTS
    assert len(pushed) == 25


def test_the_new_hk_alerts_say_why(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    by_key = {(a.rule, a.code, a.identity): a for _, a in result.alerts}
    large = by_key[("southbound_net_flow", "01810", "large:buy")]
    assert "net buying HK$1.52bn on 2025-11-25" in large.why and large.severity == "warning"
    streak = by_key[("southbound_net_flow", "01810", "streak:buy")]
    assert "5 southbound sessions in a row" in streak.why
    added = by_key[("eligibility_change", "80016", "shortable_added")]
    assert "effective 2025-11-24 (previous list 2025-09-08)" in added.why


def test_seed_numbers_in_the_why(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    by_key = {(a.rule, a.code): a for _, a in result.alerts}
    insider = by_key[("insider_buy_near_round_number", "01810")]
    assert "HK$38.58" in insider.why and "HK$40" in insider.why and "below" in insider.why
    swing = by_key[("market_short_swing", "MARKET")]
    assert "-37.7%" in swing.why and "795" in swing.why and "840" in swing.why
    assert "9.9%" in by_key[("short_ratio_drop", "00700")].why
    assert "16.9%" in by_key[("short_ratio_drop", "09988")].why


def test_each_fingerprint_once_and_only_sessions(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    fingerprints = [a.fingerprint for _, a in result.alerts]
    assert len(fingerprints) == len(set(fingerprints))
    assert result.days[0] == DEMO_START and result.days[-1] == DEMO_END
    assert all(d.weekday() < 5 for d in result.days)  # nothing in the demo is first known on a weekend


def test_outcomes_and_summary(demo: tuple[History, ReplayResult]) -> None:
    history, result = demo
    insider = next(a for _, a in result.alerts if a.rule == "insider_buy_near_round_number")
    moves = result.outcomes[insider.fingerprint]
    closes = history.closes()["01810"].dropna()
    # Traded on Mon 24/11 but filed Wed 26/11 at 17:00: outcomes run from the first close a reader saw after it.
    assert (insider.trade_date, base_day(insider)) == (date(2025, 11, 24), date(2025, 11, 26))
    base_position = list(closes.index).index(pd.Timestamp("2025-11-26"))
    assert moves.base_close == pytest.approx(closes.iloc[base_position])
    assert moves.moves[5] == pytest.approx(closes.iloc[base_position + 5] / closes.iloc[base_position] - 1)
    market = next(a for _, a in result.alerts if a.rule == "market_short_swing")
    assert result.outcomes[market.fingerprint].moves == {1: None, 5: None, 20: None}
    rows = {s.rule: s for s in summarize(result)}
    assert rows["buyback_filed"].count == sum(1 for _, a in result.alerts if a.rule == "buyback_filed")
    text = format_text(result, DEMO_START, DEMO_END)
    assert "Summary per rule" in text and "insider_buy_near_round_number" in text
    kinds = {row["type"] for row in json_lines(result)}
    assert {"alert", "summary"} <= kinds


def test_sfc_outcomes_start_from_publication_not_the_position_date(
    demo: tuple[History, ReplayResult],
) -> None:
    history, result = demo
    jump = next(a for _, a in result.alerts if a.rule == "short_position_jump")
    # Positions of Fri 21/11 are published Fri 28/11 at 09:00, before the open: the last close seen is Thu 27/11.
    assert jump.trade_date == date(2025, 11, 21)
    assert base_day(jump) == date(2025, 11, 27)
    closes = history.closes()
    assert result.outcomes[jump.fingerprint] == outcome(closes, jump.code, date(2025, 11, 27))
    assert result.outcomes[jump.fingerprint] != outcome(closes, jump.code, jump.trade_date)
    row = next(r for r in json_lines(result) if r.get("fingerprint") == jump.fingerprint)
    assert (row["trade_date"], row["base_day"]) == ("2025-11-21", "2025-11-27")
    assert "(from the 2025-11-27 close)" in format_text(result, DEMO_START, DEMO_END)


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (None, date(2025, 11, 21)),  # no publication time known: the trade date
        (
            datetime(2025, 11, 21, 16, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
            date(2025, 11, 21),
        ),  # at the close
        (
            datetime(2025, 11, 21, 18, 0, tzinfo=ZoneInfo("America/New_York")),
            date(2025, 11, 21),
        ),  # US evening
        # Monday morning: the close last seen is Friday's (a Sunday is never named as the base day).
        (datetime(2025, 11, 24, 6, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")), date(2025, 11, 21)),
        (
            datetime(2025, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
            date(2025, 11, 27),
        ),  # SFC, a week on
        (
            datetime(2025, 11, 20, 17, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
            date(2025, 11, 21),
        ),  # never before trade
    ],
)
def test_base_day_is_the_last_close_before_publication(
    demo: tuple[History, ReplayResult], published: datetime | None, expected: date
) -> None:
    _, result = demo
    template = next(a for _, a in result.alerts if a.rule == "short_ratio_spike")
    alert = dataclasses.replace(template, trade_date=date(2025, 11, 21), published_at=published)
    assert base_day(alert) == expected


def test_alerts_are_evaluated_when_their_file_was_published(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    pushed = {(a.rule, a.code, a.trade_date): (day, a) for day, a in result.alerts}
    day, jump = pushed[("short_position_jump", "01810", date(2025, 11, 21))]
    # Positions of Fri 21/11 come out Fri 28/11 09:00: pushed then, not on the position date.
    assert day == date(2025, 11, 28)
    assert jump.published_at == datetime(2025, 11, 28, 9, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    day, level = pushed[("southbound_level", "01810", date(2025, 11, 25))]
    assert (day, level.published_at.hour) == (date(2025, 11, 26), 6)  # holdings of 25/11 appear 26/11 06:00
    for day, alert in result.alerts:
        assert alert.published_at is not None and day == alert.published_at.date()
        if alert.rule == "confluence":  # a part counts only once known, and no later than the confluence
            parts = [
                pushed_alert for _, pushed_alert in result.alerts if pushed_alert.fingerprint in alert.parts
            ]
            assert len(parts) == len(alert.parts)
            assert all(p.published_at <= alert.published_at for p in parts)
            assert jump.fingerprint not in alert.parts or alert.published_at >= jump.published_at
    moments = [a.published_at for _, a in result.alerts]
    assert moments == sorted(moments)
    rows = [r for r in json_lines(result) if r["type"] == "alert"]
    assert {r["evaluated_on"] for r in rows if r["fingerprint"] == jump.fingerprint} == {"2025-11-28"}
    late = next(r for r in rows if r["rule"] == "confluence" and jump.fingerprint in r["parts"])
    assert late["known_at"] == "2025-11-28T09:00:00+08:00" and late["evaluated_on"] == "2025-11-28"
    assert {p["rule"] for p in late["parts_known"]} >= {"short_position_jump"}
    assert all(p["known_at"] <= late["known_at"] for p in late["parts_known"])
    assert (
        next(f.value for f in jump_confluence(result, jump).facts if f.name == "last")
        == "short_position_jump"
    )


def jump_confluence(result: ReplayResult, jump: object) -> object:
    return next(a for _, a in result.alerts if a.rule == "confluence" and jump.fingerprint in a.parts)


@hyp_settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(offset=st.integers(min_value=0, max_value=12 * 24 * 60))
def test_deleting_files_published_after_a_moment_changes_no_earlier_alert(offset: int) -> None:
    history, result = load_demo_cached()
    moment = datetime(2025, 11, 17, tzinfo=ZoneInfo("Asia/Hong_Kong")) + timedelta(minutes=offset)
    cut = History(
        {
            name: frame[frame["published_at"] <= pd.Timestamp(moment)].reset_index(drop=True)
            for name, frame in history.frames.items()
        }
    )
    before = replay(cut, DEMO_START, moment.date(), load_params())
    expected = [(d, a) for d, a in result.alerts if a.published_at <= moment]
    assert [(d, a) for d, a in before.alerts if a.published_at <= moment] == expected


def test_summary_shows_a_base_rate_beside_each_hit_rate(demo: tuple[History, ReplayResult]) -> None:
    _, result = demo
    rows = {s.rule: s for s in summarize(result)}
    buyback = rows["buyback_filed"]
    assert (
        buyback.base_rate is not None and 0 <= buyback.base_rate <= 1 and buyback.base_counted > buyback.count
    )
    assert rows["market_short_swing"].base_rate is None  # no stated direction, no base rate
    text = format_text(result, DEMO_START, DEMO_END)
    assert "base rate 5d" in text and f"of {buyback.base_counted}" in text
    summary = next(r for r in json_lines(result) if r["type"] == "summary" and r["rule"] == "buyback_filed")
    assert summary["base_counted"] == buyback.base_counted


def test_demo_prints_each_alert_under_the_day_it_would_have_been_pushed(
    demo: tuple[History, ReplayResult], capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.demo import print_replay

    print_replay(demo[1], False)
    out = capsys.readouterr().out
    friday_21, friday_28 = out.index("━━━ Fri 21 Nov 2025"), out.index("━━━ Fri 28 Nov 2025")
    jump = out.index("Reported short position change · 01810")
    assert jump > friday_28 > friday_21  # the SFC position of 21/11 is published on 28/11


def test_revised_file_does_not_duplicate_alerts(demo: tuple[History, ReplayResult]) -> None:
    history, _ = demo
    quotes = history.frames["quotes"]
    revised = quotes[quotes["date"] == pd.Timestamp("2025-11-27")].copy()
    revised["short_value"] = revised["short_value"] * 0.999  # next-day adjusted figures
    revised["short_ratio"] = revised["short_value"] / revised["total_value"]
    frames = dict(history.frames)
    frames["quotes"] = pd.concat([quotes, revised], ignore_index=True).sort_values("date", kind="stable")
    result = replay(History(frames), date(2025, 11, 27), date(2025, 11, 28), load_params())
    drops = [a for _, a in result.alerts if a.rule == "short_ratio_drop"]
    assert sorted(a.code for a in drops) == ["00700", "09988"]


def test_holidays_fire_nothing_and_short_history_says_so() -> None:
    root = demo_root()
    history = load_directory(root, *span(date(2025, 12, 24), date(2025, 12, 29)))
    result = replay(history, date(2025, 12, 24), date(2025, 12, 29), load_params())
    assert date(2025, 12, 25) not in result.days and date(2025, 12, 26) not in result.days
    assert all(a.trade_date not in (date(2025, 12, 25), date(2025, 12, 26)) for _, a in result.alerts)
    early = load_directory(root, *span(date(2025, 8, 5), date(2025, 8, 8)))
    early_result = replay(
        early, date(2025, 8, 5), date(2025, 8, 8), load_params(), codes=frozenset({"01810"})
    )
    assert not [a for _, a in early_result.alerts if a.rule.startswith("short_ratio")]
    assert any(n.rule.startswith("short_ratio") and n.code == "01810" for _, n in early_result.notes)


def test_replay_cli_text_json_and_codes() -> None:
    text = run_cli(
        "replay",
        "--from",
        "2025-11-17",
        "--to",
        "2025-11-28",
        "--data",
        str(demo_root()),
        "--codes",
        "1810,09988",
    )
    assert text.returncode == 0, text.stderr
    assert "insider_buy_near_round_number" in text.stdout
    alert_lines = [line for line in text.stdout.splitlines() if line[:4] == "2025"]
    assert alert_lines and {line.split()[1] for line in alert_lines} == {"01810", "09988"}
    lines = run_cli(
        "replay",
        "--from",
        "2025-11-17",
        "--to",
        "2025-11-28",
        "--data",
        str(demo_root()),
        "--codes",
        "01810,9988",
        "--format",
        "json",
    )
    assert lines.returncode == 0, lines.stderr
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    alerts = [r for r in rows if r["type"] == "alert"]
    assert {r["code"] for r in alerts} == {"01810", "09988"}
    assert all(set(r["forward_moves"]) == {"1d", "5d", "20d"} for r in alerts)
    bad = run_cli("replay", "--from", "2025-11-28", "--to", "2025-11-17", "--data", str(demo_root()))
    assert bad.returncode == 2


def test_replay_from_redis(redis_url: str, tmp_path: Path) -> None:
    """Without --data the replay reads what `fetch` stored in Redis."""
    client = SyncRedis.from_url(redis_url)
    client.flushdb()
    history = load_directory(demo_root(), date(2025, 8, 1), date(2025, 12, 31))
    source = get_source("hkex-quotes")
    quotes, market = history.frames["quotes"], history.frames["market"]
    for day in sorted(set(quotes["date"].dt.date)):
        tables = {
            "main": quotes[quotes["date"].dt.date == day],
            "market": market[market["date"].dt.date == day],
        }
        for table, frame in tables.items():
            client.set(keys.frame(source.name, table, day), dump_frame(frame.reset_index(drop=True)))
            client.zadd(keys.frame_index(source.name, table), {day.isoformat(): day.toordinal()})
    result = run_cli(
        "replay",
        "--from",
        "2025-11-26",
        "--to",
        "2025-11-28",
        "--format",
        "json",
        env={"REDIS_URL": redis_url},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    fired = {
        (r["rule"], r["code"]) for r in map(json.loads, result.stdout.splitlines()) if r["type"] == "alert"
    }
    assert {
        ("short_ratio_drop", "00700"),
        ("short_ratio_drop", "09988"),
        ("market_short_swing", "MARKET"),
    } <= fired


def test_demo_command_without_a_terminal_prints_and_exits_0(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "positioning-bot"
    proc = subprocess.run(
        [str(exe), "demo"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Insider buy near a round number · 01810" in out
    assert "HK$38.58" in out
    assert "Market-wide short selling swing" in out
    assert "[ Card ]  [ Chart ]  [ Mute 1d ]" in out
    assert "<b>" not in out  # rendered for the console
    assert "you ›" not in out  # no chat without a terminal


def test_demo_piped_into_a_reader_that_stops_early_ends_without_a_traceback(tmp_path: Path) -> None:
    # `positioning-bot demo | head -1`: the reader closes the pipe after one line.
    exe = Path(sys.executable).parent / "positioning-bot"
    with subprocess.Popen(
        [str(exe), "demo"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"positioning-bot demo")
        proc.stdout.close()
        errors = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors


def test_demo_chat_answers_commands(tmp_path: Path) -> None:
    """The console chat answers the bot's commands (driven through a pseudo-terminal)."""
    import os
    import pty

    exe = Path(sys.executable).parent / "positioning-bot"
    pid, fd = pty.fork()
    if pid == 0:  # child: the demo on a terminal
        os.execv(str(exe), [str(exe), "demo"])
    output = b""

    def read_until(marker: bytes, limit: float = 60.0) -> None:
        nonlocal output
        import select
        import time

        end = time.monotonic() + limit
        while marker not in output and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    break

    read_until("you ›".encode())
    os.write(fd, b"/card 1810\n")
    read_until(b"(/flows 1810)")  # the card's last line
    os.write(fd, "小米\n".encode())
    read_until(b"positioning card", 10)
    os.write(fd, b"/why short_ratio_drop\n")
    read_until(b"not proof of covering")
    os.write(fd, b"/nonsense\n")
    read_until(b"Unknown command")
    os.write(fd, b"/quit\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = output.decode("utf-8", "replace")
    assert "Short ratio" in text and "SFC short position" in text and "HKEX Stock Connect holdings" in text
    assert "Lei Jun" in text
    assert "not proof of covering" in text
    assert "Unknown command" in text
    assert os.waitstatus_to_exitcode(status) == 0


def test_console_answers_explain_stateful_commands(demo: tuple[History, ReplayResult]) -> None:
    from bot.answers import answer
    from bot.view import DataView

    history, result = demo
    view = DataView(history, DEMO_END, [a for _, a in result.alerts], result.outcomes)
    assert "works in Telegram" in answer(view, "/watch", ["1810"]).text
    assert "Unknown command /frob" in answer(view, "/frob", []).text
    assert "Lei Jun" in answer(view, "/insiders", ["1810"]).text
    assert "at most 20" in answer(view, "/card", ["x"] * 21).text
