"""`sec-form4`: SEC EDGAR Form 4 ownership XML (``ownershipDocument``, schemas X0306 … X0609), data-formats.md §8.

One row per NON-derivative transaction (``nonDerivativeTable/nonDerivativeTransaction``); holdings
(``nonDerivativeHolding``) and the whole ``derivativeTable`` (options, RSU rights) are ignored.

Several reporting owners (a fund and its general partner, a director filing jointly with a trust):
- ``owner_name``/``owner_cik`` describe the FIRST ``reportingOwner``; ``owners`` lists every owner's name, "; "-joined;
- ``is_director``/``is_officer``/``is_ten_percent_owner`` are True when ANY owner has the flag, and
  ``officer_title`` is the first non-empty title among the owners.

Values: booleans are ``0/1/true/false`` (any case; an empty element is False); a ``<value>`` may be missing with
only a ``<footnoteId>`` → NaN (numbers) / <NA> (text); ``is_10b5_1`` is <NA> when the filing has no ``aff10b5One``
(schemas before X0508). ``footnotes`` holds the footnotes a transaction references (anywhere inside it), in order:
``"F1: text | F2: text"``. ``ticker`` is ``issuerTradingSymbol`` upper-cased; "NONE"/"N/A" → <NA>.

``parse(data)`` is pure: the accession number is not inside the XML, so it is <NA> there; ``parse_filing`` adds it.
``file_date`` is ``periodOfReport`` (the earliest transaction date), not the filing date, so the source does not
check it against the requested day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import lxml.etree
import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import empty_frame, parse_number, xml_root
from alerts.sources.sec_edgar import FORM4_TYPES, daily_index_path

NAME = "sec-form4"
# A day is the daily index, then each filing's XML: the kind of day-fetcher alerts.edgar runs for it.
DAY_KIND = "edgar-form4"

SCHEMA: dict[str, str] = {
    "ticker": "string",
    "issuer_cik": "string",  # no leading zeros
    "owner_name": "string",  # first reporting owner
    "is_director": "bool",  # any reporting owner
    "is_officer": "bool",
    "officer_title": "string",
    "transaction_date": "datetime64[ns]",
    "code": "string",  # P (open-market purchase), S, A, M, F, G …
    "shares": "float64",
    "price": "float64",  # NaN when only a footnote is given
    "acquired_disposed": "string",  # A | D
    "shares_after": "float64",
    "direct_indirect": "string",  # D | I
    "accession": "string",  # <NA> from parse(); set by parse_filing()
    "form_type": "string",  # 4 | 4/A
    "issuer_name": "string",
    "owner_cik": "string",  # first reporting owner, no leading zeros
    "is_ten_percent_owner": "bool",  # any reporting owner
    "owners": "string",  # every reporting owner's name, "; "-joined
    "is_10b5_1": "boolean",  # aff10b5One; <NA> when the filing predates the field
    "security_title": "string",
    "period_of_report": "datetime64[ns]",
    "footnotes": "string",  # "F1: text | F2: text" referenced by the transaction
}

FORM_TYPES: tuple[str, ...] = FORM4_TYPES
_TRUE, _FALSE = frozenset({"1", "true"}), frozenset({"0", "false", ""})
_NO_TICKER = frozenset({"NONE", "N/A", "NA", "-"})
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")  # xs:date may carry an offset: 2020-03-18-05:00
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


@dataclass(frozen=True)
class _Owner:
    cik: str | None
    name: str | None
    director: bool
    officer: bool
    ten_percent: bool
    title: str | None


def parse(data: bytes) -> pd.DataFrame:
    """Parse one Form 4 XML into one row per non-derivative transaction (accession <NA>)."""
    return _parse(data, accession=None, form_type=None)


def parse_filing(data: bytes, accession: str, form_type: str | None = None) -> pd.DataFrame:
    """Parse one Form 4 XML of a known filing; `form_type` is used only when the XML has no <documentType>."""
    return _parse(data, accession=accession, form_type=form_type)


def purchases(frame: pd.DataFrame) -> pd.DataFrame:
    """The open-market purchases (code P) of parsed Form 4 rows: the small table a year of history is kept of."""
    return finish(
        frame[(frame["code"] == "P").fillna(False)].reset_index(drop=True),
        SCHEMA,
        frame.attrs.get("file_date"),
    )


def parse_purchases(data: bytes) -> pd.DataFrame:
    """Parse one Form 4 XML into its open-market purchases (code P) only."""
    return purchases(parse(data))


def paths(day: date) -> list[str]:
    """The daily form index listing the day's filings (the XMLs themselves are found through it)."""
    return [daily_index_path(day)]


def _parse(data: bytes, *, accession: str | None, form_type: str | None) -> pd.DataFrame:
    root = xml_root(data, "ownershipDocument", NAME)
    issuer = root.find("issuer")
    if issuer is None:
        raise MalformedFile(f"{NAME}: ownershipDocument has no <issuer>")
    issuer_cik = _cik(_text(issuer, "issuerCik"), "issuerCik")
    if issuer_cik is None:
        raise MalformedFile(f"{NAME}: <issuer> has no issuerCik")
    owners = [_owner(element) for element in root.findall("reportingOwner")]
    if not owners:
        raise MalformedFile(f"{NAME}: ownershipDocument has no <reportingOwner>")
    document_type = _text(root, "documentType")
    if document_type is not None and document_type not in FORM_TYPES:
        raise MalformedFile(
            f"{NAME}: documentType {document_type!r} is not a Form 4 ({'/'.join(FORM_TYPES)})"
        )
    period = _date(_text(root, "periodOfReport"), "periodOfReport")
    ticker = (_text(issuer, "issuerTradingSymbol") or "").upper()
    filing = {
        "ticker": None if ticker in _NO_TICKER or not ticker else ticker,
        "issuer_cik": issuer_cik,
        "owner_name": owners[0].name,
        "is_director": any(owner.director for owner in owners),
        "is_officer": any(owner.officer for owner in owners),
        "officer_title": next((owner.title for owner in owners if owner.title), None),
        "accession": accession,
        "form_type": document_type or form_type,
        "issuer_name": _text(issuer, "issuerName"),
        "owner_cik": owners[0].cik,
        "is_ten_percent_owner": any(owner.ten_percent for owner in owners),
        "owners": "; ".join(owner.name for owner in owners if owner.name) or None,
        "is_10b5_1": _flag(root, "aff10b5One"),
        "period_of_report": period,
    }
    notes = _footnotes(root)
    rows = [
        {**filing, **_transaction(element, notes, number)}
        for number, element in enumerate(root.findall("nonDerivativeTable/nonDerivativeTransaction"), start=1)
    ]
    frame = pd.DataFrame.from_records(rows, columns=list(SCHEMA)) if rows else empty_frame(SCHEMA)
    return finish(frame, SCHEMA, period)


def _text(parent: lxml.etree._Element, path: str) -> str | None:
    """Stripped text of `path` (or of its <value> child); None when absent or empty."""
    element = parent.find(path)
    if element is None:
        return None
    value = element.find("value")
    if value is not None:
        element = value
    elif len(element):
        return None  # only a <footnoteId> (or other children), no value
    text = "".join(element.itertext()).strip()
    return text or None


def _flag(parent: lxml.etree._Element, path: str) -> bool | None:
    """A 0/1/true/false element → bool; None when the element is absent."""
    element = parent.find(path)
    if element is None:
        return None
    raw = (_text(parent, path) or "").lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise MalformedFile(f"{NAME}: <{path}> is {raw!r}, not 0/1/true/false")


def _cik(raw: str | None, what: str) -> str | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise MalformedFile(f"{NAME}: {what} {raw!r} is not a CIK number")
    return str(int(raw))


def _date(raw: str | None, what: str) -> date | None:
    if raw is None:
        return None
    match = _DATE_RE.match(raw)
    try:
        if match is None:
            raise ValueError(raw)
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise MalformedFile(f"{NAME}: {what} {raw!r} is not a YYYY-MM-DD date") from None


def _number(parent: lxml.etree._Element, path: str) -> float:
    """An xs:decimal value (``.5`` included); NaN when only a footnote stands in for it."""
    raw = _text(parent, path)
    if raw is not None and _DECIMAL_RE.match(raw):
        return float(raw)
    try:
        value = parse_number(raw)
    except MalformedFile:
        raise MalformedFile(f"{NAME}: {path} {raw!r} is not a number") from None
    return float("nan") if value is None else value


def _choice(parent: lxml.etree._Element, path: str, allowed: tuple[str, ...]) -> str | None:
    raw = _text(parent, path)
    if raw is None:
        return None
    if raw.upper() not in allowed:
        raise MalformedFile(f"{NAME}: {path} {raw!r} is not one of {'|'.join(allowed)}")
    return raw.upper()


def _owner(element: lxml.etree._Element) -> _Owner:
    relation = element.find("reportingOwnerRelationship")
    flags = [
        bool(_flag(relation, tag)) if relation is not None else False
        for tag in ("isDirector", "isOfficer", "isTenPercentOwner")
    ]
    return _Owner(
        cik=_cik(_text(element, "reportingOwnerId/rptOwnerCik"), "rptOwnerCik"),
        name=_text(element, "reportingOwnerId/rptOwnerName"),
        director=flags[0],
        officer=flags[1],
        ten_percent=flags[2],
        title=_text(relation, "officerTitle") if relation is not None else None,
    )


def _footnotes(root: lxml.etree._Element) -> dict[str, str]:
    """Footnote id → text with whitespace collapsed (the texts run over several lines)."""
    return {
        note.get("id", ""): " ".join("".join(note.itertext()).split())
        for note in root.findall("footnotes/footnote")
    }


def _transaction(element: lxml.etree._Element, notes: dict[str, str], number: int) -> dict[str, object]:
    """The columns of one nonDerivativeTransaction."""
    when = _date(_text(element, "transactionDate"), f"transaction {number} transactionDate")
    if when is None:
        raise MalformedFile(f"{NAME}: transaction {number} has no transactionDate")
    ids = list(dict.fromkeys(ref.get("id", "") for ref in element.iter("footnoteId")))
    cited = [f"{note_id}: {notes[note_id]}" if note_id in notes else note_id for note_id in ids if note_id]
    return {
        "security_title": _text(element, "securityTitle"),
        "transaction_date": when,
        "code": _text(element, "transactionCoding/transactionCode"),
        "shares": _number(element, "transactionAmounts/transactionShares"),
        "price": _number(element, "transactionAmounts/transactionPricePerShare"),
        "acquired_disposed": _choice(
            element, "transactionAmounts/transactionAcquiredDisposedCode", ("A", "D")
        ),
        "shares_after": _number(element, "postTransactionAmounts/sharesOwnedFollowingTransaction"),
        "direct_indirect": _choice(element, "ownershipNature/directOrIndirectOwnership", ("D", "I")),
        "footnotes": " | ".join(cited) or None,
    }


SOURCE = Source(
    name=NAME,
    title="SEC EDGAR Form 4 insider transactions (US)",
    base_setting="sec_url",
    public_url="https://www.sec.gov",
    paths=paths,
    # "buys" keeps only the code-P rows (a few percent of a day's rows), so a year of them is cheap to load.
    tables={"main": Table(SCHEMA, parse), "buys": Table(SCHEMA, parse_purchases)},
    # Rows carry no filing date: the cluster rules read the last 14 days, the round-number rule the day alone, and
    # first_time_insider_buy a year of purchases (the buys table: a year of every row would be ~600k rows to
    # decode on every cycle; a year of purchases is a few tens of thousands).
    feeds={
        "form4": Feed(date_column=None, window=14),
        "form4_day": Feed(date_column=None, window="day"),
        "form4_buys": Feed(table="buys", date_column=None, window=365),
    },
    calendar="XNYS",
    # file_date is the period of report (first transaction), the index day is the filing date.
    check_file_date=False,
    fetch_day=DAY_KIND,
    before_pass="ticker-map",  # tickers are looked up by issuer CIK
    docs="data-formats.md §8",
)
