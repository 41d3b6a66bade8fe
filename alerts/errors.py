"""One hierarchy for everything that can go wrong with a source file.

SourceError
├── NotPublishedYet   the file is not out yet (placeholder page, 404 for a dated file, stale "today" page)
├── NotAvailable      the origin holds no file for that date any more (a today-only page showing a later day)
├── MalformedFile     the bytes are not the documented layout (truncated, HTML error page, changed columns)
└── FetchFailed       the network or server failed after retries (5xx, timeouts, unexpected status)

Each carries the source name and URL (or file path) when known, so logs say where it happened.
"""

from __future__ import annotations

from collections.abc import Sequence


class SourceError(Exception):
    """Base class: a source file could not be turned into a frame; nothing is stored."""

    def __init__(self, message: str, *, source: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.url = url

    def __str__(self) -> str:
        base = super().__str__()
        where = " ".join(
            part for part in (self.source and f"[{self.source}]", self.url and f"<{self.url}>") if part
        )
        return f"{base} {where}".rstrip()


class NotPublishedYet(SourceError):
    """The file for the requested date is not published yet (or never will be: a holiday)."""


class NotAvailable(SourceError):
    """The origin no longer serves the file for the requested date (e.g. a today-only page has moved on)."""


class MalformedFile(SourceError):
    """The bytes do not match the documented layout of the source.

    `expected` / `found` carry the evidence of a layout change (e.g. the header cells the parser knows and the
    ones the file has), so the admins' notice can show the difference; `layout` names the layout that was tried.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        url: str | None = None,
        expected: Sequence[str] | None = None,
        found: Sequence[str] | None = None,
        layout: str | None = None,
    ) -> None:
        super().__init__(message, source=source, url=url)
        self.expected = tuple(expected) if expected is not None else None
        self.found = tuple(found) if found is not None else None
        self.layout = layout


class FetchFailed(SourceError):
    """The origin did not deliver the file after retries."""
