"""The alert: what fired, on which stock and date, the facts, a one-line why, and an identity fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

SEVERITIES = ("info", "notice", "warning", "critical")


@dataclass(frozen=True)
class Fact:
    """One number behind an alert, with its unit (``'%'``, ``'HKD'``, ``'shares'``, ``'σ'``...)."""

    name: str
    value: float | int | str
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON output."""
        return {"name": self.name, "value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class Alert:
    """A chat-agnostic alert produced by a rule.

    `identity` is the extra part of the identity beyond (rule, code, trade_date): a filing serial for DI
    notices, a level for southbound crossings, "" otherwise. The fingerprint never includes values, so a
    revised file with new numbers does not fire the same alert twice.
    """

    rule: str
    code: str
    trade_date: date
    severity: str
    why: str
    facts: tuple[Fact, ...] = ()
    name: str = ""
    links: tuple[str, ...] = ()
    published_at: datetime | None = None
    identity: str = ""
    market: str = "HK"
    parts: tuple[str, ...] = field(default=())  # for confluence: the fingerprints/rules it joins

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.published_at is not None and self.published_at.tzinfo is None:
            raise ValueError("published_at must be timezone-aware")

    @property
    def fingerprint(self) -> str:
        """Stable identity hash: rule, market, code, trade date and identity — never values."""
        key = "|".join((self.rule, self.market, self.code, self.trade_date.isoformat(), self.identity))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]

    def fact(self, name: str) -> Fact | None:
        """The fact called `name`, if any."""
        return next((f for f in self.facts if f.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON lines output and storage."""
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "market": self.market,
            "code": self.code,
            "name": self.name,
            "trade_date": self.trade_date.isoformat(),
            "severity": self.severity,
            "why": self.why,
            "facts": [f.as_dict() for f in self.facts],
            "links": list(self.links),
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "identity": self.identity,
            "parts": list(self.parts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Inverse of as_dict."""
        return cls(
            rule=data["rule"],
            code=data["code"],
            trade_date=date.fromisoformat(data["trade_date"]),
            severity=data["severity"],
            why=data["why"],
            facts=tuple(Fact(f["name"], f["value"], f.get("unit", "")) for f in data.get("facts", [])),
            name=data.get("name", ""),
            links=tuple(data.get("links", [])),
            published_at=datetime.fromisoformat(data["published_at"]) if data.get("published_at") else None,
            identity=data.get("identity", ""),
            market=data.get("market", "HK"),
            parts=tuple(data.get("parts", [])),
        )
