"""Alert rendering: escaped HTML, Telegram limits, console form."""

from __future__ import annotations

from datetime import date, datetime
from html.parser import HTMLParser

import pytest

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from bot.render import Button, buttons_for, render_alert, render_group, split_message, to_console


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = dict(
        rule="insider_buy_near_round_number", code="01810", name="XIAOMI-W", trade_date=date(2025, 11, 24),
        severity="warning", why="Lei Jun bought 2,600,000 sh at HK$38.58, 3.6% below HK$40",
        facts=(Fact("shares", 2600000, "shares"), Fact("avg_price", 38.58, "HKD"), Fact("pct_after", 23.26, "%")),
        links=("https://di.hkex.com.hk/di/summary/DSM20251126C2.htm",),
        published_at=datetime(2025, 11, 26, 19, 0, tzinfo=HK_TZ), identity="DA20251126E00123")
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


class _Checker(HTMLParser):
    allowed = {"b", "i", "a", "code", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.allowed, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag


def _valid_html(text: str) -> bool:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return not checker.stack


def test_alert_shows_headline_facts_date_lag_link_and_caveat() -> None:
    text = render_alert(_alert())
    assert text.startswith("👤 <b>Insider buy near a round number</b> · <b>01810</b> XIAOMI-W")
    assert "HK$38.58" in text and "HK$40" in text
    assert "avg price HKD 38.58 · pct after 23.26%" in text
    assert "shares 2,600,000" not in text  # not a headline fact of this rule
    assert "Trade date Mon 24 Nov 2025 · published T+2 19:00 HKT" in text
    assert '<a href="https://di.hkex.com.hk/di/summary/DSM20251126C2.htm">HKEX disclosure of interests</a>' in text
    assert "ℹ️" in text
    assert _valid_html(text)


def test_dynamic_values_are_escaped() -> None:
    text = render_alert(_alert(name="A&B <script>", why="x < y & z > w"))
    assert "<script>" not in text
    assert "A&amp;B &lt;script&gt;" in text
    assert _valid_html(text)


def test_buttons_fit_callback_limit() -> None:
    assert [b.data for b in buttons_for(_alert())] == ["card:01810", "chart:01810", "mute:01810:1d"]
    assert buttons_for(_alert(code="MARKET")) == []
    with pytest.raises(ValueError, match="64 bytes"):
        Button("x", "y" * 65)


def test_group_is_split_within_4096_and_keeps_markup_valid() -> None:
    alerts = [_alert(code=f"{i:05d}", identity=str(i)) for i in range(40)]
    parts = render_group(alerts, date(2025, 11, 24))
    assert len(parts) > 1
    assert all(len(p) <= 4096 for p in parts)
    assert all(_valid_html(p) for p in parts)
    assert parts[0].startswith("<b>40 alerts</b>")


def test_one_huge_line_is_cut_outside_entities() -> None:
    line = "&amp;" * 2000
    parts = split_message(line, limit=4096)
    assert all(len(p) <= 4096 for p in parts)
    assert "".join(parts) == line
    assert all(p.endswith(";") for p in parts)


def test_console_form() -> None:
    out = to_console(render_alert(_alert()))
    assert "<b>" not in out
    assert "HKEX disclosure of interests <https://di.hkex.com.hk/di/summary/DSM20251126C2.htm>" in out
    assert "\033[1m" in to_console("<b>x</b>", color=True)


def test_us_short_volume_alert_says_volume_not_interest() -> None:
    alert = _alert(rule="short_ratio_spike", market="US", code="AAPL", name="",
                   links=("https://cdn.finra.org/equity/regsho/daily/CNMSshvol20251124.txt",))
    text = render_alert(alert)
    assert "not short interest" in text and "FINRA daily short volume" in text
    hk = render_alert(_alert(rule="short_ratio_spike"))
    assert "not short interest" not in hk and "not a position" in hk
