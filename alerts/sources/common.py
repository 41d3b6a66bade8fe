"""Small pure helpers shared by the parsers: codes, numbers, prices, counters, schema coercion."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

import lxml.etree
import lxml.html
import numpy as np
import pandas as pd

from alerts.errors import MalformedFile

_NUMBER_RE = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_PRICE_RE = re.compile(r"^\s*([A-Z]{3})?\s*([\d,]+(?:\.\d+)?)\s*$")
_MISSING = {"", "-", "--", "n/a", "N/A", "NA"}
# Name suffixes of non-HKD counters: "SHK PPT-R" is the RMB counter of "SHK PPT", "-U" a USD counter.
_COUNTER_SUFFIX = {"-R": "RMB", "-U": "USD"}

# XML from the network: no entities resolved, no network access, comments and processing instructions dropped.
_XML_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True
)

_HTML_ERROR_MARKERS = (
    "<title>404",
    "page not found",
    "access denied",
    "service unavailable",
    "internal server error",
    "the requested url was rejected",
    "temporarily unavailable",
)


def norm_code(raw: object) -> str:
    """Normalize an HK stock code to 5 digits: ``1810`` / ``' 700'`` / ``'%80016'`` → ``'01810'``…"""
    text = str(raw).strip().lstrip("%#*").strip()
    if text.upper().endswith(".HK"):
        text = text[:-3]
    if not text.isdigit() or len(text) > 5:
        raise MalformedFile(f"not a stock code: {raw!r}")
    return str(int(text)).zfill(5)


def parse_number(raw: object) -> float | None:
    """Parse ``'1,234,567'`` / ``'0.42'`` / ``'-'`` → float or None (missing)."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    text = str(raw).strip()
    if text in _MISSING:
        return None
    if not _NUMBER_RE.match(text):
        raise MalformedFile(f"not a number: {raw!r}")
    return float(text.replace(",", ""))


def parse_price(raw: object) -> tuple[str | None, float | None]:
    """Parse ``'HKD 63.68'`` → ``('HKD', 63.68)``; ``'-'`` → ``(None, None)``; a bare number has no currency."""
    if raw is None:
        return None, None
    text = str(raw).strip()
    if text in _MISSING:
        return None, None
    match = _PRICE_RE.match(text)
    if not match:
        raise MalformedFile(f"not a price: {raw!r}")
    return match.group(1), parse_number(match.group(2))


def split_positions(raw: object) -> dict[str, float]:
    """Parse ``'1,065,871,110(L) 30,260,800(S)'`` → ``{'L': 1065871110.0, 'S': 30260800.0}``."""
    if raw is None:
        return {}
    out: dict[str, float] = {}
    for number, kind in re.findall(r"([\d,]+(?:\.\d+)?)\s*\(([LSP])\)", str(raw)):
        value = parse_number(number)
        if value is not None:
            out[kind] = value
    return out


def counter_currency(name: str) -> str | None:
    """Return the currency implied by a counter's name suffix (``-R`` → RMB, ``-U`` → USD), else None."""
    upper = name.strip().upper()
    for suffix, currency in _COUNTER_SUFFIX.items():
        if upper.endswith(suffix):
            return currency
    return None


def link_counters(frame: pd.DataFrame, flagged: pd.Series | None = None) -> pd.DataFrame:
    """Add ``non_hkd`` (bool) and ``hkd_code`` (the HKD counter whose name the RMB/USD name extends).

    A counter is non-HKD when its name ends in -R/-U, when `flagged` (e.g. a ``%`` mark) says so,
    or when its code is in the 8xxxx RMB range. The HKD counter is found by stripping the suffix.
    """
    names = frame["name"].astype("string").str.strip().str.upper()
    suffix_currency = names.map(lambda n: counter_currency(n) if isinstance(n, str) else None)
    non_hkd = suffix_currency.notna() | frame["code"].astype("string").str.match(r"^8\d{4}$").fillna(False)
    if flagged is not None:
        non_hkd = non_hkd | flagged.fillna(False).astype(bool)
    base_names = names.str.replace(r"-[RU]$", "", regex=True)
    hkd_rows = ~non_hkd
    by_name = dict(zip(names[hkd_rows], frame.loc[hkd_rows, "code"], strict=True))
    hkd_code = [
        by_name.get(base) if flag and base != name else None
        for flag, base, name in zip(non_hkd, base_names, names, strict=True)
    ]
    out = frame.copy()
    out["non_hkd"] = non_hkd.astype(bool).to_numpy()
    out["hkd_code"] = pd.array(hkd_code, dtype="string")
    return out


def decode_text(data: bytes, encodings: tuple[str, ...] = ("utf-8", "latin-1")) -> str:
    """Decode bytes with the first encoding that works (BOM stripped)."""
    for encoding in encodings:
        try:
            return data.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError:
            continue
    raise MalformedFile("cannot decode file")


def reject_error_page(text: str, what: str) -> None:
    """Raise MalformedFile when `text` looks like an HTML error page served in place of the file."""
    lowered = text[:4000].lower()
    for marker in _HTML_ERROR_MARKERS:
        if marker in lowered:
            raise MalformedFile(f"{what}: got an error page ({marker!r}) instead of the report")


def conform(frame: pd.DataFrame, schema: Mapping[str, str]) -> pd.DataFrame:
    """Return `frame` with exactly the schema's columns, in order, cast to the declared dtypes."""
    missing = [col for col in schema if col not in frame.columns]
    if missing:
        raise MalformedFile(f"parser produced no column(s) {missing}")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for col, dtype in schema.items():
        values = frame[col].reset_index(drop=True)
        if dtype == "datetime64[ns]":
            out[col] = pd.to_datetime(values).astype("datetime64[ns]")
        elif dtype == "bool":
            out[col] = values.fillna(False).astype(bool)
        elif dtype == "Int64":
            out[col] = pd.array(pd.to_numeric(values).round(), dtype="Float64").astype("Int64")
        else:
            out[col] = values.astype(dtype)
    return out


def empty_frame(schema: Mapping[str, str]) -> pd.DataFrame:
    """An empty frame with the schema's columns and dtypes (e.g. a report with no rows that day)."""
    return conform(pd.DataFrame({col: [] for col in schema}), schema)


def html_tree(text: str, what: str) -> lxml.html.HtmlElement:
    """Parse an HTML page (already decoded) into an lxml tree; an empty or markup-less page is malformed."""
    if not text.strip() or "<" not in text:
        raise MalformedFile(f"{what}: empty or non-HTML file")
    # Re-encode so a leading <?xml encoding=...?> declaration cannot make lxml refuse a str.
    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        return lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    except lxml.etree.ParserError as exc:
        raise MalformedFile(f"{what}: unparseable HTML ({exc})") from None


def require_closed_table(text: str, table_id: str, what: str) -> None:
    """Raise MalformedFile unless the raw HTML closes ``<table id=table_id>`` (lxml hides truncation)."""
    start = re.search(rf"<table\b[^>]*\sid\s*=\s*[\"']?{re.escape(table_id)}\b", text, re.I)
    if start is None:
        raise MalformedFile(f"{what}: no table id={table_id!r}")
    tail = text[start.start() :]
    # Nested tables are allowed: the page is whole only if every <table> opened from here on is closed.
    if len(re.findall(r"</table\s*>", tail, re.I)) < len(re.findall(r"<table\b", tail, re.I)):
        raise MalformedFile(f"{what}: table id={table_id!r} is not closed (truncated page?)")


def xml_root(data: bytes, root_tag: str, what: str) -> lxml.etree._Element:
    """Parse XML bytes (prolog optional) and require the root element `root_tag` (local name)."""
    body = data.removeprefix(codecs.BOM_UTF8).lstrip()
    if not body:
        raise MalformedFile(f"{what}: empty file ({len(data)} bytes)")
    try:
        root = lxml.etree.fromstring(body, _XML_PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        reject_error_page(decode_text(body[:4000]), what)
        raise MalformedFile(f"{what}: not well-formed XML ({exc})") from None
    tag = lxml.etree.QName(root).localname
    if tag != root_tag:
        reject_error_page(decode_text(body[:4000]), what)
        raise MalformedFile(f"{what}: root element is <{tag}>, not <{root_tag}>")
    return root
