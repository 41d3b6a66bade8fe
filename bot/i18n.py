"""Message catalogue (gettext PO files read with Babel) and per-language number and date formatting.

Catalogues live in ``bot/locales/<locale>/<domain>.po``: ``en`` and ``zh_Hant`` (Traditional Chinese, shown for
``/lang zh``). Each area of the bot keeps its own domain file (``bot.po`` for command replies, others for alerts,
the card, charts); message ids are stable keys such as ``watch_added``, and every id exists in every locale
(``tests/test_i18n.py`` walks the catalogue). Placeholders use ``str.format`` names: ``{codes}``.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALES_DIR = Path(__file__).parent / "locales"
LANGS = ("en", "zh")
LOCALE_DIRS = {"en": "en", "zh": "zh_Hant"}
BABEL_LOCALES = {"en": "en_HK", "zh": "zh_Hant_HK"}


class CatalogueError(Exception):
    """A PO file is unreadable or defines a message id twice."""


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Every message of `lang`: id → text, merged over its domain files."""
    messages: dict[str, str] = {}
    folder = LOCALES_DIR / LOCALE_DIRS[lang]
    for path in sorted(folder.glob("*.po")):
        with path.open("rb") as handle:
            po = read_po(handle, locale=BABEL_LOCALES[lang].split("_")[0])
        for message in po:
            if not message.id or not isinstance(message.id, str):
                continue  # the header entry; plural forms are not used
            if message.id in messages:
                raise CatalogueError(f"{path.name}: message id {message.id!r} defined twice in {lang}")
            messages[message.id] = str(message.string)
    return messages


def has(key: str) -> bool:
    """True when `key` is a message id of the catalogue."""
    return key in catalogue("en")


def t(lang: str, key: str, **values: Any) -> str:
    """The message `key` in `lang` (English when `lang` is unknown or lacks it), filled with `values`."""
    text = catalogue(lang if lang in LANGS else "en").get(key) or catalogue("en")[key]
    return text.format(**values) if values else text


def normalize_lang(hint: str | None) -> str:
    """Telegram language codes → a catalogue language: every zh variant (zh-hans too) → zh (繁中), else en."""
    return "zh" if hint and hint.lower().startswith("zh") else "en"


def num(lang: str, value: float, digits: int = 0) -> str:
    """A number with grouping and `digits` decimals: ``1,234.5``."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=BABEL_LOCALES.get(lang, "en_HK"))


MINUS = "\u2212"  # the typographic minus of every signed figure a reader sees: "−HK$1.2m", not "-HK$1.2m"


def sign(value: float, *, plus: bool = True) -> str:
    """The sign to write before abs(`value`): "+" for a gain (when `plus`), "−" for a loss, nothing for zero."""
    if value < 0:
        return MINUS
    return "+" if plus and value > 0 else ""


def pct(lang: str, value: float, digits: int = 1, *, signed: bool = False) -> str:
    """A percentage already in percent units: ``45.3%`` / ``+2.1%``."""
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{num(lang, value, digits)}%"


_CURRENCY = {
    "HKD": ("HK$", "港元"),
    "USD": ("US$", "美元"),
    "RMB": ("RMB ", "人民幣"),
    "CNY": ("RMB ", "人民幣"),
    "GBP": ("£", "英鎊"),
    "EUR": ("€", "歐元"),
}


def money(lang: str, amount: float, currency: str = "HKD") -> str:
    """An amount scaled for reading: ``HK$812.3m`` / ``HK$1.23bn``; 中文 ``8.12億港元`` / ``4,560萬港元``."""
    if amount is None or (isinstance(amount, float) and math.isnan(amount)):
        return "–"
    prefix, suffix = _CURRENCY.get(currency, (f"{currency} ", currency))
    size = abs(amount)
    if lang == "zh":
        if size >= 1e8:
            return f"{num(lang, amount / 1e8, 2)}億{suffix}"
        if size >= 1e4:
            return f"{num(lang, amount / 1e4, 0 if size >= 1e6 else 1)}萬{suffix}"
        return f"{num(lang, amount, 0)}{suffix}"
    if size >= 1e9:
        return f"{prefix}{num(lang, amount / 1e9, 2)}bn"
    if size >= 1e6:
        return f"{prefix}{num(lang, amount / 1e6, 1)}m"
    return f"{prefix}{num(lang, amount, 0)}"


def signed_money(lang: str, amount: float, currency: str = "HKD", *, plus: bool = False) -> str:
    """An amount with its sign before the currency: ``−HK$1.2m``; with `plus` a gain reads ``+HK$1.2m``."""
    return sign(amount, plus=plus) + money(lang, abs(amount), currency)


def pp(lang: str, value: float) -> str:
    """A change in percentage points, always signed: ``+0.38 pp`` / ``−0.38 pp``; 中文 ``+0.38個百分點``."""
    return t(lang, "unit.pp", n=sign(value) + num(lang, abs(value), 2))


def price(lang: str, value: float, currency: str = "HKD") -> str:
    """A share price: ``HK$38.58``; 中文 ``38.58港元``."""
    prefix, suffix = _CURRENCY.get(currency, (f"{currency} ", currency))
    text = num(lang, value, 3 if abs(value) < 1 else 2)
    return f"{text}{suffix}" if lang == "zh" else f"{prefix}{text}"


def shares(lang: str, count: float) -> str:
    """A share count: ``2,600,000 sh`` / ``2,600,000股``."""
    text = num(lang, count, 0)
    return f"{text}股" if lang == "zh" else f"{text} sh"


def day(lang: str, when: date | datetime) -> str:
    """A short date with weekday: ``Fri 21/11`` / ``11月21日(週五)``."""
    locale = BABEL_LOCALES.get(lang, "en_HK")
    return format_date(when, "M月d日(EEE)" if lang == "zh" else "EEE dd/MM", locale=locale)


def full_date(lang: str, when: date | datetime) -> str:
    """A full date: ``Fri 21 Nov 2025`` / ``2025年11月21日(週五)``."""
    locale = BABEL_LOCALES.get(lang, "en_HK")
    return format_date(when, "y年M月d日(EEE)" if lang == "zh" else "EEE d MMM y", locale=locale)
