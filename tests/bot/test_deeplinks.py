"""Pure parts of Telegram reach, driven by Hypothesis: /start payloads, Watch links, inline results, the CSV files."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.model import Alert, Fact
from bot.codes import resolve
from bot.deeplinks import PAYLOAD_RE, StartLink, keyboard, parse_payload, payload, start_url
from bot.exports import (
    COLUMNS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    ImportRefused,
    ImportRow,
    export_csv,
    read_import,
)
from bot.html import MAX_TEXT
from bot.i18n import has
from bot.inline import card_article, help_article
from bot.render import Button, buttons_for
from bot.view import DataView
from tests.support.botapi import BOT_USERNAME, parse_text
from tests.support.bothelpers import DEMO_NOW, demo_history

_URL = re.compile(rf"^https://t\.me/{BOT_USERNAME}\?start=([A-Za-z0-9_-]{{1,64}})$")


@cache
def demo_view() -> DataView:
    """The demo history as the bot's read model on the demo evening."""
    return DataView(demo_history(), DEMO_NOW.date())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("watch_01810", StartLink("watch", "01810")),
        ("card_1810", StartLink("card", "1810")),
        ("watch_BRK-B", StartLink("watch", "BRK.B")),
        ("lang_ZH", StartLink("lang", "zh")),
        ("lang_fr", None),
        ("watch_", None),
        ("watch_1_2", None),
        ("stats_1", None),
        ("x" * 65, None),
        ("watch_01810 ", None),
        ("", None),
    ],
)
def test_payloads(text: str, expected: StartLink | None) -> None:
    assert parse_payload(text) == expected


@given(st.text(max_size=100))
def test_any_payload_parses_or_is_refused(text: str) -> None:
    link = parse_payload(text)
    if link is not None:
        assert PAYLOAD_RE.match(text) and link.action in ("watch", "card", "lang")
        assert parse_payload(payload(link.action, link.value)) == link  # round trip


@given(st.from_regex(r"\A(?:[0-9]{5}|[A-Z]{1,5}(?:\.[A-Z])?)\Z"))
def test_every_code_makes_a_valid_watch_link(code: str) -> None:
    start = payload("watch", code)
    assert len(start) <= 64 and parse_payload(start) == StartLink("watch", code)
    url = start_url(BOT_USERNAME, start)
    assert _URL.match(url)


def test_alert_buttons_keep_callbacks_first_and_the_deep_link_second() -> None:
    alert = Alert(
        "buyback_filed", "01810", date(2025, 11, 21), "notice", "why", (Fact("shares", 1, "shares"),)
    )
    markup = keyboard(buttons_for(alert, "zh", watch=True), BOT_USERNAME)
    assert markup is not None
    first, second = markup.inline_keyboard
    assert [b.callback_data for b in first] == ["card:01810", "chart:01810", "mute:01810:1d"]
    assert second[0].text == "關注" and second[0].url == f"https://t.me/{BOT_USERNAME}?start=watch_01810"
    assert keyboard(buttons_for(alert, "zh", watch=True), None).inline_keyboard == (first,)  # no username yet
    with pytest.raises(ValueError, match="callback data or a start payload"):
        Button("x", "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.sampled_from(["1810", "小米", "XIAOMI", "AAPL", "700", "9988", "騰訊"]), st.text(max_size=80)
    )
)
def test_inline_results_are_what_telegram_accepts(query: str) -> None:
    view = demo_view()
    for lang in ("en", "zh"):
        code = resolve(query.strip()[:64], view.names() or None).code
        result = (
            card_article(view, code, lang, BOT_USERNAME)
            if code
            else help_article(lang, BOT_USERNAME, text=query)
        )
        data = result.to_dict()
        assert 1 <= len(data["id"].encode()) <= 64 and data["title"].strip()
        content = data["input_message_content"]
        plain, _ = parse_text(content["message_text"], content["parse_mode"])  # refused markup raises here
        assert 0 < len(plain) <= MAX_TEXT
        for row in data.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                assert _URL.match(button["url"]) and "callback_data" not in button  # deep links only


def test_inline_card_is_cached_per_view() -> None:
    view = demo_view()
    assert card_article(view, "01810", "en", BOT_USERNAME) is card_article(view, "01810", "en", BOT_USERNAME)
    fresh = DataView(demo_history(), DEMO_NOW.date())
    assert card_article(fresh, "01810", "en", BOT_USERNAME) is not card_article(
        view, "01810", "en", BOT_USERNAME
    )


def test_export_neutralises_formulas_and_reads_back() -> None:
    alert = Alert("buyback_filed", "01810", date(2025, 11, 21), "notice", "=HYPERLINK(1)", name="@evil")
    data = export_csv(["01810", "AAPL"], {"01810": "-1+1"}, [alert], "en")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(COLUMNS)
    assert rows[1][:4] == ["watch", "01810", "'-1+1", "HK"] and rows[2][3] == "US"
    assert rows[3][2] == "'@evil" and rows[3][7] == "'=HYPERLINK(1)"
    assert read_import(data) == [ImportRow(2, "01810"), ImportRow(3, "AAPL")]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"code\n" + b"1\n" * (MAX_IMPORT_BYTES // 2), "import.bad_size"),
        (b"\xff\xfe\x00c", "import.bad_encoding"),
        (b"name\nxiaomi\n", "import.bad_header"),
        (b"code\n" + b"1\n" * (MAX_IMPORT_ROWS + 1), "import.bad_rows"),
        (b'code\n"1810\n', "import.bad_csv"),
    ],
)
def test_import_refuses_files_that_are_not_watchlists(data: bytes, reason: str) -> None:
    with pytest.raises(ImportRefused) as refused:
        read_import(data)
    assert refused.value.reason == reason


@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_import_never_fails_otherwise(data: bytes) -> None:
    try:
        rows = read_import(data)
    except ImportRefused as exc:
        reason = exc.reason
        rows = []
    else:
        reason = "import.bad_none"
    assert reason.startswith("import.bad_") and has(reason.replace("_none", "_csv"))
    assert all(0 < len(r.token) <= 32 and r.line >= 2 for r in rows)
