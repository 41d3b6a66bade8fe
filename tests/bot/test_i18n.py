"""The message catalogue: every message in both languages, the same placeholders and tags, every key used exists."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from string import Formatter

import pytest

from bot import i18n
from bot.i18n import LANGS, catalogue, day, money, normalize_lang, shares, t

BOT_DIR = Path(i18n.__file__).parent
_TAG = re.compile(r"</?[a-z]+[^>]*>")
_CJK = re.compile(r"[\u3400-\u9fff]")
# Messages whose English has no words to translate (only placeholders, symbols, codes or commands).
_WORDLESS = re.compile(r"^[\W\d_]*$")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def _words(text: str) -> str:
    """English words left once tags, placeholders, commands and code spans are removed."""
    text = re.sub(r"<code>.*?</code>", "", text)
    text = _TAG.sub("", text)
    text = re.sub(
        r"\{[a-z_]+\}|/[a-z_]+|https?://\S+|positioning-bot|HK\$|US\$|[A-Z]{2,}|[a-z]+_[a-z_]+", "", text
    )
    return text


def test_both_languages_define_the_same_messages() -> None:
    missing = {lang: sorted(set(catalogue("en")) ^ set(catalogue(lang))) for lang in LANGS}
    assert missing == {lang: [] for lang in LANGS}
    assert len(catalogue("en")) >= 30


@pytest.mark.parametrize("key", sorted(catalogue("en")))
def test_every_message_is_translated_with_the_same_placeholders_and_tags(key: str) -> None:
    en, zh = catalogue("en")[key], catalogue("zh")[key]
    assert en.strip() and zh.strip(), f"{key}: empty message"
    assert _fields(en) == _fields(zh), f"{key}: placeholders differ"
    assert sorted(_TAG.findall(en)) == sorted(_TAG.findall(zh)), f"{key}: HTML tags differ"
    if re.search(r"[A-Za-z]{3,}", _words(en)):
        assert _CJK.search(zh), f"{key}: the Chinese text looks untranslated: {zh!r}"
    assert not _CJK.search(_words(en).replace("繁體中文", "").replace("中文", "")), (
        f"{key}: Chinese in English"
    )


def _keys_used_in_code() -> set[str]:
    used: set[str] = set()
    for path in list(BOT_DIR.rglob("*.py")):
        used |= set(
            re.findall(r"\bt\(\s*[\w.\[\]\"']+,\s*\"([a-z0-9_.]+)\"", path.read_text(encoding="utf-8"))
        )
    return used


def test_every_key_the_code_asks_for_exists() -> None:
    used = _keys_used_in_code()
    assert used, "the scan found no t(lang, key) calls: the pattern is stale"
    assert sorted(used - set(catalogue("en"))) == []


def test_unknown_language_falls_back_to_english_and_zh_variants_get_traditional() -> None:
    assert t("fr", "quiet_off") == t("en", "quiet_off")
    assert [normalize_lang(c) for c in ("zh-hans", "zh-hant", "zh-HK", "zh", "en", None, "ja")] == [
        "zh",
        "zh",
        "zh",
        "zh",
        "en",
        "en",
        "en",
    ]


def test_numbers_and_dates_follow_the_language() -> None:
    assert money("en", 812_300_000) == "HK$812.3m"
    assert money("zh", 812_300_000) == "8.12億港元"
    assert money("zh", 45_600_000) == "4,560萬港元"
    assert money("en", 1_234_000_000, "USD") == "US$1.23bn"
    assert shares("en", 2_600_000) == "2,600,000 sh"
    assert shares("zh", 2_600_000) == "2,600,000股"
    assert day("en", date(2025, 11, 21)) == "Fri 21/11"
    assert day("zh", date(2025, 11, 21)) == "11月21日(週五)"
