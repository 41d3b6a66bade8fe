"""Build small .xlsx workbooks byte for byte (zipfile + XML text): the constructed hsi-index-reviews fixtures and
their broken variants. Deterministic: the same sheets always give the same bytes.

Strings go to the shared-strings table (as Excel writes them) or inline (``inline=True``, as many other writers
do); floats and ints are number cells; a `datetime.date` is a number cell (Excel serial) with a date style.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from xml.sax.saxutils import escape

Value = str | int | float | date | None
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_EPOCH = date(1899, 12, 30)


def column(index: int) -> str:
    """Zero-based column index → letters (0 → A, 27 → AB)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _cell(ref: str, value: Value, shared: dict[str, int] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return f'<c r="{ref}" s="1"><v>{(value - _EPOCH).days}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if shared is None:
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
    index = shared.setdefault(value, len(shared))
    return f'<c r="{ref}" t="s"><v>{index}</v></c>'


def _sheet(rows: Sequence[Sequence[Value]], shared: dict[str, int] | None) -> str:
    body = "".join(
        f'<row r="{r}">' + "".join(_cell(f"{column(c)}{r}", v, shared) for c, v in enumerate(row)) + "</row>"
        for r, row in enumerate(rows, start=1)
        if any(v is not None for v in row)
    )
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN}"><sheetData>{body}</sheetData></worksheet>'


def workbook(sheets: Mapping[str, Sequence[Sequence[Value]]], *, inline: bool = False) -> bytes:
    """An .xlsx holding `sheets` (name → rows of values) in order."""
    shared: dict[str, int] | None = None if inline else {}
    parts = {f"xl/worksheets/sheet{i}.xml": _sheet(rows, shared) for i, rows in enumerate(sheets.values(), 1)}
    names = "".join(
        f'<sheet name="{escape(name)}" sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(sheets, 1)
    )
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    n = len(sheets)
    rels += f'<Relationship Id="rId{n + 1}" Type="{REL}/styles" Target="styles.xml"/>'
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, n + 1)
    )
    if shared:
        rels += f'<Relationship Id="rId{n + 2}" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        overrides += (
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        )
        items = "".join(f"<si><t>{escape(text)}</t></si>" for text in shared)
        parts["xl/sharedStrings.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<sst xmlns="{MAIN}" count="{len(shared)}" uniqueCount="{len(shared)}">{items}</sst>'
        )
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    parts["[Content_Types].xml"] = (
        f'{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{overrides}</Types>"
    )
    parts["_rels/.rels"] = (
        f'{head}<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    parts["xl/workbook.xml"] = (
        f'{head}<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>{names}</sheets></workbook>'
    )
    parts["xl/_rels/workbook.xml.rels"] = f'{head}<Relationships xmlns="{PKG}">{rels}</Relationships>'
    # Style 1 is a date (built-in number format 14), so spreadsheet programs show the effective date as one.
    parts["xl/styles.xml"] = (
        f'{head}<styleSheet xmlns="{MAIN}"><fonts count="1"><font/></fonts><fills count="1"><fill/></fills>'
        '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>'
    )
    order = [
        "[Content_Types].xml",
        "_rels/.rels",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
    ]
    order += sorted(name for name in parts if name not in order)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=(2026, 5, 22, 17, 45, 10))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, parts[name].encode("utf-8"))
    return out.getvalue()


# The constructed review of 2026-05-22 (tests/fixtures/hsi-index-reviews/README.md): invented stocks and changes.
SUMMARY_ROWS: list[list[Value]] = [
    ["Hang Seng Indexes - Index Review Results (constructed fixture)"],
    [],
    ["Effective Date", date(2026, 6, 8)],
]
RESULT_ROWS: list[list[Value]] = [
    ["Index Code", "Action", "Stock Code", "Stock Name"],
    ["HSI", "Addition", 9633, "HARBOUR DRINKS"],
    ["HSI", "Deletion", 1044, "LANTAU CARE"],
    ["HSCEI", "Addition", 2015, "KOWLOON AUTO-W"],
    ["HSCEI", "Deletion", 1177, "PEAK PHARMA"],
    ["HSTECH", "Addition", "06690", "VICTORIA HOME"],
    ["HSCI", "Addition", 2590, "TSING YI BIO-B"],
    ["HSCI", "Addition", 2617, "SAI KUNG FOODS"],
    ["HSCI", "Addition", 3317, "MONG KOK RETAIL"],
    ["HSCI", "Addition", 6603, "CENTRAL PAY"],
    ["HSCI", "Addition", 6613, "SHA TIN LOGISTICS"],
    ["HSCI", "Addition", 9880, "TAI PO ROBOTICS"],
    ["HSCI", "Addition", 9887, "STANLEY GAMES"],
]


def review_workbook(**changes: object) -> bytes:
    """The constructed review workbook; keyword `summary`/`result` replace a sheet's rows, `inline` its strings."""
    summary = changes.get("summary", SUMMARY_ROWS)
    result = changes.get("result", RESULT_ROWS)
    sheets = changes.get("sheets") or {"Summary": summary, "Review Result": result}
    return workbook(sheets, inline=bool(changes.get("inline", False)))  # type: ignore[arg-type]
