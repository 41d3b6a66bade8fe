"""`hkex-southbound`: Stock Connect southbound shareholding page (CCASS mutual market, t=hk)."""

from __future__ import annotations

import re
from datetime import date

import lxml.html
import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Source, Table, finish
from alerts.sources.common import (
    decode_text,
    html_tree,
    norm_code,
    parse_number,
    reject_error_page,
    require_closed_table,
)

NAME = "hkex-southbound"
PATH = "/sdw/search/mutualmarket.aspx?t=hk"

SCHEMA: dict[str, str] = {
    "date": "datetime64[ns]",
    "code": "string",
    "name": "string",
    "shares": "Int64",
    "pct_of_issued": "float64",
}

TABLE_ID = "mutualmarket-result"
# Cell classes of one result row, in order (same on the English and the Chinese page).
_CELL_CLASSES = ("col-stock-code", "col-stock-name", "col-shareholding", "col-shareholding-percent")
# "持股日期: 2019/01/25" (mutualmarket_c.aspx) / "Shareholding Date: 2025/11/20" (mutualmarket.aspx).
_DATE_RE = re.compile(r"(?:持股日期|Shareholding Date)\s*[:：]\s*(\d{4})/(\d{1,2})/(\d{1,2})", re.I)
# Inputs the page script sets before a postback; included even if a redesign makes them non-hidden.
_SCRIPT_INPUTS = ("sortBy", "sortDirection", "alertMsg")
_BODY_XPATH = './div[contains(concat(" ", normalize-space(@class), " "), " mobile-list-body ")]'


def parse(data: bytes) -> pd.DataFrame:
    """Parse the southbound shareholding page (English or Traditional Chinese)."""
    text = decode_text(data)
    reject_error_page(text, NAME)
    tree = html_tree(text, NAME)
    tables = tree.xpath(f'//table[@id="{TABLE_ID}"]')
    if not tables:
        raise MalformedFile(f"{NAME}: no result table id={TABLE_ID!r} (search form or error page only)")
    require_closed_table(text, TABLE_ID, NAME)
    day = _shareholding_date(tree)
    rows = [_row(tr, n) for n, tr in enumerate(tables[0].xpath("./tbody/tr[td] | ./tr[td]"), start=1)]
    if not rows:
        # ChinaClear always holds some southbound stock: an empty list means the page did not render.
        raise MalformedFile(f"{NAME}: result table has no rows")
    frame = pd.DataFrame(rows, columns=["code", "name", "shares", "pct_of_issued"])
    frame.insert(0, "date", pd.Timestamp(day))
    return finish(frame, SCHEMA, day)


def form_fields(data: bytes) -> dict[str, str]:
    """Hidden ASP.NET inputs (+ sortBy/sortDirection/alertMsg) of the page's form, name → value."""
    tree = html_tree(decode_text(data), NAME)
    viewstate = tree.xpath('//input[@name="__VIEWSTATE"]')
    if not viewstate:
        raise MalformedFile(f"{NAME}: no __VIEWSTATE input (not the ASP.NET search page)")
    forms = viewstate[0].xpath("ancestor::form[1]")
    scope = forms[0] if forms else tree
    fields: dict[str, str] = {}
    for element in scope.xpath(".//input[@name]"):
        name = element.get("name")
        if (element.get("type") or "text").lower() == "hidden" or name in _SCRIPT_INPUTS:
            fields[name] = element.get("value") or ""
    return fields


def post_fields(data: bytes, day: date) -> dict[str, str]:
    """Form fields to POST to the page (fetched by GET) for the holdings on `day`."""
    fields = form_fields(data)
    fields.update(
        txtShareholdingDate=f"{day:%Y/%m/%d}",
        btnSearch="Search",
        sortBy="stockcode",
        sortDirection="asc",
    )
    fields.setdefault("alertMsg", "")
    return fields


def _shareholding_date(tree: lxml.html.HtmlElement) -> date:
    """The shareholding date printed in the result heading."""
    for heading in tree.xpath('//h2[contains(concat(" ", normalize-space(@class), " "), " ccass-heading ")]'):
        match = _DATE_RE.search(heading.text_content())
        if match:
            year, month, day = (int(part) for part in match.groups())
            return date(year, month, day)
    raise MalformedFile(f"{NAME}: no 'Shareholding Date' heading")


def _row(tr: lxml.html.HtmlElement, n: int) -> tuple[str, str, float | None, float | None]:
    """One result row → (code, name, shares, pct); checks the four cells' classes."""
    cells = tr.xpath("./td")
    classes = tuple(
        next((c for c in (td.get("class") or "").split() if c.startswith("col-")), "") for td in cells
    )
    if classes != _CELL_CLASSES:
        raise MalformedFile(f"{NAME}: row {n} has cells {list(classes)}, expected {list(_CELL_CLASSES)}")
    values = []
    for td in cells:
        bodies = td.xpath(_BODY_XPATH)
        if len(bodies) != 1:
            raise MalformedFile(f"{NAME}: row {n} cell {td.get('class')!r} has no mobile-list-body")
        values.append(" ".join(bodies[0].text_content().split()))
    raw_code, name, raw_shares, raw_pct = values
    shares = parse_number(raw_shares)
    if shares is None or not name:
        raise MalformedFile(f"{NAME}: row {n} lacks a name or a shareholding: {values}")
    return norm_code(raw_code), name, shares, parse_number(raw_pct.removesuffix("%").strip())


def paths(day: date) -> list[str]:
    """The page has one URL; other dates are asked for with the page's form POST (see alerts.ingest)."""
    return [PATH]


SOURCE = Source(
    name=NAME,
    title="Stock Connect southbound shareholding (CCASS)",
    base_setting="hkexnews_sdw_url",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    form_for_date=post_fields,
)
