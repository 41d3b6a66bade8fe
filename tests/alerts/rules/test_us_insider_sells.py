"""insider_sell_cluster: 3+ insiders selling within 5 XNYS sessions for US$1m, 10b5-1 plan sales listed apart."""

from __future__ import annotations

import zlib
from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import load_params
from alerts.rules.context import RuleContext
from alerts.rules.us_insider_sells import (
    SPEC,
    SellClusterParams,
    evaluate_insider_sell_cluster,
    sales,
)
from alerts.sources import sec_form4
from tests.alerts.rules.frames import context
from tests.alerts.rules.test_us_insiders import frame, row
from tests.support.paths import FIXTURES

DAY = date(2025, 11, 24)  # a Monday: the 5 sessions are Nov 18, 19, 20, 21 and 24
PARAMS = SellClusterParams()


def sale(owner: str, when: str, usd: float = 400_000.0, **kw: object) -> dict[str, object]:
    """An open-market sale of `usd` at $40 a share by `owner` (its own CIK and accession)."""
    cik = str(zlib.crc32(owner.encode()) % 10_000_000)
    base: dict[str, object] = dict(
        owner_name=owner,
        owner_cik=cik,
        code="S",
        acquired_disposed="D",
        shares=usd / 40.0,
        price=40.0,
        transaction_date=pd.Timestamp(when),
        accession=f"0000000000-25-{cik[:6]:0>6}",
        is_10b5_1=False,
    )
    base.update(kw)
    return row(**base)


ANN, BOB = sale("Ann Lee", "2025-11-18"), sale("Bob Roe", "2025-11-20")
CAT = sale("Cat Poe", "2025-11-24")
PLAN = sale("Dan Moe", "2025-11-21", 3_100_000.0, is_10b5_1=True)


@pytest.mark.parametrize(
    ("history", "today", "fires"),
    [
        ([ANN, BOB], [CAT], True),  # three insiders, $1.2m, Cat's sale filed today
        ([ANN], [CAT], False),  # two insiders only
        ([ANN, BOB], [sale("Cat Poe", "2025-11-24", 100_000.0)], False),  # $900k < $1m
        ([sale("Ann Lee", "2025-11-17"), BOB], [CAT], False),  # Ann sold 6 sessions back: outside the window
        (
            [ANN, BOB],
            [sale("Cat Poe", "2025-11-24", is_10b5_1=True)],
            False,
        ),  # today's only sale is a plan sale
        ([ANN, BOB, CAT], [], False),  # nothing new filed today: a standing cluster is not repeated
        ([ANN, BOB], [sale("Bob Roe", "2025-11-24")], False),  # the same insider twice is not a third
        (
            [ANN, BOB],
            [row(owner_name="Cat Poe", owner_cik="77", shares=10_000.0, price=40.0)],
            False,
        ),  # a buy
        ([ANN, BOB], [sale("Cat Poe", "2025-11-24", code="F")], False),  # tax withholding, not a sale
        ([ANN, BOB, PLAN], [CAT], True),  # fires; the plan sale is reported apart, not counted
        ([ANN, BOB], [sale("Cat Poe", "2025-11-24", is_10b5_1=pd.NA)], True),  # no flag (old schema): counted
    ],
)
def test_sell_cluster_table(
    history: list[dict[str, object]], today: list[dict[str, object]], fires: bool
) -> None:
    alerts = evaluate_insider_sell_cluster(frame(*history, *today), frame(*today), DAY, PARAMS)
    assert bool(alerts) is fires
    if fires:
        (alert,) = alerts
        assert alert.rule == "insider_sell_cluster" and alert.market == "US" and alert.code == "ACME"
        assert alert.identity == "Ann Lee+Bob Roe+Cat Poe"
        assert alert.trade_date == DAY
        assert SPEC.kinds[0].direction(alert) == -1


def test_plan_sales_are_reported_apart_and_not_counted() -> None:
    (alert,) = evaluate_insider_sell_cluster(frame(ANN, BOB, PLAN, CAT), frame(CAT), DAY, PARAMS)
    assert alert.fact("insiders").value == 3  # type: ignore[union-attr]
    assert alert.fact("total").value == 1_200_000.0  # type: ignore[union-attr]
    assert alert.fact("plan_sales").value == 1  # type: ignore[union-attr]
    assert alert.fact("plan_total").value == 3_100_000.0  # type: ignore[union-attr]
    assert "3 insiders sold $1,200,000 of ACME in 5 sessions: Ann Lee, Bob Roe, Cat Poe" in alert.why
    assert alert.why.endswith("; plus 1 plan sale for $3,100,000, not counted")
    # Without plan sales the sentence says nothing about them.
    (plain,) = evaluate_insider_sell_cluster(frame(ANN, BOB, CAT), frame(CAT), DAY, PARAMS)
    assert "plan" not in plain.why and plain.fact("plan_sales").value == 0  # type: ignore[union-attr]


def test_the_real_layout_plan_sale_is_listed_apart() -> None:
    # form4_10b5_1_sale.xml: a code-S sale flagged aff10b5One (120,000 SCWO at $0.2875 on 2025-06-02).
    filed = sec_form4.parse((FIXTURES / "sec-form4" / "form4_10b5_1_sale.xml").read_bytes())
    assert filed["is_10b5_1"].tolist() == [True] and len(sales(filed)) == 1
    day = date(2025, 6, 3)
    others = [
        sale(name, when, ticker="SCWO", issuer_cik="933972")
        for name, when in (("Ann Lee", "2025-05-28"), ("Bob Roe", "2025-06-02"), ("Cat Poe", "2025-06-03"))
    ]
    history = pd.concat([frame(*others), filed], ignore_index=True)
    (alert,) = evaluate_insider_sell_cluster(history, frame(others[-1]), day, PARAMS)
    assert alert.code == "SCWO" and alert.fact("plan_sales").value == 1  # type: ignore[union-attr]
    assert alert.fact("plan_total").value == pytest.approx(120_000 * 0.2875)  # type: ignore[union-attr]
    # The plan sale alone, filed today, adds nothing to count: no alert.
    assert evaluate_insider_sell_cluster(history, filed, date(2025, 6, 2), PARAMS) == []


def test_more_insiders_is_a_warning_and_the_thresholds_come_from_rules_toml() -> None:
    eve = sale("Eve Doe", "2025-11-21")
    (alert,) = evaluate_insider_sell_cluster(frame(ANN, BOB, eve, CAT), frame(CAT), DAY, PARAMS)
    assert alert.severity == "warning" and alert.fact("insiders").value == 4  # type: ignore[union-attr]
    (three,) = evaluate_insider_sell_cluster(frame(ANN, BOB, CAT), frame(CAT), DAY, PARAMS)
    assert three.severity == "notice"
    assert load_params().get("insider_sell_cluster", SellClusterParams) == SellClusterParams(
        5, 3, 1_000_000.0
    )


def test_signal_reads_the_form4_feeds_and_keeps_only_asked_codes() -> None:
    feeds = {"form4": frame(ANN, BOB, CAT), "form4_day": frame(CAT)}
    ctx: RuleContext = context(DAY, feeds=feeds)
    assert SPEC.signal is not None
    alerts, _ = SPEC.signal(ctx, load_params())
    assert [a.code for a in alerts] == ["ACME"]
    alerts, _ = SPEC.signal(context(DAY, feeds=feeds, codes=frozenset({"OTHER"})), load_params())
    assert alerts == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "code": st.sampled_from(["P", "S", "A", "F", ""]),
                "acquired_disposed": st.sampled_from(["A", "D", None]),
                "shares": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "price": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "owner_name": st.text(max_size=6),
                "owner_cik": st.one_of(st.none(), st.text(alphabet="0123456789", max_size=4)),
                "ticker": st.sampled_from(["ACME", "SCWO", None]),
                "is_10b5_1": st.sampled_from([True, False, pd.NA]),
                "transaction_date": st.sampled_from(
                    [pd.Timestamp("2025-11-18"), pd.Timestamp("2025-11-24"), pd.NaT]
                ),
            }
        ),
        max_size=15,
    ),
    st.integers(min_value=0, max_value=15),
)
def test_never_raises(rows: list[dict[str, object]], split: int) -> None:
    data = frame(*(row(**r) for r in rows))
    evaluate_insider_sell_cluster(data, data.iloc[:split], DAY, PARAMS)
