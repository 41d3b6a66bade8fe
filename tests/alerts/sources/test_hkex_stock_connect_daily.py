"""hkex-stock-connect-daily: the real 16 Jul 2026 file → exact southbound top-10 and channel rows, and broken files."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.ingest import check_date
from alerts.sources import get_source
from alerts.sources.hkex_stock_connect_daily import CHANNELS_SCHEMA, SCHEMA, SOURCE, parse, parse_channels
from tests.support.paths import FIXTURES

REAL = (FIXTURES / "hkex-stock-connect-daily" / "data_tab_daily_20260716e.js").read_bytes()


def _data() -> list[dict[str, Any]]:
    return json.loads(REAL.decode().removeprefix("tabData = ").rstrip().removesuffix(";"))


def _js(data: list[dict[str, Any]]) -> bytes:
    return ("tabData = " + json.dumps(data, indent=1) + ";").encode()


def _south_row(data: list[dict[str, Any]], obj: int = 3) -> list[str]:
    row: list[str] = data[obj]["content"][1]["table"]["tr"][0]["td"][0]
    return row


def test_registered_with_its_real_url() -> None:
    assert get_source("hkex-stock-connect-daily") is SOURCE
    assert SOURCE.urls(date(2026, 7, 16)) == (
        "https://www.hkex.com.hk/eng/csm/DailyStat/data_tab_daily_20260716e.js",
    )
    assert SOURCE.base_setting == "hkex_url" and SOURCE.dated_url
    assert set(SOURCE.feeds) == {"southbound_flow"}


def test_real_file_southbound_top10_rows() -> None:
    frame = parse(REAL)
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMA
    assert frame.attrs["file_date"] == date(2026, 7, 16) and frame.attrs["layout"] == "tabdata-2026"
    assert frame.drop(columns="date").to_dict("records") == [
        {
            "channel": "SSE Southbound",
            "rank": 1,
            "code": "02513",
            "name": "KNOWLEDGE ATLAS",
            "buy_hkd": 3_891_957_500.0,
            "sell_hkd": 2_052_163_900.0,
            "total_hkd": 5_944_121_400.0,
            "net_hkd": 1_839_793_600.0,
        },
        {
            "channel": "SZSE Southbound",
            "rank": 1,
            "code": "00700",
            "name": "TENCENT",
            "buy_hkd": 3_946_953_060.0,
            "sell_hkd": 2_405_473_411.0,
            "total_hkd": 6_352_426_471.0,
            "net_hkd": 1_541_479_649.0,
        },
    ]
    assert (frame["date"] == pd.Timestamp("2026-07-16")).all()


def test_real_file_channels_in_currency_units_and_reconciled() -> None:
    frame = parse_channels(REAL)
    assert {c: str(t) for c, t in frame.dtypes.items()} == CHANNELS_SCHEMA
    rows = {r["channel"]: r for r in frame.drop(columns="date").to_dict("records")}
    assert list(rows) == ["SSE Northbound", "SSE Southbound", "SZSE Northbound", "SZSE Southbound"]
    assert rows["SSE Southbound"] == {
        "channel": "SSE Southbound",
        "currency": "HKD",
        "total_turnover": 84_439_520_000.0,
        "buy_turnover": 43_220_650_000.0,
        "sell_turnover": 41_218_870_000.0,
        "total_trades": 1_532_680,
        "buy_trades": 758_736,
        "sell_trades": 773_944,
        "etf_turnover": 964_540_000.0,
    }
    assert rows["SZSE Southbound"]["buy_turnover"] == 29_102_580_000.0
    assert rows["SZSE Southbound"]["sell_turnover"] == 26_064_880_000.0
    north = rows["SSE Northbound"]
    assert (north["currency"], north["total_turnover"], north["total_trades"]) == (
        "RMB",
        162_732_740_000.0,
        7_412_470,
    )
    assert pd.isna(north["buy_turnover"]) and pd.isna(north["buy_trades"])
    assert frame.attrs["reconciled"] == {
        "SSE Southbound buy+sell turnover": (84_439_520_000.0, 84_439_520_000.0),
        "SZSE Southbound buy+sell turnover": (55_167_460_000.0, 55_167_460_000.0),
    }


def test_ten_rows_a_channel_in_rank_order() -> None:
    data = _data()
    table = data[3]["content"][1]["table"]
    first = table["tr"][0]["td"][0]
    table["tr"] = [{"td": [[str(n), f"{n:05d}", f"STOCK {n}", "2", "1", "3"]]} for n in range(1, 11)]
    table["tr"][0]["td"][0] = first
    frame = parse(_js(data))
    szse = frame[frame["channel"] == "SZSE Southbound"]
    assert szse["rank"].tolist() == list(range(1, 11))
    assert szse["code"].tolist()[:3] == ["00700", "00002", "00003"]
    assert szse["net_hkd"].tolist()[1:] == [1.0] * 9


def test_a_closed_channel_gives_no_rows() -> None:
    data = _data()
    data[1]["tradingDay"] = 0
    data[1]["content"] = []
    frame, channels = parse(_js(data)), parse_channels(_js(data))
    assert frame["channel"].tolist() == ["SZSE Southbound"]
    assert "SSE Southbound" not in channels["channel"].tolist()


def test_the_file_date_must_be_the_requested_date() -> None:
    frame = parse(REAL)
    check_date(SOURCE, frame, date(2026, 7, 16), "u")
    with pytest.raises(MalformedFile, match="dated 2026-07-16, expected 2026-07-17"):
        check_date(SOURCE, frame, date(2026, 7, 17), "u")
    data = _data()
    data[2]["date"] = "2026-07-15"
    with pytest.raises(MalformedFile, match="different dates"):
        parse(_js(data))


# ---- broken files --------------------------------------------------------------------------------------------


def _row_off() -> bytes:
    data = _data()
    _south_row(data)[4] = "2,405,473,400"  # sell 11 dollars short of what the total needs
    return _js(data)


def _channel_off() -> bytes:
    data = _data()
    data[1]["content"][0]["table"]["tr"][1]["td"][0][0] = "45,220.65"  # buy HK$2bn above total − sell
    return _js(data)


def _changed_key() -> bytes:
    data = _data()
    data[0]["marketName"] = data[0].pop("market")
    return _js(data)


def _changed_header() -> bytes:
    data = _data()
    data[3]["content"][1]["table"]["schema"][0][3] = "Buy Amount"
    return _js(data)


def _no_split() -> bytes:
    data = _data()
    table = data[1]["content"][0]["table"]
    table["schema"][0] = ["Total Turnover", "Total Trade Count"]
    table["tr"] = table["tr"][::3][:2]
    return _js(data)


ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
    b"<body><h1>Page not found</h1></body></html>"
)

BROKEN = [
    pytest.param(REAL[: len(REAL) // 2], "not a whole JSON array", id="truncated"),
    pytest.param(REAL[:-40], "not a whole JSON array", id="truncated-near-the-end"),
    pytest.param(ERROR_PAGE, "error page", id="html-error-page-200"),
    pytest.param(b"<html><body>Maintenance</body></html>", "does not start with 'tabData ='", id="html-page"),
    pytest.param(b"", "empty file", id="empty"),
    pytest.param(b"tabData = [];", "channels \\[\\]", id="empty-array"),
    pytest.param(_changed_key(), "object 0 has keys", id="changed-key"),
    pytest.param(_changed_header(), "SZSE Southbound top-10 header", id="changed-header"),
    pytest.param(_no_split(), "lacks \\['Buy Turnover', 'Sell Turnover'\\]", id="no-buy-sell-split"),
    pytest.param(_row_off(), "row 1 \\(00700 TENCENT\\).*6,352,426,460.*6,352,426,471", id="row-total-off"),
    pytest.param(
        _channel_off(), "SSE Southbound buy \\+ sell turnover is 86,439.52m", id="channel-total-off"
    ),
]


@pytest.mark.parametrize(("data", "message"), BROKEN)
def test_broken_files_raise_malformed(data: bytes, message: str) -> None:
    for parser in (parse, parse_channels):
        with pytest.raises(MalformedFile, match=message):
            parser(data)


def test_changed_header_carries_the_evidence() -> None:
    with pytest.raises(MalformedFile) as caught:
        parse(_changed_header())
    assert caught.value.expected == (
        "Rank",
        "Stock Code",
        "Stock Name",
        "Buy Turnover",
        "Sell Turnover",
        "Total Turnover",
    )
    assert caught.value.found is not None and "Buy Amount" in caught.value.found
    assert caught.value.layout == "tabdata-2026"


def test_real_file_is_the_upstream_bytes() -> None:
    # The fixture is the public copy byte for byte (README): one-space indentation, no trailing newline.
    assert len(REAL) == 5014 and REAL.startswith(b'tabData = [\n {\n  "id": 0,') and REAL.endswith(b"];")
    assert re.search(rb'"market": "SZSE Southbound"', REAL)
