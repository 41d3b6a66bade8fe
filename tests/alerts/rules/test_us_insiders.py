"""US insider rules: only open-market purchases count; round levels in USD; clusters fire once per new buy."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import load_params
from alerts.rules.us_insiders import ClusterParams, buys, evaluate_insider_cluster, evaluate_us_round_number

COLUMNS = [
    "ticker",
    "issuer_cik",
    "owner_name",
    "is_director",
    "is_officer",
    "officer_title",
    "transaction_date",
    "code",
    "shares",
    "price",
    "acquired_disposed",
    "shares_after",
    "direct_indirect",
    "accession",
    "form_type",
    "issuer_name",
    "owner_cik",
    "is_ten_percent_owner",
    "owners",
    "is_10b5_1",
    "security_title",
    "period_of_report",
    "footnotes",
]


def row(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        ticker="ACME",
        issuer_cik="123",
        owner_name="Jane Roe",
        is_director=True,
        is_officer=False,
        officer_title=pd.NA,
        transaction_date=pd.Timestamp("2025-11-24"),
        code="P",
        shares=10_000.0,
        price=38.58,
        acquired_disposed="A",
        shares_after=50_000.0,
        direct_indirect="D",
        accession="0000000000-25-000001",
        form_type="4",
        issuer_name="Acme Corp",
        owner_cik="999",
        is_ten_percent_owner=False,
        owners="Jane Roe",
        is_10b5_1=pd.NA,
        security_title="Common Stock",
        period_of_report=pd.Timestamp("2025-11-24"),
        footnotes="",
    )
    base.update(kw)
    return base


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    out = pd.DataFrame(list(rows), columns=COLUMNS)
    out["is_10b5_1"] = out["is_10b5_1"].astype("boolean")
    return out


PARAMS = load_params()


@pytest.mark.parametrize(
    ("changes", "fires"),
    [
        ({}, True),  # $38.58 just under $40 (step 5)
        ({"code": "S", "acquired_disposed": "D"}, False),  # a sale
        ({"code": "A"}, False),  # an award is not a buy
        ({"code": "M"}, False),  # option exercise
        ({"is_10b5_1": True}, False),  # plan trade
        ({"price": float("nan")}, False),  # price only in a footnote
        ({"price": 43.0}, False),  # nowhere near a round level
        ({"price": 99.6}, True),  # just under $100
    ],
)
def test_round_number_table(changes: dict[str, object], fires: bool) -> None:
    alerts = evaluate_us_round_number(frame(row(**changes)), PARAMS)
    assert bool(alerts) is fires
    if fires:
        (alert,) = alerts
        assert alert.market == "US" and alert.code == "ACME" and alert.rule == "insider_buy_near_round_number"
        assert "code P" in alert.why and "$" in alert.why
        assert alert.severity == "warning"


def test_seed_like_case_reports_level_and_side() -> None:
    (alert,) = evaluate_us_round_number(frame(row()), PARAMS)
    assert "$38.58" in alert.why and "below $40" in alert.why
    assert alert.fact("level").value == 40.0  # type: ignore[union-attr]


def test_cluster_needs_two_insiders_and_the_amount_and_a_new_buy() -> None:
    cluster = ClusterParams(days=10, min_insiders=2, min_total_usd=100_000)
    jane = row(owner_name="Jane Roe", shares=2_000.0, price=40.0, transaction_date=pd.Timestamp("2025-11-20"))
    john = row(
        owner_name="John Doe",
        shares=1_000.0,
        price=41.0,
        transaction_date=pd.Timestamp("2025-11-24"),
        accession="0000000000-25-000002",
    )
    history = frame(jane, john)
    (alert,) = evaluate_insider_cluster(history, frame(john), date(2025, 11, 24), cluster)
    assert alert.rule == "insider_cluster" and alert.identity == "Jane Roe+John Doe"
    assert "2 insiders bought $121,000 of ACME" in alert.why
    # The next day nothing new was filed: the standing cluster is not repeated.
    assert evaluate_insider_cluster(history, frame(), date(2025, 11, 25), cluster) == []
    # One insider twice is not a cluster; too little money is not either.
    assert (
        evaluate_insider_cluster(
            frame(jane, row(owner_name="Jane Roe")), frame(jane), date(2025, 11, 24), cluster
        )
        == []
    )
    small = ClusterParams(min_total_usd=10_000_000)
    assert evaluate_insider_cluster(history, frame(john), date(2025, 11, 24), small) == []
    # Outside the window the first buy no longer counts.
    assert evaluate_insider_cluster(history, frame(john), date(2025, 12, 5), cluster) == []


def test_plan_trades_and_sales_never_make_a_cluster() -> None:
    plan = row(owner_name="Jane Roe", is_10b5_1=True, shares=100_000.0)
    sale = row(owner_name="John Doe", code="S", acquired_disposed="D", shares=100_000.0)
    assert buys(frame(plan, sale)).empty
    assert (
        evaluate_insider_cluster(frame(plan, sale), frame(plan, sale), date(2025, 11, 24), ClusterParams())
        == []
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "code": st.sampled_from(["P", "S", "A", "M", "F", "G", ""]),
                "acquired_disposed": st.sampled_from(["A", "D", None]),
                "shares": st.one_of(
                    st.none(), st.just(float("nan")), st.floats(min_value=-1e9, max_value=1e9)
                ),
                "price": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "owner_name": st.text(max_size=10),
                "is_10b5_1": st.sampled_from([True, False, pd.NA]),
            }
        ),
        max_size=20,
    )
)
def test_never_raises(rows: list[dict[str, object]]) -> None:
    data = frame(*(row(**r) for r in rows))
    evaluate_us_round_number(data, PARAMS)
    evaluate_insider_cluster(data, data, date(2025, 11, 24), ClusterParams())
