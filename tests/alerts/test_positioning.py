"""alerts.positioning on constructed frames: known numbers give exact figures; missing data gives None, never a crash."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from alerts import positioning as pos
from alerts.history import ALL_FEEDS
from alerts.sources import get_source
from alerts.sources.common import conform, empty_frame

CODE = "01810"
D0, D1 = date(2025, 11, 20), date(2025, 11, 21)


def _frame(feed: str, rows: list[dict[str, object]]) -> pd.DataFrame:
    source, table, _ = ALL_FEEDS[feed]
    schema = get_source(source).tables[table].schema
    if not rows:
        return empty_frame(schema)
    filled = [{col: _cell(r.get(col)) for col in schema} for r in rows]  # unnamed columns are missing (NA)
    return conform(pd.DataFrame(filled), schema)


def _cell(value: object) -> object:
    return pd.Timestamp(value) if isinstance(value, date) else value


def _frames(**feeds: list[dict[str, object]]) -> dict[str, pd.DataFrame]:
    return {name: _frame(name, feeds.get(name, [])) for name in ALL_FEEDS}


def _quote(
    day: date,
    *,
    close: float = 10.0,
    turnover: float | None = 1_000_000_000.0,
    short_value: float | None = 200_000_000.0,
    code: str = CODE,
) -> dict[str, object]:
    ratio = short_value / turnover if short_value is not None and turnover else None
    return {
        "date": day,
        "code": code,
        "name": "XIAOMI-W",
        "currency": "HKD",
        "close": close,
        "turnover": turnover,
        "short_value": short_value,
        "total_value": turnover,
        "short_ratio": ratio,
        "suspended": False,
        "non_hkd": False,
    }


def _south(day: date, shares: int, pct: float = 20.0, code: str = CODE) -> dict[str, object]:
    return {"date": day, "code": code, "name": "XIAOMI-W", "shares": shares, "pct_of_issued": pct}


def _buyback(
    trade: date,
    paid: float,
    *,
    shares: int = 1_000_000,
    low: float = 9.5,
    high: float = 10.5,
    ytd: int | None = None,
    pct: float | None = None,
) -> dict[str, object]:
    return {
        "report_date": trade + timedelta(days=1),
        "trade_date": trade,
        "code": CODE,
        "name": "XIAOMI-W",
        "shares": shares,
        "price_high": high,
        "price_low": low,
        "currency": "HKD",
        "total_paid": paid,
        "method": "Exchange",
        "ytd_shares": ytd,
        "pct_of_issued": pct,
    }


def test_flows_split_turnover_exactly() -> None:
    frames = _frames(
        quotes=[_quote(D0), _quote(D1)],
        southbound=[_south(D0, 50_000_000), _south(D1, 60_000_000)],
        buybacks=[_buyback(D1, 30_000_000.0), _buyback(D1, 20_000_000.0), _buyback(D0, 99.0)],
    )
    flows = pos.flows(frames, CODE, D1)
    assert (flows.turnover, flows.short_value, flows.close) == (1e9, 2e8, 10.0)
    assert (flows.southbound_shares_change, flows.southbound_base) == (10_000_000, D0)
    assert flows.southbound_net == 100_000_000.0  # 10,000,000 more shares × the close 10.0
    assert flows.buyback == 50_000_000.0  # both rows of the day, not the other day's
    assert flows.remainder == 650_000_000.0  # 1e9 − 2e8 − 1e8 − 5e7
    assert [
        flows.share(x) for x in (flows.short_value, flows.southbound_net, flows.buyback, flows.remainder)
    ] == [20.0, 10.0, 5.0, 65.0]


def test_flows_net_selling_counts_its_size_in_the_remainder() -> None:
    frames = _frames(
        quotes=[_quote(D1, close=8.0)], southbound=[_south(D0, 60_000_000), _south(D1, 50_000_000)]
    )
    flows = pos.flows(frames, CODE, D1)
    assert flows.southbound_net == -80_000_000.0
    assert flows.share(flows.southbound_net) == -8.0
    assert flows.remainder == 1e9 - 2e8 - 8e7 - 0.0


@pytest.mark.parametrize(
    "southbound",
    [
        pytest.param([], id="no-southbound-file"),
        pytest.param([_south(D0, 50_000_000)], id="no-row-on-the-day"),
        pytest.param(
            [_south(D0, 50_000_000, code="00700"), _south(D1, 60_000_000)], id="not-in-the-previous-file"
        ),
        pytest.param([_south(D1, 60_000_000)], id="no-previous-file"),
    ],
)
def test_flows_without_southbound_change_say_not_known(southbound: list[dict[str, object]]) -> None:
    flows = pos.flows(_frames(quotes=[_quote(D1)], southbound=southbound), CODE, D1)
    assert flows.southbound_net is None and flows.remainder is None
    assert flows.share(flows.southbound_net) is None
    assert flows.share(flows.short_value) == 20.0  # what is known is still given


def test_flows_without_turnover_or_quotes() -> None:
    no_turnover = pos.flows(
        _frames(
            quotes=[_quote(D1, turnover=None, short_value=None)], southbound=[_south(D0, 1), _south(D1, 2)]
        ),
        CODE,
        D1,
    )
    assert no_turnover.turnover is None and no_turnover.remainder is None
    assert no_turnover.share(no_turnover.southbound_net) is None and no_turnover.southbound_net == 10.0
    nothing = pos.flows(_frames(), CODE, D1)
    assert (nothing.close, nothing.turnover, nothing.southbound_net, nothing.remainder) == (
        None,
        None,
        None,
        None,
    )
    assert nothing.buyback == 0.0
    assert pos.flow_days(_frames(), CODE) == []
    assert pos.flow_days(_frames(quotes=[_quote(D1, turnover=None), _quote(D0)]), CODE) == [D0]


def test_short_figures_window_percentile_and_z() -> None:
    days = [D1 - timedelta(days=i) for i in range(61, 0, -1)] + [D1]
    ratios = [0.10] * 31 + [0.20] * 30 + [0.30]  # the oldest value falls out of the 60-session window
    quotes = [_quote(d, short_value=r * 1e9) for d, r in zip(days, ratios, strict=True)]
    figures = pos.short_figures(_frames(quotes=quotes), CODE)
    assert figures is not None
    window = np.array(ratios[-61:-1])
    assert (figures.day, figures.window) == (D1, 60)
    assert figures.ratio == pytest.approx(0.30)
    assert figures.percentile == 100.0
    assert figures.z == pytest.approx((0.30 - window.mean()) / window.std())  # population std, as the rule
    assert figures.z == pytest.approx(3.0)
    assert pos.short_figures(_frames(quotes=[_quote(D1)]), CODE) == pos.ShortFigures(
        D1, 0.2, 2e8, 1e9, 0, None, None
    )
    assert pos.short_figures(_frames(), CODE) is None


def test_sfc_position_as_pct_of_issued_from_southbound_else_buybacks() -> None:
    sfc = [
        {
            "date": D0 - timedelta(days=7),
            "code": CODE,
            "name": "X",
            "short_shares": 100,
            "short_value_hkd": 1e3,
        },
        {"date": D0, "code": CODE, "name": "X", "short_shares": 130, "short_value_hkd": 1.3e3},
    ]
    with_south = pos.sfc_figures(_frames(sfc=sfc, southbound=[_south(D0, 200, pct=20.0)]), CODE)
    assert with_south is not None
    assert with_south.pct_of_issued == pytest.approx(13.0)  # issued = 200 / 20% = 1,000
    assert with_south.change_pct == pytest.approx(30.0)
    assert with_south.previous_day == D0 - timedelta(days=7)
    issued = pos.issued_shares(_frames(buybacks=[_buyback(D0, 1.0, ytd=10, pct=0.5)]), CODE)
    assert issued == pos.IssuedShares(2000.0, "buybacks", D0)
    unknown = pos.sfc_figures(_frames(sfc=sfc[1:]), CODE)
    assert unknown is not None and unknown.pct_of_issued is None and unknown.change_pct is None
    assert pos.sfc_figures(_frames(), CODE) is None


def test_buybacks_dealings_southbound_price_and_session_short() -> None:
    sessions = [D0, D1]
    frames = _frames(
        buybacks=[
            _buyback(D0, 10.0, shares=3, low=9.0, high=10.0),
            _buyback(D1, 5.0, shares=2, low=8.5, high=9.9),
            _buyback(D0 - timedelta(days=1), 1000.0),
        ],
        di=[
            {
                "serial": "A",
                "filed_date": D1,
                "event_date": D0,
                "code": CODE,
                "name": "X",
                "holder": "Lei Jun",
                "role": "director",
                "direction": "buy",
                "shares": 100,
                "avg_price": 38.58,
                "currency": "HKD",
            },
            {
                "serial": "B",
                "filed_date": D0,
                "event_date": D0 - timedelta(days=61),
                "code": CODE,
                "name": "X",
                "holder": "Old",
                "role": "director",
                "direction": "sell",
                "shares": 1,
                "avg_price": 1.0,
                "currency": "HKD",
            },
        ],
        southbound=[_south(D0 - timedelta(days=i), 1, pct=10.0 + (6 - i) / 10) for i in range(6, -1, -1)],
        quotes=[_quote(D1, close=38.76)],
        short=[
            {
                "date": D1,
                "code": CODE,
                "name": "X",
                "currency": "HKD",
                "short_shares": 1,
                "short_value": 4e8,
                "board": "main",
                "session": "morning",
                "non_hkd": False,
            },
            {
                "date": D1,
                "code": CODE,
                "name": "X",
                "currency": "HKD",
                "short_shares": 2,
                "short_value": 1e9,
                "board": "main",
                "session": "close",
                "non_hkd": False,
            },
        ],
    )
    bought = pos.buyback_figures(frames, CODE, sessions)
    assert bought == pos.BuybackFigures(D0, 2, 5.0, 15.0, "HKD", 8.5, 10.0, D1, D1 + timedelta(days=1))
    assert pos.buyback_figures(frames, CODE, [D1 + timedelta(days=1)]) is None
    assert [d.holder for d in pos.dealings(frames, CODE, D1)] == ["Lei Jun"]
    south = pos.southbound_figures(frames, CODE)
    assert south is not None and south.pct == pytest.approx(10.6)
    assert south.change_pp == pytest.approx(0.5) and south.since == D0 - timedelta(days=5)
    assert pos.price_figures(frames, CODE) == pos.PriceFigures(D1, 38.76, "HKD", 35.0, 40.0)
    assert pos.session_short(frames, CODE) == pos.SessionShort(D1, 4e8, 1e9)
    close_only = _frames(short=[frames["short"].iloc[1].to_dict()])
    assert pos.session_short(close_only, CODE) == pos.SessionShort(D1, None, 1e9)
    for empty in (pos.southbound_figures, pos.price_figures, pos.session_short):
        assert empty(_frames(), CODE) is None


def _short_row(day: date, session: str, value: float, board: str = "main") -> dict[str, object]:
    return {
        "date": day,
        "code": CODE,
        "name": "X",
        "currency": "HKD",
        "short_shares": 1,
        "short_value": value,
        "board": board,
        "session": session,
        "non_hkd": False,
    }


def test_session_short_reads_the_midday_feed_and_the_close_feed() -> None:
    midday = [
        _short_row(D0, "morning", 3e8),
        _short_row(D1, "morning", 4e8),
        _short_row(D1, "morning", 5e6, "gem"),
    ]
    close = [_short_row(D0, "close", 9e8), _short_row(D1, "close", 1.1e9)]
    assert pos.session_short(_frames(short_midday=midday, short=close), CODE) == pos.SessionShort(
        D1, 4.05e8, 1.1e9
    )
    # 12:30 on D1: the day's midday page is out, its close is not yet — the card shows the midday figure alone.
    assert pos.session_short(_frames(short_midday=midday, short=close[:1]), CODE) == pos.SessionShort(
        D1, 4.05e8, None
    )
    # Only the close feed (no midday source stored): close alone; only the midday feed: midday alone.
    assert pos.session_short(_frames(short=close), CODE) == pos.SessionShort(D1, None, 1.1e9)
    assert pos.session_short(_frames(short_midday=midday[:1]), CODE) == pos.SessionShort(D0, 3e8, None)
    # A midday page found in both feeds counts once.
    both = _frames(short_midday=midday[:2], short=[*close, _short_row(D1, "morning", 4e8)])
    assert pos.session_short(both, CODE) == pos.SessionShort(D1, 4e8, 1.1e9)
    other = _frames(short_midday=[{**midday[1], "code": "00700"}], short=close)
    assert pos.session_short(other, CODE) == pos.SessionShort(D1, None, 1.1e9)
