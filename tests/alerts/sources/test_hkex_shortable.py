"""Tests for the designated securities eligible for short selling CSV (hkex-shortable-list), on a real file."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from alerts.errors import MalformedFile
from alerts.sources.hkex_shortable import HEADER, SCHEMA, SOURCE, parse, paths
from tests.support.paths import FIXTURES

REAL = FIXTURES / "hkex-shortable-list" / "ds_list20230518.csv"
HEADER_LINE = b"No.,Stock Code,Stock Short Name,Currency,Type,Exempt from Tick Rule,Remarks\r\n"


@pytest.fixture(scope="module")
def real_bytes() -> bytes:
    return REAL.read_bytes()


@pytest.fixture(scope="module")
def frame(real_bytes: bytes) -> pd.DataFrame:
    return parse(real_bytes)


def row(frame: pd.DataFrame, code: str) -> pd.Series:
    hits = frame[frame["code"] == code]
    assert len(hits) == 1, code
    return hits.iloc[0]


# --- the real list effective 18/05/2023 ------------------------------------------------------------------------


def test_fixture_is_the_documented_file(real_bytes: bytes) -> None:
    assert real_bytes.startswith(b"List of Designated Securities Eligible for Short Selling,\r\n")
    assert b"\r\n\r\n" + HEADER_LINE in real_bytes
    assert real_bytes.endswith(b"982,87001,HUI XIAN REIT,CNY,TRST,,,\r\n")


def test_rows_schema_and_effective_date(frame: pd.DataFrame) -> None:
    assert len(frame) == 982
    assert {c: str(t) for c, t in frame.dtypes.items()} == SCHEMA
    assert frame.attrs["file_date"] == date(2023, 5, 18)
    assert (frame["effective_date"] == pd.Timestamp("2023-05-18")).all()
    assert frame.attrs["layout"] == "ds-list-2023"


def test_numbering_reconciles(frame: pd.DataFrame) -> None:
    assert frame.attrs["reconciled"] == {"numbering": (982, 982)}
    assert frame["no"].tolist() == list(range(1, 983))


def test_exact_values(frame: pd.DataFrame) -> None:
    tracker = row(frame, "02800")
    assert (tracker["no"], tracker["name"], tracker["currency"], tracker["type"]) == (
        533,
        "TRACKER FUND",
        "HKD",
        "TRST",
    )
    assert bool(tracker["tick_rule_exempt"]) is True
    assert pd.isna(tracker["remarks"])
    tencent = row(frame, "00700")
    assert (tencent["no"], tencent["name"], bool(tencent["tick_rule_exempt"])) == (173, "TENCENT", False)
    assert row(frame, "01244")["remarks"] == "Change of Stock Short Name"
    assert row(frame, "00001")["name"] == "CKH HOLDINGS"


def test_totals_by_kind(frame: pd.DataFrame) -> None:
    assert frame["type"].value_counts().to_dict() == {"EQTY": 710, "TRST": 272}
    assert frame["currency"].value_counts().to_dict() == {"HKD": 890, "USD": 50, "CNY": 42}
    assert int(frame["tick_rule_exempt"].sum()) == 252
    assert frame["code"].str.fullmatch(r"\d{5}").all() and frame["code"].is_unique


def test_paths_carry_the_effective_date() -> None:
    assert paths(date(2023, 5, 18)) == [
        "/-/media/HKEX-Market/Services/Trading/Securities/Securities-Lists/"
        "Designated-Securities-Eligible-for-Short-Selling/ds_list20230518.csv"
    ]
    assert SOURCE.dated_url and SOURCE.history and SOURCE.check_file_date
    assert SOURCE.feeds["shortable"].date_column == "effective_date"


def test_lf_and_bom_read_the_same(real_bytes: bytes, frame: pd.DataFrame) -> None:
    again = parse(b"\xef\xbb\xbf" + real_bytes.replace(b"\r\n", b"\n"))
    pd.testing.assert_frame_equal(again, frame)


# --- broken files ------------------------------------------------------------------------------------------------


def test_truncated_mid_line(real_bytes: bytes) -> None:
    cut = real_bytes[: real_bytes.index(b"533,2800,TRACKER") + 12]
    with pytest.raises(MalformedFile, match="line 538: 3 fields instead of 7"):
        parse(cut)


def test_truncated_after_the_header(real_bytes: bytes) -> None:
    cut = real_bytes[: real_bytes.index(HEADER_LINE) + len(HEADER_LINE)]
    with pytest.raises(MalformedFile, match="header but no securities"):
        parse(cut)


def test_error_page_served_with_200() -> None:
    page = b"<!DOCTYPE html><html><head><title>Page not found</title></head><body>Sorry</body></html>"
    with pytest.raises(MalformedFile):
        parse(page)


def test_changed_header_names_expected_and_found(real_bytes: bytes) -> None:
    changed = real_bytes.replace(b"Exempt from Tick Rule", b"Tick Rule Exemption", 1)
    with pytest.raises(MalformedFile) as caught:
        parse(changed)
    assert caught.value.expected == HEADER
    assert caught.value.found is not None and caught.value.found[5] == "Tick Rule Exemption"


def test_added_column_is_a_changed_header(real_bytes: bytes) -> None:
    changed = real_bytes.replace(b"Remarks\r\n", b"Remarks,Lot Size\r\n", 1)
    with pytest.raises(MalformedFile) as caught:
        parse(changed)
    assert caught.value.found is not None and caught.value.found[-1] == "Lot Size"


@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n"])
def test_empty(data: bytes) -> None:
    with pytest.raises(MalformedFile, match="empty file"):
        parse(data)


def test_gap_in_the_numbering_is_named(real_bytes: bytes) -> None:
    lines = real_bytes.split(b"\r\n")
    dropped = b"\r\n".join(line for line in lines if not line.startswith(b"534,2801,"))
    with pytest.raises(MalformedFile, match="No. jumps from 533 to 535"):
        parse(dropped)


def test_missing_effective_date(real_bytes: bytes) -> None:
    with pytest.raises(MalformedFile, match="Effective date"):
        parse(real_bytes.replace(b"Effective date : 18/05/2023,", b"Revised list,", 1))


def test_bad_tick_rule_flag(real_bytes: bytes) -> None:
    with pytest.raises(MalformedFile, match="not YES or blank"):
        parse(
            real_bytes.replace(b"533,2800,TRACKER FUND,HKD,TRST,YES,,", b"533,2800,TRACKER FUND,HKD,TRST,Y,,")
        )
