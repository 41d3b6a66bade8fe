"""confluence: today's and recent alerts → exact confluence alerts, plus a property test."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.model import Alert, Fact
from alerts.rules import load_params
from alerts.rules.confluence import evaluate_confluence
from tests.alerts.rules.frames import DAY, context

PARAMS = load_params()
HK = ZoneInfo("Asia/Hong_Kong")


def signal(rule: str, day: date = DAY, code: str = "01810", identity: str = "") -> Alert:
    return Alert(
        rule=rule,
        code=code,
        trade_date=day,
        severity="notice",
        why=f"{rule} fired",
        name="XIAOMI-W",
        links=(f"https://example.test/{rule}",),
        identity=identity,
        published_at=datetime.combine(day, datetime.min.time(), tzinfo=HK) + timedelta(hours=18),
    )


def run(today: list[Alert], recent: list[Alert], **extra: Any) -> list[Alert]:
    alerts, notes = evaluate_confluence(context(recent_alerts=tuple(recent), **extra), PARAMS, today=today)
    assert notes == []
    return alerts


SPIKE = signal("short_ratio_spike")
BUYBACK = signal("buyback_filed", date(2025, 11, 26))
CASES = [
    pytest.param(
        [SPIKE],
        [BUYBACK],
        [
            (
                "buyback_filed+short_ratio_spike",
                "notice",
                "2 signals within 5 sessions: buyback_filed (2025-11-26), short_ratio_spike (2025-11-27)",
            )
        ],
        id="today-plus-recent",
    ),
    pytest.param(
        [], [BUYBACK, signal("short_ratio_spike", date(2025, 11, 26))], [], id="nothing-today-silent"
    ),
    pytest.param(
        [SPIKE, signal("insider_buy_near_round_number", date(2025, 11, 24), identity="DA1")],
        [],
        [
            (
                "insider_buy_near_round_number+short_ratio_spike",
                "notice",
                "2 signals within 5 sessions: insider_buy_near_round_number (2025-11-24), "
                "short_ratio_spike (2025-11-27)",
            )
        ],
        id="two-rules-today",
    ),
    pytest.param([SPIKE], [signal("short_ratio_spike", date(2025, 11, 25))], [], id="same-rule-twice-silent"),
    pytest.param([SPIKE], [signal("buyback_filed", date(2025, 11, 20))], [], id="part-before-window-silent"),
    pytest.param(
        [SPIKE],
        [signal("buyback_filed", date(2025, 11, 21))],
        [
            (
                "buyback_filed+short_ratio_spike",
                "notice",
                "2 signals within 5 sessions: buyback_filed (2025-11-21), short_ratio_spike (2025-11-27)",
            )
        ],
        id="first-session-of-window-counts",
    ),
    pytest.param(
        [SPIKE],
        [
            BUYBACK,
            signal("buyback_filed", date(2025, 11, 25)),
            signal("southbound_level", date(2025, 11, 26), identity="up:10"),
        ],
        [
            (
                "buyback_filed+short_ratio_spike+southbound_level",
                "warning",
                "3 signals within 5 sessions: buyback_filed (2025-11-25/2025-11-26), "
                "short_ratio_spike (2025-11-27), southbound_level (2025-11-26)",
            )
        ],
        id="three-rules-warning",
    ),
    pytest.param([SPIKE], [signal("buyback_filed", code="00700")], [], id="other-stock-silent"),
    pytest.param(
        [SPIKE, signal("market_short_swing", code="MARKET")],
        [signal("confluence", date(2025, 11, 26), identity="a+b")],
        [],
        id="market-and-confluence-not-parts",
    ),
    pytest.param([SPIKE], [SPIKE], [], id="same-alert-counted-once"),
]


@pytest.mark.parametrize(("today", "recent", "expected"), CASES)
def test_table(today: list[Alert], recent: list[Alert], expected: list) -> None:
    alerts = run(today, recent)
    assert [(a.identity, a.severity, a.why) for a in alerts] == expected
    assert all(a.rule == "confluence" and a.code == "01810" and a.trade_date == DAY for a in alerts)


def test_alert_in_full() -> None:
    (alert,) = run([SPIKE], [BUYBACK])
    assert alert.parts == (BUYBACK.fingerprint, SPIKE.fingerprint)
    assert alert.links == ("https://example.test/buyback_filed", "https://example.test/short_ratio_spike")
    assert alert.published_at == SPIKE.published_at
    assert alert.name == "XIAOMI-W"
    assert alert.facts == (
        Fact("rules", 2, "rules"),
        Fact("signals", "buyback_filed+short_ratio_spike", ""),
        Fact("parts", 2, "alerts"),
        Fact("window", 5, "sessions"),
        Fact("last", "short_ratio_spike", ""),
    )


def test_identity_is_the_rule_set() -> None:
    first = run([SPIKE], [BUYBACK])[0]
    again = run([SPIKE, signal("buyback_filed", date(2025, 11, 25))], [BUYBACK])[0]
    assert again.fingerprint == first.fingerprint  # same combination, same day: no second alert
    wider = run([SPIKE, signal("insider_buy_near_round_number", identity="X")], [BUYBACK])[0]
    assert wider.fingerprint != first.fingerprint


def test_codes_filter() -> None:
    assert run([SPIKE], [BUYBACK], codes=frozenset({"00700"})) == []


_RULES = st.sampled_from(
    [
        "short_ratio_spike",
        "short_ratio_drop",
        "short_position_jump",
        "buyback_filed",
        "insider_buy_near_round_number",
        "southbound_level",
        "market_short_swing",
        "confluence",
    ]
)
_ALERTS = st.builds(
    lambda rule, offset, code, identity: signal(rule, DAY - timedelta(days=offset), code, identity),
    _RULES,
    st.integers(min_value=-3, max_value=20),
    st.sampled_from(["01810", "00700", "MARKET", ""]),
    st.sampled_from(["", "x", "up:10"]),
)


@settings(max_examples=50, deadline=None)
@given(today=st.lists(_ALERTS, max_size=8), recent=st.lists(_ALERTS, max_size=12))
def test_never_raises_on_random_alerts(today: list[Alert], recent: list[Alert]) -> None:
    for alert in run(today, recent):
        assert len(set(alert.identity.split("+"))) >= 2
        assert alert.code not in ("MARKET",)


def test_a_southbound_net_flow_alert_joins_another_rules_alert() -> None:
    # The real rule's alert (from its table test's history), not a stand-in: confluence needs no list of rules.
    from alerts.rules.southbound_flow import evaluate_southbound_net_flow
    from tests.alerts.rules.frames import frame
    from tests.alerts.rules.test_southbound_flow import flow_rows

    rows = flow_rows("01810", [100, 200] * 10 + [400])
    (flow,), _ = evaluate_southbound_net_flow(context(southbound_flow=frame("southbound_flow", rows)), PARAMS)
    assert (flow.rule, flow.identity) == ("southbound_net_flow", "large:buy")
    (alert,) = run([flow], [BUYBACK])
    assert alert.identity == "buyback_filed+southbound_net_flow"
    assert alert.why == (
        "2 signals within 5 sessions: buyback_filed (2025-11-26), southbound_net_flow (2025-11-27)"
    )
    assert len(alert.parts) == 2 and flow.fingerprint in alert.parts
