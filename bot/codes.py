"""Turn what users type (1810, 01810, 1810.HK, HK1810, xiaomi, 小米, AAPL) into stock codes."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

_HK_RE = re.compile(r"^(?:HK)?\s*0*(\d{1,5})(?:\.HK)?$", re.IGNORECASE)
_US_RE = re.compile(r"^[A-Z]{1,5}(?:[./][A-Z])?$")


@cache
def aliases() -> dict[str, str]:
    """Alias → code table from config/aliases.toml (lower-cased keys)."""
    text = resources.files("config").joinpath("aliases.toml").read_text(encoding="utf-8")
    return {k.lower(): v for k, v in tomllib.loads(text)["hk"].items()}


@dataclass(frozen=True)
class Resolved:
    """A resolved code, or why not with near matches."""

    code: str | None
    market: str = "HK"
    suggestions: tuple[str, ...] = field(default=())


def resolve(text: str, names: Mapping[str, str] | None = None) -> Resolved:
    """Resolve one user token; `names` maps known codes to display names (for name search and checks)."""
    token = text.strip()
    if not token:
        return Resolved(None)
    match = _HK_RE.match(token)
    if match:
        number = int(match.group(1))
        code = str(number).zfill(5)
        if number == 0 or (names is not None and code not in names):
            return Resolved(None, suggestions=_near_codes(code, names or {}))
        return Resolved(code)
    lowered = token.lower()
    table = aliases()
    if lowered in table:
        return Resolved(table[lowered])
    by_name = {name.lower(): code for code, name in (names or {}).items() if name}
    if lowered in by_name:
        return Resolved(by_name[lowered])
    partial = sorted({code for name, code in by_name.items() if lowered in name})
    if len(partial) == 1:
        return Resolved(partial[0])
    if _US_RE.match(token) and token.upper() == token:
        return Resolved(token.upper(), market="US")
    candidates = list(table) + list(by_name)
    near = difflib.get_close_matches(lowered, candidates, n=3, cutoff=0.6)
    suggestions = tuple(dict.fromkeys(table.get(n) or by_name[n] for n in near)) or tuple(partial[:3])
    return Resolved(None, suggestions=suggestions)


def _near_codes(code: str, names: Mapping[str, str]) -> tuple[str, ...]:
    near = difflib.get_close_matches(code, list(names), n=3, cutoff=0.6)
    return tuple(near)


@cache
def chinese_names() -> dict[str, str]:
    """Code → Chinese short name from config/aliases.toml [names_zh] (the names HKEX's Chinese pages print)."""
    text = resources.files("config").joinpath("aliases.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text).get("names_zh", {}))
