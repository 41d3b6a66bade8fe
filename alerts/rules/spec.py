"""One record per rule: what it reads, its thresholds, how it runs, and how each kind of alert it emits reads.

The engine, the live pipeline, replay's hit rates and the bot's rendering, /why, cards and charts all read these
records (`alerts.rules.registry`), so a new rule is one module exporting a `SPEC`, its thresholds table in
config/rules.toml, a table test and its message-catalogue entries (CONTRIBUTING.md walks through one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from alerts.model import Alert

if TYPE_CHECKING:  # the records only name these types; importing them here would tie spec to every rule
    from alerts.rules.context import RuleContext, RuleResult
    from alerts.rules.params import RuleParams

Market = Literal["HK", "US"]
# Which way the price "should" move after an alert, for hit rates: +1 up, -1 down, None when it says neither.
Direction = Callable[[Alert], int | None]
Signal = Callable[["RuleContext", "RuleParams"], "RuleResult"]
# A joining rule (confluence) also sees the alerts the signal rules found for the same evaluation.
Join = Callable[["RuleContext", "RuleParams", Sequence[Alert]], "RuleResult"]


def supportive(alert: Alert) -> int | None:
    """The alert reads as support for the price (a buyback, an insider buying, shorts covering)."""
    return 1


def neutral(alert: Alert) -> int | None:
    """The alert states no direction (market-wide swings, a confluence of mixed signals)."""
    return None


def pressure_unless_falling(*facts: str) -> Direction:
    """Pressure on the price (-1) unless the first present fact of `facts` is negative (then +1)."""

    def direction(alert: Alert) -> int | None:
        change = next((f for f in map(alert.fact, facts) if f is not None), None)
        return -1 if change is None or float(change.value) >= 0 else 1

    return direction


@dataclass(frozen=True)
class AlertKind:
    """One kind of alert (its `Alert.rule` id): how it is shown and scored, wherever it is shown.

    Messages come from the catalogue under the kind's id: ``rule.<id>.title``, ``rule.<id>.caveat``,
    ``why.<id>`` (the alert's sentence when the bot has no richer one) and ``ans.why.<id>.text`` (/why).
    """

    id: str
    emoji: str
    headline: tuple[str, ...]  # facts shown first, in this order; the rest follow
    direction: Direction = neutral
    chart: str | None = None  # the chart that tells the story of an HK alert ("short", "position", ...)

    @property
    def title_key(self) -> str:
        """Catalogue key of the kind's title."""
        return f"rule.{self.id}.title"

    @property
    def caveat_key(self) -> str:
        """Catalogue key of the kind's caveat line."""
        return f"rule.{self.id}.caveat"

    @property
    def why_key(self) -> str:
        """Catalogue key of the alert's sentence (formatted with its facts)."""
        return f"why.{self.id}"

    @property
    def explain_key(self) -> str:
        """Catalogue key of the /why explanation."""
        return f"ans.why.{self.id}.text"


@dataclass(frozen=True)
class RuleSpec:
    """A rule: its name, the alert kinds it emits, its threshold tables and how it runs.

    `signal` runs on a RuleContext; `join` runs after every signal rule of the same evaluation and sees their
    alerts. `feeds` are the history feeds it reads (`alerts.history.FEEDS` names); `triggers` are the sources whose
    new file makes it run (None: any source of its markets). `params` maps config/rules.toml tables to the frozen
    dataclasses holding them. `caveat_key` overrides the kinds' caveat for this market (US short volume). `any_day`
    rules also run on days without a session.
    """

    name: str
    kinds: tuple[AlertKind, ...]
    markets: tuple[Market, ...]
    params: Mapping[str, type] = field(default_factory=dict)
    signal: Signal | None = None
    join: Join | None = None
    feeds: tuple[str, ...] = ()
    triggers: tuple[str, ...] | None = None
    caveat_key: str | None = None
    # True for rules about publications rather than sessions (announcements): they run on days without an HK
    # session too, when every other rule is skipped.
    any_day: bool = False

    def __post_init__(self) -> None:
        if (self.signal is None) == (self.join is None):
            raise ValueError(f"rule {self.name}: give exactly one of signal or join")

    @property
    def ids(self) -> tuple[str, ...]:
        """The alert ids this rule emits."""
        return tuple(kind.id for kind in self.kinds)

    def runs_on(self, source: str, market: Market) -> bool:
        """Whether a new file of `source` (of `market`) makes this rule run."""
        return market in self.markets and (self.triggers is None or source in self.triggers)
