"""A small, strict reader of .xlsx workbooks (Office Open XML): sheet names and each sheet's cell values.

Standard library ``zipfile`` plus lxml (already a dependency), instead of adding openpyxl: the parsers need only
cell values (no styles, formulas or charts), and a reader this size keeps every failure a MalformedFile. It reads
``xl/workbook.xml`` (sheet names and relationship ids), ``xl/_rels/workbook.xml.rels`` (id → part),
``xl/sharedStrings.xml`` (when present) and the sheet parts. Cells: shared strings (``t="s"``), inline strings
(``t="inlineStr"``), formula strings (``t="str"``), booleans, errors and numbers (floats; dates stay Excel serial
numbers, as the style that marks them a date is not read). Cells are placed by their reference (``C7``), so
empty cells Excel leaves out come back as None.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

import lxml.etree

from alerts.errors import MalformedFile

Cell = str | float | bool | None
# Largest total of the parts read: a workbook of a few thousand rows is well under 1 MiB uncompressed.
MAX_UNPACKED = 64 * 1024 * 1024
_PARSER = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_REF_RE = re.compile(r"^([A-Z]{1,3})(\d+)$")
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _archive(data: bytes, what: str) -> zipfile.ZipFile:
    if not data.startswith(b"PK\x03\x04"):
        head = data[:200].decode("latin-1").strip()
        kind = "an HTML page" if head.startswith("<") else "not a zip archive"
        raise MalformedFile(f"{what}: {kind} ({head[:40]!r}) instead of an .xlsx workbook")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise MalformedFile(f"{what}: not a whole zip archive ({exc}); truncated?") from None
    if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
        raise MalformedFile(f"{what}: unpacks to more than {MAX_UNPACKED} bytes")
    return archive


def _xml(archive: zipfile.ZipFile, name: str, what: str) -> lxml.etree._Element:
    try:
        raw = archive.read(name)
    except KeyError:
        raise MalformedFile(f"{what}: the zip has no {name}: not an .xlsx workbook") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # bad CRC, cut or corrupt member
        raise MalformedFile(f"{what}: {name} does not unpack ({exc})") from None
    try:
        return lxml.etree.fromstring(raw, _PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise MalformedFile(f"{what}: {name} is not well-formed XML ({exc})") from None


def _text(element: lxml.etree._Element) -> str:
    """The text of a string item: its ``<t>`` runs joined, phonetic guides (``<rPh>``) left out."""
    return "".join(
        t.text or "" for t in element.iter("{*}t") if lxml.etree.QName(t.getparent()).localname != "rPh"
    )


def sheet_parts(data: bytes, what: str) -> dict[str, str]:
    """Sheet name → the zip member holding it, in workbook order."""
    archive = _archive(data, what)
    targets = {
        rel.get("Id"): rel.get("Target", "")
        for rel in _xml(archive, "xl/_rels/workbook.xml.rels", what).iter("{*}Relationship")
    }
    out: dict[str, str] = {}
    for sheet in _xml(archive, "xl/workbook.xml", what).iter("{*}sheet"):
        target = targets.get(sheet.get(_REL_ID))
        if not target:
            raise MalformedFile(f"{what}: sheet {sheet.get('name')!r} points at no part")
        out[sheet.get("name", "")] = (
            target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
        )
    return out


def read_sheet(data: bytes, name: str, what: str) -> list[list[Cell]]:
    """The rows of sheet `name` as lists of cell values (None for empty cells), top to bottom."""
    parts = sheet_parts(data, what)
    if name not in parts:
        raise MalformedFile(
            f"{what}: no sheet {name!r} (sheets: {list(parts)})", expected=[name], found=list(parts)
        )
    archive = _archive(data, what)
    shared = (
        [_text(item) for item in _xml(archive, "xl/sharedStrings.xml", what).iter("{*}si")]
        if "xl/sharedStrings.xml" in archive.namelist()
        else []
    )
    rows: dict[int, dict[int, Cell]] = {}
    for number, row in enumerate(_xml(archive, parts[name], what).iter("{*}row"), start=1):
        at = row.get("r", str(number))
        if not at.isdigit():
            raise MalformedFile(f"{what}: row number {at!r} is not a number")
        cells = rows.setdefault(int(at), {})
        for position, cell in enumerate(row.iter("{*}c")):
            cells[_column(cell.get("r"), position, what)] = _value(cell, shared, what)
    # Rows in sheet order, each as wide as its last cell; rows Excel leaves out (blank) are left out here too.
    return [[cells.get(c) for c in range(max(cells, default=-1) + 1)] for _, cells in sorted(rows.items())]


def _column(ref: str | None, position: int, what: str) -> int:
    """Zero-based column of a cell reference (``AB12`` → 27); cells without one follow their row order."""
    if ref is None:
        return position
    match = _REF_RE.match(ref)
    if match is None:
        raise MalformedFile(f"{what}: cell reference {ref!r} is not a column letter and a row number")
    index = 0
    for letter in match.group(1):
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _value(cell: lxml.etree._Element, shared: list[str], what: str) -> Cell:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find("{*}is")
        return _text(inline) if inline is not None else None
    raw = cell.findtext("{*}v")
    if raw is None or raw == "":
        return None
    try:
        if kind == "s":
            return shared[int(raw)]
        if kind == "b":
            return raw.strip() == "1"
        if kind in ("str", "e", "d"):
            return raw
        return float(raw)
    except (ValueError, IndexError):
        raise MalformedFile(f"{what}: cell {cell.get('r')} of type {kind!r} holds {raw!r}") from None
