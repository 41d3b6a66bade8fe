"""`sec-13d-13g`: SEC Schedule 13D and 13G beneficial-ownership XML (filed on EDGAR since December 2024).

A day is EDGAR's daily form index (the same file sec-form4 reads), filtered to the Schedule 13D/13G form types, then
each filing's primary XML: root ``edgarSubmission`` with ``headerData`` (``submissionType``) and ``formData``.

- 13D (namespace ``…/schedule13D``): ``coverPageHeader/issuerInfo/issuerCIK`` and ``issuerCUSIP`` (or
  ``issuerCusips/issuerCusipNumber``), one ``reportingPersons/reportingPersonInfo`` per person with the powers,
  ``aggregateAmountOwned`` and ``percentOfClass`` directly inside, and ``items1To7/item4/transactionPurpose``.
- 13G (namespace ``…/schedule13g``): ``issuerCik``/``issuerCusip``, one ``coverPageHeaderReportingPersonDetails`` per
  person with the powers under ``reportingPersonBeneficiallyOwnedNumberOfShares``,
  ``reportingPersonBeneficiallyOwnedAggregateNumberOfShares`` and ``classPercent``; numbers carry ``.00``.

One row per reporting person. The filing date and accession are not inside the XML: ``parse(data)`` leaves them
empty and ``parse_filing`` (the day-fetcher, alerts.edgar) sets them from the index. The XML names no ticker:
``ticker`` is <NA> here and filled from SEC's ticker map by issuer CIK when the day is stored (alerts.ingest).
``file_date`` is the event date, not the filing date, so the source does not check it against the requested day.
"""

from __future__ import annotations

import re
from datetime import date

import lxml.etree
import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
from alerts.sources.common import empty_frame, parse_number, xml_root
from alerts.sources.sec_edgar import daily_index_path

NAME = "sec-13d-13g"
# A day is the daily index, then each filing's XML: the kind of day-fetcher alerts.edgar runs for it.
DAY_KIND = "edgar-13d"

SCHEMA: dict[str, str] = {
    "filed_date": "datetime64[ns]",  # the index day (NaT from parse())
    "form_type": "string",  # SCHEDULE 13D | SCHEDULE 13D/A | SCHEDULE 13G | SCHEDULE 13G/A
    "schedule": "string",  # 13D | 13G
    "amendment": "bool",
    "amendment_no": "Int64",
    "accession": "string",  # <NA> from parse(); set by parse_filing()
    "issuer_cik": "string",  # no leading zeros
    "issuer_name": "string",
    "issuer_cusip": "string",
    "ticker": "string",  # from the ticker map by issuer CIK; <NA> when the issuer has none
    "event_date": "datetime64[ns]",
    "person_name": "string",
    "person_cik": "string",  # no leading zeros; <NA> when the person has no CIK (13G never gives one)
    "percent_of_class": "float64",
    "shares_aggregate": "float64",
    "sole_voting": "float64",
    "shared_voting": "float64",
    "sole_dispositive": "float64",
    "shared_dispositive": "float64",
    "purpose": "string",  # 13D item 4 (purpose of the transaction); <NA> for a 13G
    "filer_cik": "string",  # the filing agent's or filer's CIK from headerData
}

# Index form types: the paper-era "SC 13D" names and, since December 2024, the XML "SCHEDULE 13D" names.
INDEX_FORM_TYPES: tuple[str, ...] = (
    "SC 13D",
    "SC 13D/A",
    "SC 13G",
    "SC 13G/A",
    "SCHEDULE 13D",
    "SCHEDULE 13D/A",
    "SCHEDULE 13G",
    "SCHEDULE 13G/A",
)
XML_FORM_TYPES: tuple[str, ...] = ("SCHEDULE 13D", "SCHEDULE 13D/A", "SCHEDULE 13G", "SCHEDULE 13G/A")
_NAMESPACES = {"schedule13d": "13D", "schedule13g": "13G"}
_DATE_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
# Per schedule: where the persons are, and each column's path inside a person.
_PERSONS = {"13D": "reportingPersons/reportingPersonInfo", "13G": "coverPageHeaderReportingPersonDetails"}
_PERSON_FIELDS: dict[str, dict[str, str]] = {
    "13D": {
        "sole_voting": "soleVotingPower",
        "shared_voting": "sharedVotingPower",
        "sole_dispositive": "soleDispositivePower",
        "shared_dispositive": "sharedDispositivePower",
        "shares_aggregate": "aggregateAmountOwned",
        "percent_of_class": "percentOfClass",
    },
    "13G": {
        "sole_voting": "reportingPersonBeneficiallyOwnedNumberOfShares/soleVotingPower",
        "shared_voting": "reportingPersonBeneficiallyOwnedNumberOfShares/sharedVotingPower",
        "sole_dispositive": "reportingPersonBeneficiallyOwnedNumberOfShares/soleDispositivePower",
        "shared_dispositive": "reportingPersonBeneficiallyOwnedNumberOfShares/sharedDispositivePower",
        "shares_aggregate": "reportingPersonBeneficiallyOwnedAggregateNumberOfShares",
        "percent_of_class": "classPercent",
    },
}


def parse(data: bytes) -> pd.DataFrame:
    """Parse one Schedule 13D/13G XML into one row per reporting person (filing date and accession empty)."""
    return parse_filing(data)


def parse_filing(
    data: bytes, accession: str | None = None, form_type: str | None = None, filed: date | None = None
) -> pd.DataFrame:
    """Parse one filing's XML; `form_type` is used only when the XML has no submissionType."""
    root = xml_root(data, "edgarSubmission", NAME)
    schedule = _schedule(root)
    submission = _text(root, "headerData/submissionType") or form_type
    if submission not in XML_FORM_TYPES or schedule not in submission:
        raise MalformedFile(
            f"{NAME}: submissionType {submission!r} is not a Schedule {schedule} ({'|'.join(XML_FORM_TYPES)})"
        )
    form = _first(root, "formData")
    cover = _first(form, "coverPageHeader") if form is not None else None
    issuer = _first(cover, "issuerInfo") if cover is not None else None
    if form is None or cover is None or issuer is None:
        raise MalformedFile(f"{NAME}: no formData/coverPageHeader/issuerInfo")
    issuer_cik = _cik(_text(issuer, "issuerCIK") or _text(issuer, "issuerCik"), "issuer CIK")
    if issuer_cik is None:
        raise MalformedFile(f"{NAME}: issuerInfo has no issuer CIK")
    persons = _all(form, _PERSONS[schedule])
    if not persons:
        raise MalformedFile(f"{NAME}: no reporting person ({_PERSONS[schedule]})")
    event = _date(
        _text(cover, "dateOfEvent" if schedule == "13D" else "eventDateRequiresFilingThisStatement"),
        "event date",
    )
    amendment_no = _number(cover, "amendmentNo")
    filing = {
        "filed_date": filed,
        "form_type": submission,
        "schedule": schedule,
        "amendment": submission.endswith("/A"),
        "amendment_no": None if pd.isna(amendment_no) else amendment_no,
        "accession": accession,
        "issuer_cik": issuer_cik,
        "issuer_name": _text(issuer, "issuerName"),
        "issuer_cusip": _cusip(issuer),
        "ticker": None,
        "event_date": event,
        "purpose": _text(form, "items1To7/item4/transactionPurpose") if schedule == "13D" else None,
        "filer_cik": _cik(_text(root, "headerData/filerInfo/filer/filerCredentials/cik"), "filer CIK"),
    }
    rows = [{**filing, **_person(person, schedule, number)} for number, person in enumerate(persons, start=1)]
    frame = pd.DataFrame.from_records(rows, columns=list(SCHEMA)) if rows else empty_frame(SCHEMA)
    return finish(
        frame, SCHEMA, event, layout=f"schedule{schedule}", reconciled=_reconciled(form, rows, schedule)
    )


def paths(day: date) -> list[str]:
    """The daily form index listing the day's filings (the XMLs themselves are found through it)."""
    return [daily_index_path(day)]


def filings(index_frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the Schedule 13D/13G rows (old and new form type names) of a parsed daily index."""
    return index_frame[index_frame["form_type"].isin(INDEX_FORM_TYPES)].reset_index(drop=True)


# --- XML helpers: elements are matched by local name (the default namespace differs between 13D and 13G) -------


def _local(element: lxml.etree._Element) -> str:
    return lxml.etree.QName(element).localname if isinstance(element.tag, str) else ""


def _all(parent: lxml.etree._Element | None, path: str) -> list[lxml.etree._Element]:
    """Every element at `path` (local names, "/"-separated) under `parent`."""
    level = [parent] if parent is not None else []
    for step in path.split("/"):
        level = [child for element in level for child in element if _local(child) == step]
    return level


def _first(parent: lxml.etree._Element | None, path: str) -> lxml.etree._Element | None:
    found = _all(parent, path)
    return found[0] if found else None


def _text(parent: lxml.etree._Element | None, path: str) -> str | None:
    """Whitespace-collapsed text at `path`; None when absent or empty."""
    element = _first(parent, path)
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _schedule(root: lxml.etree._Element) -> str:
    """13D or 13G from the root's namespace (…/schedule13D, …/schedule13g)."""
    namespace = lxml.etree.QName(root).namespace or ""
    schedule = _NAMESPACES.get(namespace.rstrip("/").rsplit("/", 1)[-1].lower())
    if schedule is None:
        raise MalformedFile(f"{NAME}: namespace {namespace!r} is neither …/schedule13D nor …/schedule13g")
    return schedule


def _cik(raw: str | None, what: str) -> str | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise MalformedFile(f"{NAME}: {what} {raw!r} is not a CIK number")
    return str(int(raw))


def _cusip(issuer: lxml.etree._Element) -> str | None:
    return (
        _text(issuer, "issuerCUSIP")
        or _text(issuer, "issuerCusip")
        or _text(issuer, "issuerCusips/issuerCusipNumber")
    )


def _date(raw: str | None, what: str) -> date | None:
    """An MM/DD/YYYY date (the schedules' format); None when absent."""
    if raw is None:
        return None
    match = _DATE_RE.match(raw)
    try:
        if match is None:
            raise ValueError(raw)
        return date(int(match.group(3)), int(match.group(1)), int(match.group(2)))
    except ValueError:
        raise MalformedFile(f"{NAME}: {what} {raw!r} is not an MM/DD/YYYY date") from None


def _number(parent: lxml.etree._Element | None, path: str) -> float:
    """A number (``10000000.00``, ``5.1``, ``22.2%``); NaN when absent."""
    raw = _text(parent, path)
    try:
        value = parse_number(raw.rstrip("%").strip() if raw is not None else None)
    except MalformedFile:
        raise MalformedFile(f"{NAME}: {path} {raw!r} is not a number") from None
    return float("nan") if value is None else value


def _person(person: lxml.etree._Element, schedule: str, number: int) -> dict[str, object]:
    name = _text(person, "reportingPersonName")
    if name is None:
        raise MalformedFile(f"{NAME}: reporting person {number} has no reportingPersonName")
    values: dict[str, object] = {
        "person_name": name,
        "person_cik": _cik(_text(person, "reportingPersonCIK"), f"person {number} CIK"),
    }
    for column, path in _PERSON_FIELDS[schedule].items():
        values[column] = _number(person, path)
    percent = values["percent_of_class"]
    if isinstance(percent, float) and not (0 <= percent <= 100 or pd.isna(percent)):
        raise MalformedFile(f"{NAME}: person {number} percent of class {percent} is outside 0–100")
    return values


def _reconciled(
    form: lxml.etree._Element, rows: list[dict[str, object]], schedule: str
) -> dict[str, tuple[float, float]]:
    """13G item 4 repeats the amount beneficially owned: the largest person's aggregate should equal it."""
    if schedule != "13G":
        return {}
    raw = _text(form, "items/item4/amountBeneficiallyOwned")
    try:
        stated = parse_number(raw)
    except MalformedFile:
        return {}  # item 4 often only points at the cover page rows in words
    if stated is None:
        return {}
    largest = max(float(str(row["shares_aggregate"])) for row in rows)
    return {"item4_shares": (largest, stated)}


SOURCE = Source(
    name=NAME,
    title="SEC EDGAR Schedule 13D/13G beneficial ownership (US)",
    base_setting="sec_url",
    public_url="https://www.sec.gov",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    # Rows carry their filing date: the rule reads the day's filings alone.
    feeds={"holders_13dg": Feed(date_column="filed_date", window="day")},
    calendar="XNYS",
    # file_date is the event date, the index day is the filing date.
    check_file_date=False,
    fetch_day=DAY_KIND,
    before_pass="ticker-map",  # tickers are looked up by issuer CIK
    docs="data-formats.md (SEC Schedule 13D/13G XML)",
)
