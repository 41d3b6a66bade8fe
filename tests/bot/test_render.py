"""Alert rendering: escaped HTML, Telegram limits, console form."""

from __future__ import annotations

from datetime import date, datetime
from html.parser import HTMLParser

import pytest

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from bot.html import split_message, to_console
from bot.render import Button, buttons_for, render_alert, render_group


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = dict(
        rule="insider_buy_near_round_number",
        code="01810",
        name="XIAOMI-W",
        trade_date=date(2025, 11, 24),
        severity="warning",
        why="Lei Jun bought 2,600,000 sh at HK$38.58, 3.6% below HK$40",
        facts=(
            Fact("shares", 2600000, "shares"),
            Fact("avg_price", 38.58, "HKD"),
            Fact("pct_after", 23.26, "%"),
        ),
        links=("https://di.hkex.com.hk/di/summary/DSM20251126C2.htm",),
        published_at=datetime(2025, 11, 26, 19, 0, tzinfo=HK_TZ),
        identity="DA20251126E00123",
    )
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
    assert "Avg price HK$38.58 · Stake after 23.26%" in text
    assert "Shares 2,600,000" not in text  # not a headline fact of this rule
    assert "Trade date Mon 24 Nov 2025 · published T+2 19:00 HKT" in text
    assert (
        '<a href="https://di.hkex.com.hk/di/summary/DSM20251126C2.htm">HKEX disclosure of interests</a>'
        in text
    )
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
    alert = _alert(
        rule="short_ratio_spike",
        market="US",
        code="AAPL",
        name="",
        links=("https://cdn.finra.org/equity/regsho/daily/CNMSshvol20251124.txt",),
    )
    text = render_alert(alert)
    assert "not short interest" in text and "FINRA daily short volume" in text
    hk = render_alert(_alert(rule="short_ratio_spike"))
    assert "not short interest" not in hk and "not a position" in hk


def test_chinese_alert_has_every_part_in_chinese() -> None:
    text = render_alert(_alert(), "zh")
    assert text.startswith(
        "👤 <b>內部人士於整數價位附近買入</b> · <b>01810</b> 小米集團-W"
    )  # the Chinese short name for 中文
    assert "平均價 38.58港元 · 交易後持股 23.26%" in text
    assert "交易日 2025年11月24日(週一) · T+2 19:00（香港時間）發布" in text
    assert ">港交所權益披露</a>" in text
    # This alert lacks the level, holder and role facts: the shorter Chinese template is used, not alert.why.
    assert text.split("\n")[1] == "以 38.58港元 買入 2,600,000股"
    assert "bought" not in text and "Trade date" not in text
    assert _valid_html(text)


def test_buttons_and_group_header_follow_the_language() -> None:
    assert [b.text for b in buttons_for(_alert(), "zh")] == ["概覽", "圖表", "靜音1天"]
    assert [b.text for b in buttons_for(_alert(), "en")] == ["Card", "Chart", "Mute 1d"]
    alerts = [_alert(code=f"{i:05d}", identity=str(i)) for i in range(3)]
    assert render_group(alerts, date(2025, 11, 24), "zh")[0].startswith(
        "<b>3則通知</b> · 2025年11月24日(週一)"
    )
    assert render_group(alerts, date(2025, 11, 24), "en")[0].startswith("<b>3 alerts</b> · Mon 24 Nov 2025")


def test_parts_hold_the_same_alerts_in_every_language() -> None:
    """A /lang change between two parts of one outbox item must neither skip nor repeat an alert."""
    alerts = [_alert(code=f"{i:05d}", identity=str(i), why="x" * (100 + 37 * i)) for i in range(60)]
    en, zh = render_group(alerts, date(2025, 11, 24), "en"), render_group(alerts, date(2025, 11, 24), "zh")
    assert len(en) == len(zh) > 2
    for part_en, part_zh in zip(en, zh, strict=True):
        codes = [a.code for a in alerts if f"<b>{a.code}</b>" in part_en]
        assert codes and codes == [a.code for a in alerts if f"<b>{a.code}</b>" in part_zh]
        assert len(part_en) <= 4096 and len(part_zh) <= 4096


def test_an_over_long_why_is_clipped_outside_entities() -> None:
    text = render_alert(_alert(why="a & b " * 2000))
    why = text.split("\n")[1]
    assert len(why) <= 1500 and why.endswith("…") and _valid_html(text)


@pytest.fixture(scope="module")
def buybacks_2026() -> dict[tuple[str, str], Alert]:
    """buyback_filed alerts of the real 09/09/2026 report (real cells; tests/fixtures/hkex-buybacks/README.md)."""
    from alerts.rules import load_params
    from alerts.rules.buybacks import evaluate_buyback_filed
    from alerts.sources.hkex_buybacks import parse
    from tests.alerts.rules.frames import context
    from tests.alerts.sources.test_hkex_buybacks import grid_xls, real_grid_2026

    report = parse(grid_xls(real_grid_2026()))
    alerts, _ = evaluate_buyback_filed(context(day=date(2026, 9, 9), buybacks=report), load_params())
    return {(a.code, a.identity): a for a in alerts}


@pytest.mark.parametrize(
    ("key", "lang", "parts"),
    [
        (
            ("01810", ""),
            "en",
            [
                "bought back 3,038,600 shares on 2026-09-08 at HK$26.72–27.1, HK$82.0m in total "
                "(Exchange); all for cancellation"
            ],
        ),
        (("01810", ""), "zh", ["以 26.72港元–27.10港元 回購 3,038,600股，合共 8,202萬港元；全部將予註銷"]),
        (("02256", ""), "en", ["all held as treasury shares (which can be sold again)"]),
        (("02256", ""), "zh", ["全部作為庫存股份持有，日後可再出售"]),
        (("02378", ""), "en", ["at GBP 10.165–10.3, GBP 6.6m in total (London Stock Exchange)"]),
        (("02378", ""), "zh", ["合共 656萬英鎊；於London Stock Exchange；全部將予註銷"]),
        (
            ("01456", "A SHARES"),
            "en",
            [
                "RMB 9.7m in total (Shanghai Stock Exchange); A shares on the mainland: not a "
                "Hong Kong buyback; all held as treasury shares"
            ],
        ),
        (("01456", "A SHARES"), "zh", ["於Shanghai Stock Exchange；為內地A股回購，並非香港回購"]),
        (("00005", ""), "en", ["at prices in GBP/HKD, ≈HK$61.7m in total"]),
        (("00005", ""), "zh", ["以 GBP/HKD多種貨幣的價格 回購 369,200股", "；全部將予註銷"]),
    ],
)
def test_buyback_alert_says_currency_market_and_cancellation(
    buybacks_2026: dict[tuple[str, str], Alert], key: tuple[str, str], lang: str, parts: list[str]
) -> None:
    text = render_alert(buybacks_2026[key], lang)
    for part in parts:
        assert part in text, (part, text)
    assert _valid_html(text)
