"""Render alerts as Telegram HTML (every dynamic value escaped) in English or 繁體中文; buttons, also for a console.

Every word comes from the message catalogue (bot/locales/*/alerts.po): rule titles, caveats, source labels, fact
names, the "why" templates of the Chinese text, dates and buttons. The English "why" is the rule's own sentence
(`Alert.why`); the Chinese one is filled from the alert's facts, with a shorter template (and finally a generic
line) when a fact is missing, so an alert from an older build still renders.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from string import Formatter

from alerts.calendar import HK_TZ
from alerts.model import Alert, Fact
from alerts.rules import KINDS, kind, spec_for
from bot.codes import chinese_names
from bot.html import MAX_TEXT, clip, esc, split_message
from bot.i18n import LANGS, day, full_date, has, num, pct, pp, price, shares, signed_money, t

MAX_WHY = 1500  # escaped characters of the "why" line: keeps one alert block well under MAX_TEXT

# URL fragment → catalogue key of the link label (first match wins).
SOURCE_KEYS: dict[str, str] = {
    "dayquot": "source.dayquot",
    "ssturnover": "source.ssturnover",
    "spr": "source.sfc",
    "sharerepur": "source.sharerepur",
    "di/summary": "source.di",
    "mutualmarket": "source.southbound",
    "csm/DailyStat": "source.connect_daily",
    "regsho": "source.finra",
    "sec.gov": "source.sec",
    "Eligible-for-Short-Selling": "source.shortable",
    "listconews": "source.announcement",
}
_PRICE_FACTS = frozenset({"avg_price", "level", "step", "price_high", "price_low"})
_SIGNED_FACTS = frozenset({"change", "delta_pct", "mean_change", "delta_value", "delta_shares", "net_hkd"})
# Decimals of percentage facts (one unless listed): holdings to 0.01 point, percentiles whole.
_PCT_DIGITS = {"pct_after": 2, "pct_of_issued": 2, "compared_pct": 2, "ytd_pct_of_issued": 2, "percentile": 0}
# Units that are currencies (overseas buybacks are paid in GBP on the London Stock Exchange, in EUR elsewhere).
_CURRENCIES = frozenset({"HKD", "USD", "RMB", "CNY", "GBP", "EUR"})


def rule_emoji(rule: str) -> str:
    """The alert kind's emoji from its rule's spec (a bell for a rule this build does not know)."""
    found = kind(rule)
    return found.emoji if found is not None else "🔔"


def rule_title(rule: str, lang: str = "en") -> str:
    """The rule's title in `lang` (its id when the catalogue has no title for it)."""
    key = f"rule.{rule}.title"
    return t(lang, key) if has(key) else rule


def caveat(rule: str, lang: str = "en", market: str = "HK") -> str | None:
    """The caveat line of a rule in `lang`; a rule's spec may override it per market (US short volume)."""
    spec = spec_for(rule, "US" if market == "US" else "HK")
    key = spec.caveat_key if spec is not None and spec.caveat_key else f"rule.{rule}.caveat"
    return t(lang, key) if has(key) else None


def source_label(url: str, lang: str = "en") -> str:
    """The label of a primary-source link in `lang`."""
    return t(lang, next((key for fragment, key in SOURCE_KEYS.items() if fragment in url), "source.other"))


# Every alert kind's English caveat, by rule (code calls caveat() above, which knows the language and the market).
CAVEATS: dict[str, str] = {rule: caveat(rule) or "" for rule in KINDS}


class _MissingFact(LookupError):
    """A fact a template needs is absent, not a number, or "n/a"."""


class _Facts:
    """An alert's facts by name, read for one language."""

    def __init__(self, alert: Alert, lang: str) -> None:
        self.alert = alert
        self.lang = lang
        self.by_name = {f.name: f for f in alert.facts}

    def number(self, name: str) -> float:
        """A finite numeric fact, else _MissingFact."""
        fact = self.by_name.get(name)
        if fact is None or isinstance(fact.value, str) or not math.isfinite(float(fact.value)):
            raise _MissingFact(name)
        return float(fact.value)

    def text(self, name: str) -> str:
        """A non-empty text fact, else _MissingFact."""
        fact = self.by_name.get(name)
        if fact is None or not str(fact.value).strip() or fact.value == "n/a":
            raise _MissingFact(name)
        return str(fact.value)

    def unit(self, name: str) -> str:
        """The currency of a money fact (HKD when unknown)."""
        fact = self.by_name.get(name)
        return fact.unit if fact is not None and fact.unit in _CURRENCIES else "HKD"

    def present(self, name: str) -> bool:
        """True when `name` is a non-empty text."""
        try:
            self.text(name)
        except _MissingFact:
            return False
        return True

    def has(self, name: str) -> bool:
        """True when `name` is a finite number."""
        try:
            self.number(name)
        except _MissingFact:
            return False
        return True

    def day(self, name: str) -> str:
        """A date fact (ISO text) as a short date in the language."""
        try:
            return day(self.lang, date.fromisoformat(self.text(name)[:10]))
        except ValueError as exc:
            raise _MissingFact(name) from exc

    def money(self, name: str, *, signed: bool = False) -> str:
        """A money fact, scaled for reading."""
        return signed_money(self.lang, self.number(name), self.unit(name), plus=signed)

    def price(self, name: str) -> str:
        """A price fact."""
        return price(self.lang, self.number(name), self.unit(name))

    def pct(self, name: str, *, signed: bool = False) -> str:
        """A fact in percent."""
        return _pct(self.lang, self.number(name), _PCT_DIGITS.get(name, 1), signed=signed)

    def shares(self, name: str) -> str:
        """A share count."""
        return shares(self.lang, self.number(name))


def _pct(lang: str, value: float, digits: int = 1, *, signed: bool = False) -> str:
    """A percentage; tiny values (a buyback of 0.004% of the shares) keep three decimals."""
    return pct(lang, value, 3 if 0 < abs(value) < 0.1 else digits, signed=signed)


def _level(lang: str, value: float) -> str:
    """A southbound level such as 20 or 12.5 (percent)."""
    return pct(lang, value, 0 if float(value).is_integer() else 1)


def _sep(lang: str) -> str:
    return t(lang, "sep.clause")


def _rank(f: _Facts) -> str:
    percentile, n = f.number("percentile"), int(f.number("window"))
    if percentile >= 100:
        return t(f.lang, "why.rank_highest", n=n)
    if percentile <= 0:
        return t(f.lang, "why.rank_lowest", n=n)
    return t(f.lang, "why.rank_percentile", p=int(percentile), n=n)


def _short_ratio_values(f: _Facts) -> dict[str, str]:
    return {"ratio": _pct(f.lang, f.number("short_ratio")), "z": num(f.lang, abs(f.number("z")), 1)}


def _why_short_ratio(f: _Facts) -> str:
    prefix = "us_" if f.alert.market == "US" else ""
    values = {
        **_short_ratio_values(f),
        "rank": _rank(f),
        "n": str(int(f.number("window"))),
        "mean": _pct(f.lang, f.number("window_mean")),
    }
    if prefix:
        values |= {
            "short": num(f.lang, f.number("short_volume")),
            "total": num(f.lang, f.number("total_volume")),
        }
    else:
        values |= {"short_value": f.money("short_value"), "turnover": f.money("turnover")}
    return t(f.lang, f"why.{prefix}{f.alert.rule}", **values)


def _why_short_ratio_short(f: _Facts) -> str:
    prefix = "us_" if f.alert.market == "US" else ""
    return t(f.lang, f"why.{prefix}{f.alert.rule}.short", **_short_ratio_values(f))


def _reasons(f: _Facts) -> set[str]:
    """The `reasons` fact split at "+" (none when absent); a value that is not text is malformed."""
    fact = f.by_name.get("reasons")
    if fact is None:
        return set()
    if not isinstance(fact.value, str):
        raise _MissingFact("reasons")
    return set(fact.value.split("+"))


def _why_short_position(f: _Facts) -> str:
    reasons = _reasons(f)
    if "covered" in reasons:
        return t(
            f.lang,
            "why.short_position_jump.covered",
            previous=f.shares("previous_shares"),
            previous_date=f.day("previous_date"),
        )
    values = {
        "shares": f.shares("shares"),
        "value": f.money("value"),
        "previous_date": f.day("previous_date"),
    }
    if f.number("previous_shares") == 0:
        text = t(f.lang, "why.short_position_jump.new", **values)
    else:
        text = t(
            f.lang,
            "why.short_position_jump",
            **values,
            change=f.pct("delta_pct", signed=True),
            previous=f.shares("previous_shares"),
            delta_shares=("+" if f.number("delta_shares") > 0 else "") + f.shares("delta_shares"),
            delta_value=f.money("delta_value", signed=True),
        )
    if "high" in reasons and f.has("weeks_of_history"):
        text += t(f.lang, "why.short_position_jump.high", weeks=int(f.number("weeks_of_history")) + 1)
    return text


def _why_short_position_short(f: _Facts) -> str:
    return t(f.lang, "why.short_position_jump.short", shares=f.shares("shares"), value=f.money("value"))


def _buyback_prices(f: _Facts) -> str:
    if not f.has("price_high") and f.present("currency"):  # rows in several currencies
        return t(f.lang, "why.buyback_filed.mixed_prices", currencies=f.text("currency"))
    high = f.price("price_high")
    if not f.has("price_low") or f.number("price_low") == f.number("price_high"):
        return high
    return f"{f.price('price_low')}–{high}"


def _why_buyback(f: _Facts) -> str:
    text = t(
        f.lang,
        "why.buyback_filed",
        shares=f.shares("shares"),
        date=day(f.lang, f.alert.trade_date),
        prices=_buyback_prices(f),
        paid=f.money("total_paid"),
    )
    if f.present("market"):
        text += t(f.lang, "why.buyback_filed.market", market=f.text("market"))
    if f.present("line") and f.text("line") == "A SHARES":
        text += t(f.lang, "why.buyback_filed.a_shares")
    if f.has("for_cancellation") and f.has("for_treasury"):
        text += _buyback_destination(f)
    if f.has("ytd_pct_of_issued"):
        text += t(f.lang, "why.buyback_filed.ytd", pct=f.pct("ytd_pct_of_issued"))
    return text


def _buyback_destination(f: _Facts) -> str:
    """Cancelled, or held as treasury shares that can be sold again."""
    if f.number("for_treasury") == 0:
        return t(f.lang, "why.buyback_filed.cancelled")
    if f.number("for_cancellation") == 0:
        return t(f.lang, "why.buyback_filed.treasury")
    return t(
        f.lang,
        "why.buyback_filed.split",
        cancelled=f.shares("for_cancellation"),
        treasury=f.shares("for_treasury"),
    )


def _why_buyback_short(f: _Facts) -> str:
    return t(
        f.lang, "why.buyback_filed.short", shares=f.shares("shares"), date=day(f.lang, f.alert.trade_date)
    )


def _where(f: _Facts) -> str:
    level, distance = f.price("level"), f.number("distance")
    side = f.text("side") if distance else "at"
    key = f"why.where_{side}"
    if not has(key):
        raise _MissingFact("side")
    return t(f.lang, key, level=level, distance=_pct(f.lang, distance))


def _role(f: _Facts) -> str:
    role = f.text("role")
    key = f"role.{role.lower().replace(' ', '_').replace('%', 'pct')}"
    return t(f.lang, key) if has(key) else role


def _why_insider(f: _Facts) -> str:
    prefix = "us_" if f.alert.market == "US" else ""
    text = t(
        f.lang,
        f"why.{prefix}insider_buy_near_round_number",
        holder=f.text("holder"),
        role=_role(f),
        shares=f.shares("shares"),
        avg_price=f.price("avg_price"),
        date=day(f.lang, f.alert.trade_date),
        where=_where(f),
    )
    if f.has("pct_after"):
        text += t(f.lang, "why.insider.stake", pct=f.pct("pct_after"))
    return text


def _why_insider_short(f: _Facts) -> str:
    return t(
        f.lang,
        "why.insider_buy_near_round_number.short",
        shares=f.shares("shares"),
        avg_price=f.price("avg_price"),
    )


def _why_southbound(f: _Facts) -> str:
    identity = f.alert.identity
    values = {
        "pct": f.pct("pct_of_issued"),
        "date": day(f.lang, f.alert.trade_date),
        "compared": f.pct("compared_pct"),
        "compared_date": f.day("compared_date"),
        "change": pp(f.lang, f.number("change")),
    }
    if identity.startswith(("up:", "down:")):
        direction, _, level = identity.partition(":")
        text = t(f.lang, f"why.southbound_level.{direction}", level=_level(f.lang, float(level)), **values)
    elif identity.startswith("change") and identity[6:].isdigit():
        text = t(f.lang, "why.southbound_level.change", sessions=int(identity[6:]), **values)
    else:
        raise _MissingFact("identity")
    if f.has("shares"):
        text += t(f.lang, "why.southbound_level.shares", shares=f.shares("shares"))
    return text


def _why_southbound_short(f: _Facts) -> str:
    return t(
        f.lang, "why.southbound_level.short", pct=f.pct("pct_of_issued"), date=day(f.lang, f.alert.trade_date)
    )


def _why_flow_values(f: _Facts) -> dict[str, str]:
    """The day's southbound figures of a southbound_net_flow alert: date, net (signed), bought, sold."""
    return {
        "date": day(f.lang, f.alert.trade_date),
        "net": f.money("net_hkd", signed=True),
        "buy": f.money("buy_hkd"),
        "sell": f.money("sell_hkd"),
    }


def _why_flow(f: _Facts) -> str:
    """A large net (identity "large:…": its z against the stock's history) or a one-sided run ("streak:…")."""
    values = _why_flow_values(f)
    if f.alert.identity.startswith("streak:"):
        return t(f.lang, "why.southbound_net_flow.streak", streak=int(f.number("streak")), **values)
    z = f"{num(f.lang, f.number('z'), 1)}σ"
    return t(f.lang, "why.southbound_net_flow", z=z, history=int(f.number("history")), **values)


def _why_flow_short(f: _Facts) -> str:
    return t(
        f.lang,
        "why.southbound_net_flow.short",
        date=day(f.lang, f.alert.trade_date),
        net=f.money("net_hkd", signed=True),
    )


def _why_market(f: _Facts) -> str:
    parts = [
        t(
            f.lang,
            "why.market_short_swing",
            value=f.money("short_value"),
            date=day(f.lang, f.alert.trade_date),
        )
    ]
    if f.has("change") and f.has("reference_value"):
        parts.append(
            t(
                f.lang,
                "why.market_short_swing.week",
                change=f.pct("change", signed=True),
                reference=f.money("reference_value"),
                reference_date=f.day("reference_date"),
            )
        )
    if f.has("mean_change") and f.has("mean_value"):
        parts.append(
            t(
                f.lang,
                "why.market_short_swing.mean",
                change=f.pct("mean_change", signed=True),
                mean=f.money("mean_value"),
            )
        )
    text = _sep(f.lang).join(parts)
    if f.has("stocks_shorted") and f.has("reference_stocks_shorted"):
        text += t(
            f.lang,
            "why.market_short_swing.stocks_vs",
            n=num(f.lang, f.number("stocks_shorted")),
            reference=num(f.lang, f.number("reference_stocks_shorted")),
        )
    elif f.has("stocks_shorted"):
        text += t(f.lang, "why.market_short_swing.stocks", n=num(f.lang, f.number("stocks_shorted")))
    return text


def _why_confluence(f: _Facts) -> str:
    rules = [r for r in (f.text("signals") if "signals" in f.by_name else f.alert.identity).split("+") if r]
    if not rules:
        raise _MissingFact("signals")
    return t(
        f.lang,
        "why.confluence",
        n=len(rules),
        window=int(f.number("window")),
        signals=t(f.lang, "sep.list").join(rule_title(r, f.lang) for r in rules),
    )


def _why_confluence_short(f: _Facts) -> str:
    return t(f.lang, "why.confluence.short", n=int(f.number("rules")))


def _insiders(f: _Facts) -> list[str]:
    """The first five insiders of a cluster alert (its identity joins their names with "+")."""
    names = [n for n in f.alert.identity.split("+") if n][:5]
    if not names:
        raise _MissingFact("identity")
    return names


def _why_cluster(f: _Facts) -> str:
    names = _insiders(f)
    return t(
        f.lang,
        "why.insider_cluster",
        n=int(f.number("insiders")),
        total=f.money("total"),
        code=f.alert.code,
        days=int(f.number("days")),
        names=t(f.lang, "sep.list").join(names),
    )


def _why_cluster_short(f: _Facts) -> str:
    return t(f.lang, "why.insider_cluster.short", n=int(f.number("insiders")), code=f.alert.code)


def _why_sell_cluster(f: _Facts) -> str:
    """The sell cluster, with the 10b5-1 plan sales it did not count when there were any."""
    names = _insiders(f)
    text = t(
        f.lang,
        "why.insider_sell_cluster",
        n=int(f.number("insiders")),
        total=f.money("total"),
        code=f.alert.code,
        sessions=int(f.number("sessions")),
        names=t(f.lang, "sep.list").join(names),
    )
    plan = int(f.number("plan_sales")) if f.has("plan_sales") else 0
    if plan:
        text += t(f.lang, "why.insider_sell_cluster.plan", n=plan, total=f.money("plan_total"))
    return text


def _why_sell_cluster_short(f: _Facts) -> str:
    return t(f.lang, "why.insider_sell_cluster.short", n=int(f.number("insiders")), code=f.alert.code)


def _why_first_buy(f: _Facts) -> str:
    return t(
        f.lang,
        "why.first_time_insider_buy",
        holder=f.text("holder"),
        role=f.text("role"),
        shares=shares(f.lang, f.number("shares")),
        value=f.money("value"),
        date=f.day("date"),
        lookback=t(f.lang, "unit.days", n=num(f.lang, f.number("lookback"), 0)),
    )


def _why_first_buy_short(f: _Facts) -> str:
    return t(f.lang, "why.first_time_insider_buy.short", holder=f.text("holder"), code=f.alert.code)


def _why_large_holder(f: _Facts) -> str:
    return t(
        f.lang,
        "why.large_holder_filing",
        holder=f.text("holder"),
        form=f.text("form"),
        percent=_pct(f.lang, f.number("percent"), 1),
        shares=shares(f.lang, f.number("shares")),
    )


def _why_large_holder_short(f: _Facts) -> str:
    return t(f.lang, "why.large_holder_filing.short", form=f.text("form"), code=f.alert.code)


# Per rule, the "why" builders tried in order: the full sentence, then a shorter one needing fewer facts.
def _why_eligibility(f: _Facts) -> str:
    event = f.text("event")
    if event.startswith("shortable_"):
        values = {"effective": f.day("effective"), "previous": f.day("previous_list")}
    elif event.startswith("index_"):
        values = {"effective": f.day("effective"), "announced": f.day("announced"), "index": f.text("index")}
    else:
        raise _MissingFact("event")
    return t(f.lang, f"why.eligibility_change.{event}", **values)


def _why_eligibility_short(f: _Facts) -> str:
    return t(f.lang, "why.eligibility_change.short", effective=f.day("effective"))


def _why_corporate_finance(f: _Facts) -> str:
    category = f.text("category")
    text = t(
        f.lang,
        "why.corporate_finance_event",
        category=_category(f.lang, category),
        released_at=f.text("released_at"),
        title=f.text("title"),
    )
    if category in ("placing", "rights_issue", "open_offer"):
        text += (
            t(f.lang, "why.corporate_finance_event.discount", discount=f.pct("discount"))
            if f.has("discount")  # a number: the title states it ("n/a" otherwise)
            else t(f.lang, "why.corporate_finance_event.no_discount")
        )
    if category == "next_day_disclosure":
        text += t(f.lang, "why.corporate_finance_event.next_day")
    if category == "high_concentration":
        text += t(f.lang, "why.corporate_finance_event.concentration")
    return text


def _why_corporate_finance_short(f: _Facts) -> str:
    return t(
        f.lang,
        "why.corporate_finance_event.short",
        category=_category(f.lang, f.text("category")),
        released_at=f.text("released_at"),
    )


def _category(lang: str, category: str) -> str:
    """An announcement category id in words (the catalogue's `category.<id>`), the id itself when unnamed."""
    key = f"category.{category}"
    return t(lang, key) if has(key) else category


WHY_BUILDERS: dict[str, tuple[Callable[[_Facts], str], ...]] = {
    "short_ratio_spike": (_why_short_ratio, _why_short_ratio_short),
    "short_ratio_drop": (_why_short_ratio, _why_short_ratio_short),
    "short_position_jump": (_why_short_position, _why_short_position_short),
    "buyback_filed": (_why_buyback, _why_buyback_short),
    "insider_buy_near_round_number": (_why_insider, _why_insider_short),
    "southbound_level": (_why_southbound, _why_southbound_short),
    "market_short_swing": (_why_market,),
    "confluence": (_why_confluence, _why_confluence_short),
    "insider_cluster": (_why_cluster, _why_cluster_short),
    "eligibility_change": (_why_eligibility, _why_eligibility_short),
    "southbound_net_flow": (_why_flow, _why_flow_short),
    "insider_sell_cluster": (_why_sell_cluster, _why_sell_cluster_short),
    "first_time_insider_buy": (_why_first_buy, _why_first_buy_short),
    "large_holder_filing": (_why_large_holder, _why_large_holder_short),
    "corporate_finance_event": (_why_corporate_finance, _why_corporate_finance_short),
}


def why_text(alert: Alert, lang: str = "en") -> str:
    """The one-line "why" in `lang` (plain text): the rule's own sentence in English, a template otherwise."""
    if lang == "en" and alert.why:
        return alert.why
    facts = _Facts(alert, lang)
    for build in WHY_BUILDERS.get(alert.rule, ()):
        try:
            return build(facts)
        except (_MissingFact, ValueError, TypeError, AttributeError):
            continue  # a fact is missing or malformed: try the shorter sentence
    return _why_from_catalogue(alert, lang)


def _why_from_catalogue(alert: Alert, lang: str) -> str:
    """A rule without sentences of its own here: its catalogue template ``why.<rule>`` filled with its facts."""
    found = kind(alert.rule)
    if alert.rule in WHY_BUILDERS or found is None or not has(found.why_key):
        return t(lang, "why.fallback")
    values = {f.name: fact_value(f, lang) for f in alert.facts}
    wanted = {name for _, name, _, _ in Formatter().parse(t(lang, found.why_key)) if name}
    if not wanted <= set(values):  # the template names a fact this alert lacks
        return t(lang, "why.fallback")
    return t(lang, found.why_key, **values)


def fact_label(name: str, lang: str = "en") -> str:
    """A fact's name in `lang` (its id with spaces when the catalogue does not name it)."""
    key = f"fact.{name}"
    return t(lang, key) if has(key) else name.replace("_", " ")


def fact_value(fact: Fact, lang: str = "en") -> str:
    """A fact's value formatted for `lang`: money scaled, prices, shares, percentages, dates."""
    value, unit = fact.value, fact.unit
    if isinstance(value, str):
        if value == "n/a":
            return t(lang, "fact.na")
        if fact.name == "category":  # an announcement category id (corporate_finance_event)
            return _category(lang, value)
        if unit == "date":
            try:
                return day(lang, date.fromisoformat(value[:10]))
            except ValueError:
                return value
        return value
    number = float(value)
    if not math.isfinite(number):
        return t(lang, "fact.na")
    signed = fact.name in _SIGNED_FACTS
    if unit in _CURRENCIES:
        return (
            price(lang, number, unit)
            if fact.name in _PRICE_FACTS
            else signed_money(lang, number, unit, plus=signed)
        )
    if unit == "%":
        return _pct(lang, number, _PCT_DIGITS.get(fact.name, 1), signed=signed)
    if unit == "pp":
        return pp(lang, number)
    if unit == "σ":
        return f"{num(lang, number, 1)}σ"
    if unit == "shares":
        return shares(lang, number)
    text = num(lang, number, 0 if number.is_integer() else 2)
    return t(lang, f"unit.{unit}", n=text) if unit and has(f"unit.{unit}") else f"{text} {unit}".rstrip()


def _facts_line(alert: Alert, lang: str) -> str:
    found = kind(alert.rule)
    wanted = found.headline if found is not None and found.headline else None
    facts = [f for f in alert.facts if wanted is None or f.name in wanted][:4]
    return " · ".join(f"{esc(fact_label(f.name, lang))} {esc(fact_value(f, lang))}" for f in facts)


def _lag(alert: Alert, lang: str) -> str:
    if alert.published_at is None:
        return ""
    local = alert.published_at.astimezone(HK_TZ)
    days = (local.date() - alert.trade_date).days
    if days == 0:
        return t(lang, "alert.published_same_day", time=f"{local:%H:%M}")
    return t(lang, "alert.published_lag", days=days, time=f"{local:%H:%M}")


def alert_name(alert: Alert, lang: str) -> str:
    """The stock's name in `lang`: the Chinese short name for HK stocks in 中文 when known, else the source's name."""
    if lang == "zh" and alert.market == "HK":
        return chinese_names().get(alert.code, alert.name)
    return alert.name


@lru_cache(maxsize=4096)  # one alert fans out to many chats: render it once per language (Alert is frozen)
def render_alert(alert: Alert, lang: str = "en") -> str:
    """One alert as Telegram HTML in `lang`: headline, why, key facts, date and lag, source links, caveat."""
    title = rule_title(alert.rule, lang)
    who = (
        esc(t(lang, "alert.market"))
        if alert.code == "MARKET"
        else f"<b>{esc(alert.code)}</b> {esc(alert_name(alert, lang))}".rstrip()
    )
    lines = [
        f"{rule_emoji(alert.rule)} <b>{esc(title)}</b> · {who}",
        clip(esc(why_text(alert, lang)), MAX_WHY),
    ]
    facts = _facts_line(alert, lang)
    if facts:
        lines.append(facts)
    when = " · ".join(
        x
        for x in (t(lang, "alert.trade_date", date=full_date(lang, alert.trade_date)), _lag(alert, lang))
        if x
    )
    lines.append(f"<i>{esc(when)}</i>")
    links = [f'<a href="{esc(url)}">{esc(source_label(url, lang))}</a>' for url in alert.links[:3]]
    if links:
        lines.append(" · ".join(links))
    note = caveat(alert.rule, lang, alert.market)
    if note:
        lines.append(f"ℹ️ {esc(note)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Button:
    """An inline button: callback `data` (≤ 64 bytes), or a deep link to the bot when `start` (a /start payload)
    is set (bot.deeplinks turns it into a t.me URL button)."""

    text: str
    data: str
    start: str = ""

    def __post_init__(self) -> None:
        if len(self.data.encode("utf-8")) > 64:
            raise ValueError(f"callback data over 64 bytes: {self.data!r}")
        if not self.data and not self.start:
            raise ValueError("a button needs callback data or a start payload")


def buttons_for(alert: Alert, lang: str = "en", *, watch: bool = False) -> list[Button]:
    """`Card`, `Chart`, `Mute 1d` (概覽, 圖表, 靜音1天) for a stock alert, and with `watch` a `Watch` deep link
    (``start=watch_<code>``: it still works once the alert is forwarded); none for market-wide alerts."""
    if alert.code == "MARKET":
        return []
    buttons = [
        Button(t(lang, "button.card"), f"card:{alert.code}"),
        Button(t(lang, "button.chart"), f"chart:{alert.code}"),
        Button(t(lang, "button.mute_1d"), f"mute:{alert.code}:1d"),
    ]
    start = f"watch_{alert.code.replace('.', '-')}"
    if watch and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", start):
        buttons.append(Button(t(lang, "button.watch"), "", start=start))
    return buttons


def _group_header(count: int, when: date, lang: str, digest: bool) -> str:
    lines = [t(lang, "alert.digest_header", n=count)] if digest else []
    if count > 1:
        lines.append(t(lang, "alert.group_header", n=count, day=esc(full_date(lang, when))))
    return "\n\n".join(lines)


def render_group(alerts: Sequence[Alert], day: date, lang: str = "en", *, digest: bool = False) -> list[str]:
    """Several alerts for one chat and day as few messages as possible, each ≤ 4096 characters.

    Alerts are packed into messages by their longest rendering over every language, so part i holds the same
    alerts whatever the language: the delivery worker renders at send time, and a /lang change between two
    parts of one item then switches the language of the remaining parts without skipping or repeating an alert.
    """
    lang = lang if lang in LANGS else "en"
    blocks = {code: [render_alert(a, code) for a in alerts] for code in LANGS}
    headers = {code: _group_header(len(alerts), day, code, digest) for code in LANGS}
    sizes = [max(len(blocks[code][i]) for code in LANGS) for i in range(len(alerts))]
    parts: list[str] = []
    for n, indexes in enumerate(_pack(max(len(h) for h in headers.values()), sizes)):
        pieces = ([headers[lang]] if n == 0 and headers[lang] else []) + [blocks[lang][i] for i in indexes]
        parts += split_message("\n\n".join(pieces))  # splits further only a block over the limit on its own
    return parts


def _pack(header: int, sizes: Sequence[int], limit: int = MAX_TEXT) -> list[list[int]]:
    """Greedy packing of blocks (joined by a blank line) after a header into groups of at most `limit`."""
    groups: list[list[int]] = [[]]
    used = header
    for index, size in enumerate(sizes):
        extra = size + (2 if used else 0)
        if used and used + extra > limit and groups[-1]:
            groups.append([])
            used, extra = 0, size
        groups[-1].append(index)
        used += extra
    return groups


def console_buttons(buttons: Sequence[Button]) -> str:
    """Inline buttons drawn as a row of [ labels ] (deep links open Telegram: not drawn in a console)."""
    return "  ".join(f"[ {b.text} ]" for b in buttons if not b.start)
