"""Render alerts as Telegram HTML (every dynamic value escaped) and as console text for the demo."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from alerts.calendar import HK_TZ
from alerts.model import Alert

MAX_TEXT = 4096
MAX_CAPTION = 1024

RULE_STYLE: dict[str, tuple[str, str]] = {
    "short_ratio_spike": ("🔺", "Short-selling ratio spike"),
    "short_ratio_drop": ("🔻", "Short-selling ratio drop (covering?)"),
    "short_position_jump": ("📊", "Reported short position change"),
    "buyback_filed": ("💰", "Share buyback"),
    "insider_buy_near_round_number": ("👤", "Insider buy near a round number"),
    "southbound_level": ("🧭", "Southbound Stock Connect holding"),
    "market_short_swing": ("🌊", "Market-wide short selling swing"),
    "confluence": ("🎯", "Several signals at once"),
    "insider_cluster": ("👥", "Several insiders buying"),
}
SOURCE_LABEL = {
    "dayquot": "HKEX daily quotations",
    "ssturnover": "HKEX short selling turnover",
    "spr": "SFC aggregated short positions",
    "sharerepur": "HKEX share repurchase report",
    "di/summary": "HKEX disclosure of interests",
    "mutualmarket": "HKEX Stock Connect holdings",
    "regsho": "FINRA daily short volume",
    "sec.gov": "SEC EDGAR filings",
}
# The few facts worth a line under the "why" (the why already carries the story).
KEY_FACTS: dict[str, tuple[str, ...]] = {
    "short_ratio_spike": ("short_ratio", "z", "percentile"),
    "short_ratio_drop": ("short_ratio", "z", "percentile"),
    "short_position_jump": ("shares", "delta_pct", "value"),
    "buyback_filed": ("shares", "total_paid", "ytd_pct_of_issued"),
    "insider_buy_near_round_number": ("avg_price", "level", "pct_after"),
    "southbound_level": ("pct_of_issued", "change"),
    "market_short_swing": ("short_value", "change", "stocks_shorted"),
    "confluence": ("signals",),
    "insider_cluster": ("insiders", "total"),
}
CAVEATS: dict[str, str] = {
    "short_ratio_spike": "Short-selling turnover is not a position: it includes market makers' hedges and "
                         "trades closed the same day.",
    "short_ratio_drop": "Short-selling turnover is not a position: a lower ratio is less new shorting, "
                        "not proof of covering.",
    "short_position_jump": "SFC positions are as of the Friday shown and published about a week later; "
                           "only positions above the reporting threshold are counted.",
    "buyback_filed": "Buybacks are reported the next business day; the amount is what the company paid.",
    "insider_buy_near_round_number": "Disclosure of Interests notices are due within 3 business days; "
                                     "the date shown is the dealing date.",
    "southbound_level": "Holdings of ChinaClear in CCASS (Shanghai and Shenzhen Connect), end of day.",
    "market_short_swing": "Market totals from HKEX; short selling is turnover, not positions.",
    "confluence": "Signals from different sources on the same stock within a few sessions.",
    "insider_cluster": "Form 4 open-market purchases (code P) only; 10b5-1 plan trades, awards and option exercises "
                       "are not counted.",
}
US_SHORT_CAVEAT = ("FINRA daily short-sale VOLUME, not short interest: much of it is market making that is closed "
                   "the same day; volume is only what FINRA's facilities reported.")


def esc(value: object) -> str:
    """Escape a dynamic value for Telegram HTML."""
    return html.escape(str(value), quote=True)


def _source_label(url: str) -> str:
    return next((label for key, label in SOURCE_LABEL.items() if key in url), "source")


def _fact_value(value: float | int | str, unit: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.2f}"
    if unit in ("HKD", "USD", "RMB", "CNY"):
        return f"{unit} {text}"
    return f"{text}{unit}" if unit in ("%", "σ", "pp") else f"{text} {unit}".rstrip()


def _lag(alert: Alert) -> str:
    if alert.published_at is None:
        return ""
    local = alert.published_at.astimezone(HK_TZ)
    days = (local.date() - alert.trade_date).days
    when = "same day" if days == 0 else f"T+{days}"
    return f" · published {when} {local:%H:%M} HKT"


def render_alert(alert: Alert) -> str:
    """One alert as Telegram HTML: headline, why, facts, date and lag, source link, caveat."""
    emoji, title = RULE_STYLE.get(alert.rule, ("🔔", alert.rule))
    who = "Market" if alert.code == "MARKET" else f"<b>{esc(alert.code)}</b> {esc(alert.name)}".rstrip()
    lines = [f"{emoji} <b>{esc(title)}</b> · {who}", esc(alert.why)]
    wanted = KEY_FACTS.get(alert.rule)
    facts = [f for f in alert.facts if wanted is None or f.name in wanted][:4]
    if facts:
        lines.append(" · ".join(f"{esc(f.name.replace('_', ' '))} {esc(_fact_value(f.value, f.unit))}"
                                for f in facts))
    lines.append(f"<i>Trade date {alert.trade_date:%a %d %b %Y}{esc(_lag(alert))}</i>")
    links = [f'<a href="{esc(url)}">{esc(_source_label(url))}</a>' for url in alert.links[:3]]
    if links:
        lines.append(" · ".join(links))
    caveat = US_SHORT_CAVEAT if alert.market == "US" and alert.rule.startswith("short_ratio") \
        else CAVEATS.get(alert.rule)
    if caveat:
        lines.append(f"ℹ️ {esc(caveat)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Button:
    """An inline button; callback data stays within Telegram's 64 bytes."""

    text: str
    data: str

    def __post_init__(self) -> None:
        if len(self.data.encode("utf-8")) > 64:
            raise ValueError(f"callback data over 64 bytes: {self.data!r}")


def buttons_for(alert: Alert) -> list[Button]:
    """`Card`, `Chart`, `Mute 1d` for a stock alert; none for market-wide alerts."""
    if alert.code == "MARKET":
        return []
    return [Button("Card", f"card:{alert.code}"), Button("Chart", f"chart:{alert.code}"),
            Button("Mute 1d", f"mute:{alert.code}:1d")]


def render_group(alerts: Sequence[Alert], day: date) -> list[str]:
    """Several alerts for one chat and day as few messages as possible, each ≤ 4096 characters."""
    blocks = [render_alert(a) for a in alerts]
    header = f"<b>{len(alerts)} alerts</b> · {day:%a %d %b %Y}" if len(alerts) > 1 else ""
    return split_message("\n\n".join(([header] if header else []) + blocks))


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split HTML text at blank lines / line ends (never inside a tag or entity) into parts ≤ `limit`."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(line) > limit:  # a single over-long line: cut outside tags and entities
            cut = _safe_cut(line, limit)
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        parts.append(current)
    return parts


def _safe_cut(line: str, limit: int) -> int:
    cut = limit
    opened_tag, opened_entity = line.rfind("<", 0, cut), line.rfind("&", 0, cut)
    if opened_tag > line.rfind(">", 0, cut):
        cut = opened_tag
    if opened_entity > line.rfind(";", 0, cut):
        cut = min(cut, opened_entity)
    return max(cut, 1)


_TAG = re.compile(r"<(/?)(b|i|a)(?:\s+href=\"([^\"]*)\")?>")


def to_console(html_text: str, *, color: bool = False) -> str:
    """Turn Telegram HTML into terminal text: bold/italic via ANSI when `color`, links as 'text <url>'."""
    links: list[str] = []

    def tag(match: re.Match[str]) -> str:
        closing, name, href = match.groups()
        if name == "a":
            if closing:
                return f" <{links.pop()}>" if links else ""
            links.append(html.unescape(href or ""))
            return ""
        if not color:
            return ""
        return "\033[0m" if closing else ("\033[1m" if name == "b" else "\033[3m")

    return html.unescape(_TAG.sub(tag, html_text))


def console_buttons(buttons: Sequence[Button]) -> str:
    """Inline buttons drawn as a row of [ labels ]."""
    return "  ".join(f"[ {b.text} ]" for b in buttons)
