"""insider_buy_near_round_number and the round-level helpers: tables → exact alerts, plus a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.model import Fact
from alerts.rules import load_params, nearest_round_level, round_levels
from alerts.rules.insiders import evaluate_insider_buy_near_round_number
from alerts.sources.hkex_di import parse
from tests.alerts.rules.frames import DAY, context, days, frame, frames
from tests.support.paths import fixture_bytes

PARAMS = load_params()


@pytest.mark.parametrize(
    ("price", "levels"),
    [
        (38.58, (35.0, 40.0)),
        (40.0, (40.0, 40.0)),
        (4.4, (4.0, 4.5)),
        (4.9, (4.5, 5.0)),
        (5.0, (5.0, 5.0)),
        (19.5, (19.0, 20.0)),
        (98.76, (95.0, 100.0)),
        (480.2, (480.0, 490.0)),
        (520.0, (500.0, 550.0)),
        (0.355, (0.0, 0.5)),
    ],
)
def test_round_levels(price: float, levels: tuple[float, float]) -> None:
    assert round_levels(price) == levels


@pytest.mark.parametrize("price", [0.0, -1.0, float("nan"), float("inf")])
def test_round_levels_rejects_non_prices(price: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        round_levels(price)


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (38.58, (40.0, 3.55, "below")),  # the seed: beyond 3% of 40, within 0.3 × the HK$5 step
        (38.5, (40.0, 3.75, "below")),  # exactly HK$1.50 from 40: the bound is inclusive
        (38.45, None),  # HK$1.55 from 40: just outside
        (36.9, None),
        (41.0, (40.0, 2.5, "above")),
        (40.0, (40.0, 0.0, "above")),
        (4.4, (4.5, 2.22, "below")),
        (4.25, None),  # mid-step between 4.0 and 4.5
        (98.76, (100.0, 1.24, "below")),
        (510.0, (500.0, 2.0, "above")),
        (520.0, None),
        (0.2, None),  # the level below is 0, the one above too far
    ],
)
def test_nearest_round_level(price: float, expected: tuple | None) -> None:
    found = nearest_round_level(price, PARAMS)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0], round(found[1], 2), found[2]) == expected


def test_near_pct_alone_would_miss_the_seed() -> None:
    pct_only = load_params({"insider_buy_near_round_number": {"near_step_fraction": 0.0}})
    assert nearest_round_level(38.58, pct_only) is None


def seed_summaries() -> pd.DataFrame:
    """The constructed DI summaries of 26 Nov 2025 (C1 substantial shareholders + C2 directors), parsed."""
    pages = [parse(fixture_bytes("hkex-di", f"DSM20251126C{n}.htm")) for n in (1, 2)]
    return pd.concat(pages, ignore_index=True)


def test_seed_lei_jun_just_under_40() -> None:
    ctx = context(day=date(2025, 11, 26), di=seed_summaries())
    alerts, notes = evaluate_insider_buy_near_round_number(ctx, PARAMS)
    assert notes == []
    alerts = sorted(alerts, key=lambda a: a.code)
    assert [(a.code, a.identity, a.trade_date, a.severity, a.why) for a in alerts] == [
        (
            "01810",
            "DA20251126E00187",
            date(2025, 11, 24),
            "warning",
            "Lei Jun (director) bought 2,600,000 shares at HK$38.58 on 2025-11-24, 3.6% below HK$40; "
            "stake now 23.26%",
        ),
        (
            "03690",
            "IS20251126E00012",
            date(2025, 11, 20),
            "notice",
            "Cheung Ka Wai (substantial shareholder) bought 31,000,000 shares at HK$98.76 on 2025-11-20, "
            "1.2% below HK$100; stake now 5.02%",
        ),
    ]
    lei = alerts[0]
    assert lei.name == "Xiaomi Corporation"
    assert lei.facts == (
        Fact("level", 40.0, "HKD"),
        Fact("distance", 3.55, "%"),
        Fact("side", "below", ""),
        Fact("step", 5.0, "HKD"),
        Fact("shares", 2_600_000, "shares"),
        Fact("avg_price", 38.58, "HKD"),
        Fact("holder", "Lei Jun", ""),
        Fact("role", "director", ""),
        Fact("pct_after", 23.26, "%"),
    )
    assert lei.links == ("https://di.hkex.com.hk/di/summary/DSM20251126C2.htm",)
    assert alerts[1].links == ("https://di.hkex.com.hk/di/summary/DSM20251126C1.htm",)
    assert lei.published_at == datetime(2025, 11, 26, 17, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def di_row(price: float | None = 38.58, **changes: Any) -> dict[str, Any]:
    base = {
        "serial": "DA20251127E00001",
        "filed_date": DAY,
        "event_date": date(2025, 11, 25),
        "code": "01810",
        "name": "Xiaomi Corporation",
        "holder": "Lei Jun",
        "role": "director",
        "event_code": "1101",
        "direction": "buy",
        "shares": 1_000_000,
        "avg_price": price,
        "currency": "HKD",
        "shares_after": 5_000_000,
        "pct_after": 1.5,
        "position": "L",
        "form": "3A",
    }
    return base | changes


CASES = [
    pytest.param(
        di_row(40.0),
        "Lei Jun (director) bought 1,000,000 shares at HK$40 on 2025-11-25, at HK$40; stake now 1.5%",
        id="exactly-on-level",
    ),
    pytest.param(
        di_row(41.0),
        "Lei Jun (director) bought 1,000,000 shares at HK$41 on 2025-11-25, 2.5% above HK$40; stake now 1.5%",
        id="above",
    ),
    pytest.param(
        di_row(4.4, pct_after=None),
        "Lei Jun (director) bought 1,000,000 shares at HK$4.4 on 2025-11-25, 2.2% below HK$4.5",
        id="fine-step-no-stake",
    ),
    pytest.param(
        di_row(41.0, currency="USD"),
        "Lei Jun (director) bought 1,000,000 shares at USD 41 on "
        "2025-11-25, 2.5% above USD 40; stake now 1.5%",
        id="usd",
    ),
    pytest.param(di_row(36.9), None, id="not-near"),
    pytest.param(di_row(direction="sell"), None, id="sale"),
    pytest.param(di_row(direction="other"), None, id="other-event"),
    pytest.param(di_row(position="S"), None, id="short-position"),
    pytest.param(di_row(None), None, id="no-price"),
    pytest.param(di_row(shares=0), None, id="zero-shares"),
    pytest.param(di_row(filed_date=date(2025, 11, 26)), None, id="filed-yesterday"),
]


@pytest.mark.parametrize(("row", "why"), CASES)
def test_table(row: dict[str, Any], why: str | None) -> None:
    alerts, _ = evaluate_insider_buy_near_round_number(context(di=frame("di", [row])), PARAMS)
    assert [a.why for a in alerts] == ([why] if why else [])
    assert all(a.identity == "DA20251127E00001" and a.severity == "warning" for a in alerts)


def test_substantial_shareholder_is_notice_and_codes_filter() -> None:
    rows = [
        di_row(41.0, role="substantial_shareholder", serial="CS20251127E00002"),
        di_row(41.0, code="00700", serial="DA20251127E00003"),
    ]
    ctx = context(di=frame("di", rows))
    alerts = sorted(evaluate_insider_buy_near_round_number(ctx, PARAMS)[0], key=lambda a: a.code)
    assert [(a.code, a.severity, a.identity) for a in alerts] == [
        ("00700", "warning", "DA20251127E00003"),
        ("01810", "notice", "CS20251127E00002"),
    ]
    only = evaluate_insider_buy_near_round_number(replace(ctx, codes=frozenset({"01810"})), PARAMS)[0]
    assert [a.code for a in only] == ["01810"]


@settings(max_examples=50, deadline=None)
@given(di=frames("di"), day=days())
def test_never_raises_on_random_frames(di: Any, day: date) -> None:
    for when in (day, DAY):
        alerts, _ = evaluate_insider_buy_near_round_number(context(day=when, di=di), PARAMS)
        assert all(a.rule == "insider_buy_near_round_number" for a in alerts)


@settings(max_examples=50, deadline=None)
@given(price=st.floats(allow_nan=True, allow_infinity=True))
def test_nearest_round_level_never_raises(price: float) -> None:
    found = nearest_round_level(price, PARAMS)
    assert found is None or (found[0] > 0 and found[2] in ("below", "above"))
