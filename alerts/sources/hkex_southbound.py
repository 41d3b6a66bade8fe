"""`hkex-southbound`: Stock Connect southbound shareholding page (CCASS mutual market, t=hk).

Two search forms are known (data-formats.md §6 and §6'); the result table is the same under both:
- "ccass-2019": a submit button `btnSearch` and an `__EVENTVALIDATION` input (real Chinese page, 2019);
- "ccass-2026": the search button is a link running `__doPostBack('btnSearch', '')`, the form carries
  `__EVENTTARGET`/`__EVENTARGUMENT` and `originalShareholdingDate` and no `__EVENTVALIDATION` (real English
  northbound page t=sh, 2026/03/31; the t=hk page is the same ASP.NET page).
"""

from __future__ import annotations

import re
from datetime import date

import lxml.html
import pandas as pd

from alerts.errors import MalformedFile
from alerts.sources.base import Feed, Source, Table, finish
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

LAYOUT_2019 = "ccass-2019"
LAYOUT_2026 = "ccass-2026"
# What marks each form, for the evidence when a page carries neither.
_FORM_MARKERS = {
    LAYOUT_2019: "submit input btnSearch",
    LAYOUT_2026: "__EVENTTARGET / originalShareholdingDate input or a __doPostBack('btnSearch') link",
}


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
    # An unknown search form leaves `layout` unset rather than failing: the rows are still this date's table;
    # only asking for another date needs the form, and post_fields raises there.
    return finish(frame, SCHEMA, day, layout=form_layout(tree))


def form_layout(tree: lxml.html.HtmlElement) -> str | None:
    """Which known search form the page carries ("ccass-2019" / "ccass-2026"), or None."""
    # The search control decides: a submit button posts itself; a link posts back through __EVENTTARGET.
    if tree.xpath('//input[@name="btnSearch"][translate(@type, "SUBMIT", "submit")="submit"]'):
        return LAYOUT_2019
    postback = tree.xpath('//a[@id="btnSearch"][contains(@href, "__doPostBack")]')
    if postback or tree.xpath('//input[@name="__EVENTTARGET" or @name="originalShareholdingDate"]'):
        return LAYOUT_2026
    return None


def form_fields(data: bytes) -> dict[str, str]:
    """Hidden ASP.NET inputs (+ sortBy/sortDirection/alertMsg) of the page's form, name → value."""
    return _form_inputs(html_tree(decode_text(data), NAME))


def _form_inputs(tree: lxml.html.HtmlElement) -> dict[str, str]:
    """The hidden inputs (+ script-set inputs) of the form holding __VIEWSTATE."""
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
    """Form fields to POST to the page (fetched by GET) for the holdings on `day`, built from its own inputs."""
    tree = html_tree(decode_text(data), NAME)
    fields = _form_inputs(tree)
    layout = form_layout(tree)
    if layout is None:
        raise MalformedFile(
            f"{NAME}: no known search form (neither {' nor '.join(_FORM_MARKERS.values())})",
            expected=list(_FORM_MARKERS.values()),
            found=sorted(fields),
        )
    # Sorted by code whatever the page was left sorted by, so the rows come back in one order.
    fields.update(txtShareholdingDate=f"{day:%Y/%m/%d}", sortBy="stockcode", sortDirection="asc")
    fields.setdefault("alertMsg", "")
    if layout == LAYOUT_2019:
        fields["btnSearch"] = "Search"
    else:
        # The search link runs __doPostBack('btnSearch', ''): the server reads the event from these two inputs.
        # Only what the page carries is sent (no __EVENTVALIDATION: the 2026 page has none).
        fields.update(__EVENTTARGET="btnSearch", __EVENTARGUMENT="")
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
    public_url="https://www3.hkexnews.hk",
    paths=paths,
    tables={"main": Table(SCHEMA, parse)},
    feeds={"southbound": Feed()},
    form_for_date=post_fields,
)
