"""What users type is resolved to stock codes, with near-match suggestions for unknown ones."""

from __future__ import annotations

import pytest

from bot.codes import resolve

NAMES = {
    "01810": "XIAOMI-W",
    "00700": "TENCENT",
    "09988": "BABA-W",
    "03690": "MEITUAN-W",
    "01811": "CGN NEW ENERGY",
}


@pytest.mark.parametrize(
    "text",
    [
        "1810",
        "01810",
        "1810.HK",
        "1810.hk",
        "HK1810",
        "hk01810",
        "xiaomi",
        "XIAOMI",
        "小米",
        "xiaomi-w",
        " 1810 ",
    ],
)
def test_xiaomi_forms(text: str) -> None:
    assert resolve(text, NAMES).code == "01810"


@pytest.mark.parametrize(
    ("text", "code"),
    [("騰訊", "00700"), ("tencent", "00700"), ("alibaba", "09988"), ("700", "00700"), ("meituan", "03690")],
)
def test_names_and_short_codes(text: str, code: str) -> None:
    assert resolve(text, NAMES).code == code


def test_us_ticker() -> None:
    got = resolve("AAPL", NAMES)
    assert (got.code, got.market) == ("AAPL", "US")


def test_unknown_code_suggests_near_matches() -> None:
    got = resolve("1812", NAMES)
    assert got.code is None
    assert "01810" in got.suggestions or "01811" in got.suggestions


def test_typo_in_name_suggests() -> None:
    got = resolve("xiaomo", NAMES)
    assert got.code is None
    assert got.suggestions[0] == "01810"


@pytest.mark.parametrize("text", ["", "   ", "0", "123456", "<b>", "?!"])
def test_garbage_is_unresolved(text: str) -> None:
    assert resolve(text, NAMES).code is None
