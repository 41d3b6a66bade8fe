"""Local data directories laid out like the source URLs (the bundled demo data, offline copies)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from alerts.sources import get_source


def local_path(root: Path, source: str, day: date, url_path: str) -> Path:
    """Where a directory keeps `source`'s file `url_path` for `day`.

    Dated URLs are kept at their own path (leading "/" stripped); URLs without a date (today-only pages) go
    under ``by-date/YYYY-MM-DD/``. A "?" in the path becomes "@" so the name is a valid file name everywhere.
    """
    relative = url_path.lstrip("/").replace("?", "@")
    if get_source(source).dated_url:
        return root / relative
    return root / "by-date" / day.isoformat() / relative
