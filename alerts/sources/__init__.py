"""Registry of data sources by canonical name (the names the CLI and operators use)."""

from __future__ import annotations

from alerts.sources import (
    hkex_buybacks,
    hkex_di,
    hkex_quotes,
    hkex_short,
    hkex_southbound,
    sfc_short_positions,
)
from alerts.sources.base import Source, Table

SOURCES: dict[str, Source] = {
    module.SOURCE.name: module.SOURCE
    for module in (hkex_short, hkex_quotes, sfc_short_positions, hkex_buybacks, hkex_di, hkex_southbound)
}


def get_source(name: str) -> Source:
    """Return the registered source called `name` or raise KeyError listing the valid names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; choose one of: {', '.join(SOURCES)}") from None


__all__ = ["SOURCES", "Source", "Table", "get_source"]
