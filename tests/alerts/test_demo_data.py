"""The bundled demo data (alerts/demo_data): layout, every file parseable, the public figures exact, the planned
signals present and nothing else extreme, and the generator reproducing the committed bytes."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alerts.calendar import is_week_end_session, sessions_between
from alerts.localdata import local_path
from alerts.sources import get_source
from tests.support.paths import ROOT as _ROOT

REPO = _ROOT
ROOT = REPO / "alerts" / "demo_data"
SCRIPT = REPO / "scripts" / "build_demo_data.py"
DEMO = sessions_between(date(2025, 11, 17), date(2025, 11, 28))
WARMUP = sessions_between(date(2025, 8, 1), date(2025, 11, 28))
QUOTES = sessions_between(date(2025, 8, 1), date(2025, 12, 31))
# Per source: the dates that must have files.
DATES: dict[str, list[date]] = {
    "hkex-quotes": QUOTES,
    "hkex-short": DEMO,
    "hkex-short-midday": DEMO,
    "hkex-buybacks": DEMO,
    "hkex-di": DEMO,
    "sfc-short-positions": [day for day in WARMUP if is_week_end_session(day)],
    "hkex-southbound": WARMUP,
    # The 66 sessions before the demo (southbound_net_flow compares with 60 earlier top-10 days) and the demo.
    "hkex-stock-connect-daily": sessions_between(date(2025, 8, 12), date(2025, 11, 28)),
    "hkex-shortable-list": [date(2025, 9, 8), date(2025, 11, 24)],  # the revisions' effective dates
}
EXPECTED = [
    (source, day, local_path(ROOT, source, day, url_path))
    for source, days in DATES.items()
    for day in days
    for url_path in get_source(source).paths(day)
]
CONNECT_CLOSED = {("hkex-stock-connect-daily", date(2025, 10, d)) for d in (2, 3, 6, 8)}  # National Day
HKD_STOCKS = ("00001", "00005", "00016", "00388", "00700", "00941", "01810", "02318", "03690", "09988")


@cache
def parsed(source: str, path: Path) -> dict[str, pd.DataFrame]:
    """All tables of one demo file (parsed once per test session)."""
    return get_source(source).parse_all(path.read_bytes())


def tables(source: str, table: str = "main", days: list[date] | None = None) -> pd.DataFrame:
    """One table of a source over its demo files (optionally only some dates), concatenated."""
    frames = [
        parsed(s, path)[table] for s, day, path in EXPECTED if s == source and (days is None or day in days)
    ]
    return pd.concat(frames, ignore_index=True)


def file_of(source: str, day: date, index: int = 0) -> Path:
    """The demo path of a source's `index`-th file for a day."""
    return local_path(ROOT, source, day, get_source(source).paths(day)[index])


def ratio(code: str, day: date) -> float:
    """A stock's short ratio (0..1) on a day, from its quotations file."""
    quotes = parsed("hkex-quotes", file_of("hkex-quotes", day))["main"]
    return float(quotes.loc[quotes["code"] == code, "short_ratio"].iloc[0])


def trailing(code: str, day: date, window: int = 60) -> np.ndarray:
    """The stock's ratios over the `window` sessions before `day`."""
    before = [s for s in QUOTES if s < day][-window:]
    return np.array([ratio(code, s) for s in before])


# --------------------------------------------------------------------------------------------- layout


def test_local_path_rule() -> None:
    day = date(2025, 11, 20)
    assert local_path(ROOT, "hkex-quotes", day, "/eng/stat/smstat/dayquot/d251120e.htm") == (
        ROOT / "eng/stat/smstat/dayquot/d251120e.htm"
    )
    assert local_path(ROOT, "hkex-southbound", day, "/sdw/search/mutualmarket.aspx?t=hk") == (
        ROOT / "by-date/2025-11-20/sdw/search/mutualmarket.aspx@t=hk"
    )
    assert local_path(ROOT, "hkex-short", day, "/eng/stat/smstat/ssturnover/ncms/ASHTMAIN.HTM") == (
        ROOT / "by-date/2025-11-20/eng/stat/smstat/ssturnover/ncms/ASHTMAIN.HTM"
    )
    sfc = get_source("sfc-short-positions").paths(date(2025, 11, 21))[0]
    assert local_path(ROOT, "sfc-short-positions", date(2025, 11, 21), sfc) == (
        ROOT / "-/media/EN/pdf/spr/2025/11/21/Short_Position_Reporting_Aggregated_Data_20251121.csv"
    )


def test_exactly_the_expected_files_exist() -> None:
    on_disk = {path for path in ROOT.rglob("*") if path.is_file() and path.name != "README.md"}
    expected = {path for _, _, path in EXPECTED}
    assert sorted(expected - on_disk) == []
    assert sorted(on_disk - expected) == []
    assert len(expected) == 104 + 2 * 10 + 2 * 10 + 10 + 2 * 10 + 18 + 83 + 76 + 2


def test_quotes_for_every_session_of_the_range() -> None:
    assert len(QUOTES) == 104
    assert QUOTES[0] == date(2025, 8, 1)
    assert QUOTES[-1] == date(2025, 12, 31)
    assert all(file_of("hkex-quotes", day).is_file() for day in QUOTES)


def test_total_size_is_small() -> None:
    # The quotes files of the 30 sessions the short-ratio rules need list the whole market (filler rows), so
    # every file's rows add up to its own totals; about 2 MB once zipped into the wheel. The Stock Connect daily
    # files (76 sessions: the 60-day window of southbound_net_flow and the demo, ~10 kB each in the real file's
    # indented JSON) add ~0.8 MB: the limit was 10.5 MB before them.
    assert sum(path.stat().st_size for path in ROOT.rglob("*") if path.is_file()) < 11_000_000


@pytest.mark.parametrize(
    ("source", "day", "path"), EXPECTED, ids=[str(p.relative_to(ROOT)) for *_, p in EXPECTED]
)
def test_every_file_parses_and_carries_its_date(source: str, day: date, path: Path) -> None:
    result = parsed(source, path)
    for name, frame in result.items():
        assert frame.attrs["file_date"] == day, name
        assert {col: str(dtype) for col, dtype in frame.dtypes.items()} == dict(
            get_source(source).tables[name].schema
        )
    # Quiet days are valid reports without rows for buybacks and DI; Stock Connect closed on a HK session too.
    if source not in ("hkex-buybacks", "hkex-di") and (source, day) not in CONNECT_CLOSED:
        assert len(result["main"]) > 0


# --------------------------------------------------------------------------------------------- public figures


@pytest.mark.parametrize(
    ("code", "day", "percent"),
    [
        ("09988", date(2025, 11, 20), 21.97),
        ("09988", date(2025, 11, 27), 16.86),
        ("00700", date(2025, 11, 21), 17.57),
        ("00700", date(2025, 11, 27), 9.90),
    ],
)
def test_public_short_ratios(code: str, day: date, percent: float) -> None:
    assert round(ratio(code, day) * 100, 2) == percent


@pytest.mark.parametrize(
    ("day", "stocks", "billions"),
    [
        (date(2025, 11, 20), 840, 58_805),
        (date(2025, 11, 27), 795, 36_639),
    ],
)
def test_public_market_totals(day: date, stocks: int, billions: int) -> None:
    for source in ("hkex-quotes", "hkex-short"):
        market = parsed(source, file_of(source, day))["market"].iloc[0]
        assert (market["board"], market["session"]) == ("main", "close")
        assert market["stocks_shorted"] == stocks
        assert int(market["short_value"]) // 1_000_000 == billions


def test_xiaomi_prices_late_november() -> None:
    quotes = tables("hkex-quotes", days=DEMO)
    xiaomi = quotes[quotes["code"] == "01810"].set_index("date")
    assert xiaomi["close"].between(37.5, 41.5).all()
    assert xiaomi.loc[pd.Timestamp("2025-11-24"), "close"] == 38.90
    day = xiaomi.loc[pd.Timestamp("2025-11-24")]
    assert day["low"] <= 38.58 <= day["high"]  # Lei Jun's average price lies inside the day's range


def test_xiaomi_buybacks() -> None:
    first = parsed("hkex-buybacks", file_of("hkex-buybacks", date(2025, 11, 21)))["main"]
    second = parsed("hkex-buybacks", file_of("hkex-buybacks", date(2025, 11, 24)))["main"]
    rows = pd.concat([first, second], ignore_index=True)
    assert list(rows["code"]) == ["01810", "01810"]
    assert list(rows["trade_date"]) == [pd.Timestamp("2025-11-20"), pd.Timestamp("2025-11-21")]
    assert list(rows["shares"]) == [10_400_000, 11_100_000]
    assert rows["shares"].sum() == 21_500_000
    assert rows["total_paid"].sum() > 800_000_000
    assert (rows.loc[0, "price_high"], rows.loc[0, "price_low"]) == (39.30, 38.40)
    assert list(rows["ytd_shares"]) == [10_400_000, 21_500_000]
    assert set(rows["currency"]) == {"HKD"}
    quotes = tables("hkex-quotes", days=[date(2025, 11, 20), date(2025, 11, 21)])
    for _, row in rows.iterrows():  # each day's prices sit inside that day's trading range
        day = quotes[(quotes["code"] == "01810") & (quotes["date"] == row["trade_date"])].iloc[0]
        assert day["low"] <= row["price_low"] <= row["price_high"] <= day["high"]
        assert row["price_low"] <= row["total_paid"] / row["shares"] <= row["price_high"]


def test_buyback_reports_cover_every_session_and_some_are_empty() -> None:
    counts = {day: len(parsed("hkex-buybacks", file_of("hkex-buybacks", day))["main"]) for day in DEMO}
    assert counts[date(2025, 11, 17)] == 0
    assert counts[date(2025, 11, 19)] == 2  # HSBC in London + Tencent
    hsbc = parsed("hkex-buybacks", file_of("hkex-buybacks", date(2025, 11, 19)))["main"].iloc[0]
    assert (hsbc["code"], hsbc["method"]) == ("00005", "London Stock Exchange")
    buybacks = tables("hkex-buybacks")
    assert sorted(set(buybacks["code"])) == ["00005", "00700", "01810"]


def test_lei_jun_purchase() -> None:
    di = parsed("hkex-di", file_of("hkex-di", date(2025, 11, 26), 1))["main"]
    assert len(di) == 1
    row = di.iloc[0]
    assert (row["code"], row["holder"], row["role"], row["form"]) == ("01810", "Lei Jun", "director", "3A")
    assert (row["event_code"], row["direction"], row["position"]) == ("1101", "buy", "L")
    assert row["event_date"] == pd.Timestamp("2025-11-24")
    assert row["filed_date"] == pd.Timestamp("2025-11-26")
    assert row["shares"] == 2_600_000
    assert (row["avg_price"], row["currency"]) == (38.58, "HKD")
    assert row["pct_after"] == 23.26
    assert row["shares_after"] - row["shares_before"] == 2_600_000


def test_other_di_filings_are_not_purchases() -> None:
    di = tables("hkex-di")
    assert len(di) == 3
    others = di[di["holder"] != "Lei Jun"]
    assert sorted(others["code"]) == ["00005", "00016"]
    assert set(others["direction"]) == {"sell"}


# --------------------------------------------------------------------------------------------- planned signals


def test_xiaomi_short_ratio_spike_on_19_november() -> None:
    day = date(2025, 11, 19)
    history = trailing("01810", day)
    assert round(ratio("01810", day) * 100, 1) == 34.4
    assert ratio("01810", day) > history.max()
    assert (ratio("01810", day) - history.mean()) / history.std() > 3


@pytest.mark.parametrize("code", ["00700", "09988"])
def test_27_november_is_the_lowest_of_60_sessions(code: str) -> None:
    day = date(2025, 11, 27)
    history = trailing(code, day)
    assert len(history) == 60
    assert ratio(code, day) < history.min()
    assert (ratio(code, day) - history.mean()) / history.std() <= -2
    assert history.min() - ratio(code, day) > 0.01  # a clear margin: more than a percentage point


def test_no_other_extreme_short_ratio_in_the_demo() -> None:
    planned = {("01810", date(2025, 11, 19)), ("00700", date(2025, 11, 27)), ("09988", date(2025, 11, 27))}
    for code in HKD_STOCKS:
        for day in DEMO:
            if (code, day) in planned:
                continue
            history = trailing(code, day)
            z = (ratio(code, day) - history.mean()) / max(history.std(), 0.005)
            assert abs(z) < 2, (code, day, z)


def test_market_swing_only_on_27_november() -> None:
    market = tables("hkex-quotes", "market").set_index("date")["short_value"]
    for day in DEMO:
        before = [s for s in QUOTES if s < day]
        week = market[pd.Timestamp(before[-5])]
        mean = market[[pd.Timestamp(s) for s in before[-5:]]].mean()
        today = market[pd.Timestamp(day)]
        swing = max(abs(today / week - 1), abs(today / mean - 1))
        assert (swing >= 0.25) == (day == date(2025, 11, 27)), (day, swing)


def test_southbound_xiaomi_crosses_20_percent_on_25_november() -> None:
    southbound = tables("hkex-southbound")
    xiaomi = southbound[southbound["code"] == "01810"].set_index("date")["pct_of_issued"]
    before = xiaomi[xiaomi.index < pd.Timestamp("2025-11-25")]
    assert (before < 20).all()
    assert before[before.index >= pd.Timestamp("2025-11-17")].between(19.6, 19.9).all()
    after = xiaomi[xiaomi.index >= pd.Timestamp("2025-11-25")]
    assert (after >= 20).all()
    assert len(after) == 4


def test_southbound_nothing_else_moves() -> None:
    southbound = tables("hkex-southbound")
    pct = southbound.pivot_table(index="date", columns="code", values="pct_of_issued").sort_index()
    assert len(pct) == len(WARMUP)
    demo = pct.loc[pd.Timestamp(DEMO[0]) :]
    levels = np.floor(demo.drop(columns="01810") / 5)
    assert (levels.nunique() == 1).all()  # never crosses a multiple of 5
    moves = (pct - pct.shift(5)).loc[pd.Timestamp(DEMO[0]) :].abs()
    assert (moves < 2).all().all()


def test_sfc_positions() -> None:
    sfc = tables("sfc-short-positions")
    shares = sfc.pivot_table(index="date", columns="code", values="short_shares").sort_index()
    assert shares.loc[pd.Timestamp("2025-11-21"), "80016"] == 0
    change = shares.drop(columns="80016").pct_change().iloc[1:]
    jump = change.loc[pd.Timestamp("2025-11-21"), "01810"]
    assert round(jump * 100, 1) == 30.0
    change.loc[pd.Timestamp("2025-11-21"), "01810"] = 0
    assert (change.abs() < 0.10).all().all()
    for day in ("2025-11-21", "2025-11-28"):  # no 12-week high besides the planned jump
        earlier = shares[shares.index < pd.Timestamp(day)].tail(11).max()
        highs = shares.loc[pd.Timestamp(day)].drop("80016") > earlier.drop("80016")
        assert sorted(highs[highs].index) == (["01810"] if day == "2025-11-21" else [])


def test_short_pages_agree_with_quotations() -> None:
    for day in DEMO:
        quotes = parsed("hkex-quotes", file_of("hkex-quotes", day))
        main = parsed("hkex-short", file_of("hkex-short", day, 0))
        gem = parsed("hkex-short", file_of("hkex-short", day, 1))
        shorted = quotes["main"].dropna(subset=["short_value"])
        assert list(main["main"]["code"]) == list(shorted["code"])
        assert list(main["main"]["short_value"]) == list(shorted["short_value"])
        assert list(main["main"]["short_shares"]) == list(shorted["short_shares"])
        columns = ["stocks_shorted", "short_shares", "short_value", "market_turnover", "short_pct"]
        assert main["market"][columns].equals(quotes["market"][columns])
        assert set(gem["main"]["board"]) == {"gem"}
        assert 1 <= len(gem["main"]) <= 2
        assert gem["market"]["short_value"].iloc[0] == gem["main"]["short_value"].sum()


def test_midday_pages_are_a_part_of_the_close_pages() -> None:
    for day in DEMO:
        for board in (0, 1):
            close = parsed("hkex-short", file_of("hkex-short", day, board))
            midday = parsed("hkex-short-midday", file_of("hkex-short-midday", day, board))
            assert set(midday["main"]["session"]) == {"morning"} and set(close["main"]["session"]) == {
                "close"
            }
            assert list(midday["main"]["code"]) == list(close["main"]["code"])  # the same stocks
            for column in ("short_value", "short_shares"):
                before, after = midday["main"][column].to_numpy(), close["main"][column].to_numpy()
                assert (before > 0).all() and (before < after).all(), (day, board, column)
            for column in ("stocks_shorted", "short_shares", "short_value", "market_turnover"):
                before, after = midday["market"][column].iloc[0], close["market"][column].iloc[0]
                assert 0 < before <= after and (before < after or column == "stocks_shorted"), (
                    day,
                    board,
                    column,
                )
            if board == 1:
                assert midday["market"]["short_value"].iloc[0] == midday["main"]["short_value"].sum()


# --------------------------------------------------------------------------------------------- generator


def test_generator_reproduces_the_committed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xlwt", reason="the generator writes .xls with xlwt (not a project dependency)")
    spec = importlib.util.spec_from_file_location("build_demo_data", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    written = module.build(tmp_path)
    assert len(written) == len(EXPECTED)
    for _, _, path in EXPECTED:
        rebuilt = tmp_path / path.relative_to(ROOT)
        assert rebuilt.read_bytes() == path.read_bytes(), path.relative_to(ROOT)


def southbound_flows() -> pd.DataFrame:
    """Per stock and file date: buy, sell and net (HK$) of the southbound top 10s, both channels summed."""
    rows = tables("hkex-stock-connect-daily")
    return rows.groupby(["date", "code"])[["buy_hkd", "sell_hkd", "net_hkd"]].sum().reset_index()


def test_stock_connect_days_closed_for_the_national_day_holiday_have_no_rows() -> None:
    dates = set(tables("hkex-stock-connect-daily")["date"].dt.date)
    closed = [day for _, day in CONNECT_CLOSED]
    assert not dates & set(closed)
    assert len(dates) == 76 - len(closed)


def test_stock_connect_top10s_are_the_demo_stocks_and_the_public_nets() -> None:
    rows = tables("hkex-stock-connect-daily")
    assert set(rows["code"]) == set(HKD_STOCKS)
    assert rows.groupby(["date", "channel"]).size().eq(10).all()
    flows = southbound_flows().set_index(["code", "date"])["net_hkd"]
    assert flows[("01810", pd.Timestamp("2025-10-16"))] == 1_060_000_000
    assert flows[("09988", pd.Timestamp("2025-10-16"))] == 762_000_000
    assert flows[("00700", pd.Timestamp("2025-10-16"))] < 0
    channels = tables("hkex-stock-connect-daily", "channels", [date(2025, 11, 10)])
    south = channels[channels["channel"].str.endswith("Southbound")]
    assert round(float((south["buy_turnover"] - south["sell_turnover"]).sum()) / 1e6, 2) == 6_654.00


def test_xiaomi_net_bought_every_demo_session_most_on_25_november() -> None:
    flows = southbound_flows()
    nets = flows[flows["code"] == "01810"].set_index("date")["net_hkd"]
    demo = nets[nets.index >= pd.Timestamp("2025-11-17")]
    assert len(demo) == 10 and (demo > 0).all()
    assert nets[pd.Timestamp("2025-11-14")] < 0  # the run of net buying starts on 11-17
    assert demo.idxmax() == pd.Timestamp("2025-11-25")
    earlier = nets[nets.index < pd.Timestamp("2025-11-25")].iloc[-60:]
    assert (demo.max() - earlier.mean()) / earlier.std(ddof=0) > 3.0


def test_other_stocks_flows_are_ordinary_in_the_demo() -> None:
    flows = southbound_flows()
    for code in set(HKD_STOCKS) - {"01810"}:
        nets = flows[flows["code"] == code].set_index("date")["net_hkd"]
        for day in DEMO:
            earlier = nets[nets.index < pd.Timestamp(day)].iloc[-60:]
            z = (nets[pd.Timestamp(day)] - earlier.mean()) / max(earlier.std(ddof=0), 50e6)
            assert abs(z) < 2.0, (code, day, z)
            last5 = np.sign(nets[nets.index <= pd.Timestamp(day)].iloc[-5:])
            assert abs(last5.sum()) < 5, (code, day)


def test_short_selling_lists_add_only_the_rmb_counter() -> None:
    before = parsed("hkex-shortable-list", file_of("hkex-shortable-list", date(2025, 9, 8)))["main"]
    after = parsed("hkex-shortable-list", file_of("hkex-shortable-list", date(2025, 11, 24)))["main"]
    assert set(after["code"]) - set(before["code"]) == {"80016"} and set(before["code"]) <= set(after["code"])
    assert after.loc[after["code"] == "80016", "currency"].tolist() == ["CNY"]
    # Every security sold short in the demo is on the list in effect that day; the RMB counter only from 24/11.
    for day in DEMO:
        quotes = parsed("hkex-quotes", file_of("hkex-quotes", day))["main"]
        shorted = set(quotes.loc[quotes["short_value"].notna() & (quotes["short_value"] > 0), "code"])
        listed = set((after if day >= date(2025, 11, 24) else before)["code"])
        assert shorted <= listed, (day, sorted(shorted - listed)[:5])
