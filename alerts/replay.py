"""Replay the rules day by day over history and measure what prices did after each alert."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from alerts.calendar import HK_TZ, previous_sessions, sessions_between
from alerts.history import History
from alerts.model import Alert
from alerts.rules import Note, RuleParams, evaluate, kind

HORIZONS = (1, 5, 20)
NY_TZ = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Outcome:
    """Close-to-close moves after an alert's trade date (None where prices do not reach that far)."""

    base_close: float | None
    moves: dict[int, float | None]


@dataclass
class ReplayResult:
    """Everything a replay produced, in the order it became known."""

    alerts: list[tuple[date, Alert]] = field(default_factory=list)  # (day it could first be pushed, alert)
    notes: list[tuple[date, Note]] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # by fingerprint
    problems: list[str] = field(default_factory=list)
    days: list[date] = field(
        default_factory=list
    )  # sessions in the window plus other days something was pushed
    start: date | None = None  # the window, for base rates
    end: date | None = None
    closes: pd.DataFrame | None = field(default=None, repr=False)


def expected_direction(alert: Alert) -> int | None:
    """+1 when the alert reads as supportive for the price, -1 when pressuring, None when it says neither.

    Each alert kind declares its direction in its rule's spec (alerts.rules.registry)."""
    found = kind(alert.rule)
    return found.direction(alert) if found is not None else None


# HKEX and the US regular session both close at 16:00 local time: a file published after it can only be acted on
# from the next session, a file published before it (SFC at 09:00, buybacks at 06:00) from that day's session.
MARKET_CLOSE = time(16, 0)


def _judged(alerts: list[Alert], result: ReplayResult) -> list[tuple[int, float]]:
    """(expected direction, 5-session move) of the alerts that state a direction and moved."""
    pairs = [(expected_direction(a), result.outcomes[a.fingerprint].moves[5]) for a in alerts]
    return [(d, m) for d, m in pairs if d is not None and m is not None and m != 0]


def base_day(alert: Alert) -> date:
    """The day whose close an alert's outcome is measured from: the last close a reader saw before the alert.

    That is the trade date, unless the file came out later: an SFC position is published a week after its date
    and a director's dealing days after the trade, and measuring from the trade date would credit the rule with
    moves nobody could have acted on.
    """
    if alert.published_at is None:
        return alert.trade_date
    local = alert.published_at  # in its source's own timezone (HK or New York)
    seen = local.date() if local.time() >= MARKET_CLOSE else local.date() - timedelta(days=1)
    if seen <= alert.trade_date:
        return alert.trade_date
    # A Monday-morning file was last preceded by Friday's close: name the session whose close is used.
    return max(
        alert.trade_date, previous_sessions(seen, 1, calendar="XNYS" if alert.market == "US" else "XHKG")[0]
    )


def outcome_of(closes: pd.DataFrame, alert: Alert) -> Outcome:
    """Moves after `alert`, from the close on (or last before) its `base_day`."""
    return outcome(closes, alert.code, base_day(alert))


def outcome(closes: pd.DataFrame, code: str, trade_date: date) -> Outcome:
    """Moves of `code` 1/5/20 sessions after `trade_date`, from the close on (or last before) that date."""
    if code not in closes.columns:
        return Outcome(None, {h: None for h in HORIZONS})
    series = closes[code].dropna()
    position = (
        int(np.searchsorted(series.index.to_numpy(), np.datetime64(trade_date, "ns"), side="right")) - 1
    )
    if position < 0:
        return Outcome(None, {h: None for h in HORIZONS})
    base = float(series.iloc[position])
    moves: dict[int, float | None] = {}
    for horizon in HORIZONS:
        later = position + horizon
        moves[horizon] = float(series.iloc[later] / base - 1.0) if later < len(series) and base else None
    return Outcome(base, moves)


def replay(
    history: History, start: date, end: date, params: RuleParams, codes: frozenset[str] | None = None
) -> ReplayResult:
    """Run the rules at every publication event whose moment falls in [start, end], in time order.

    Each event sees only rows published by its moment; an alert belongs to the first event that produces its
    fingerprint (revisions don't repeat), and its `published_at` becomes that event's moment: when a live bot
    would have pushed it. The alert's evaluation day is that moment's local date.
    """
    result = ReplayResult(problems=list(history.problems), start=start, end=end, closes=history.closes())
    seen: set[str] = set()
    noted: set[tuple[date, Note]] = set()
    recent: list[Alert] = []
    for moment, day in history.events(start, end):
        evaluation = evaluate(
            history.context(moment, day=day, recent_alerts=tuple(recent[-500:]), codes=codes), params
        )
        for found in evaluation.alerts:
            if found.fingerprint in seen:
                continue
            seen.add(found.fingerprint)
            alert = replace(found, published_at=moment.astimezone(_zone(found)))
            recent.append(alert)
            result.alerts.append((known_day(alert), alert))
            result.outcomes[alert.fingerprint] = outcome_of(result.closes, alert)
        for note in evaluation.notes:
            if (day, note) not in noted:  # several events of a day meet the same gap
                noted.add((day, note))
                result.notes.append((day, note))
    pushed = {d for d, _ in result.alerts}
    result.days = sorted(set(sessions_between(start, end)) | {d for d in pushed if start <= d <= end})
    return result


def _zone(alert: Alert) -> tzinfo:
    """The timezone an alert's moments are shown in: its source's (from the rule), else its market's."""
    if alert.published_at is not None and alert.published_at.tzinfo is not None:
        return alert.published_at.tzinfo
    return NY_TZ if alert.market == "US" else HK_TZ


def known_day(alert: Alert) -> date:
    """The local date an alert could first have been pushed (its trade date when no moment is known)."""
    return alert.published_at.date() if alert.published_at is not None else alert.trade_date


@dataclass(frozen=True)
class RuleSummary:
    """Per-rule figures over a replay."""

    rule: str
    count: int
    median: dict[int, float | None]
    hit_rate: float | None  # share of 5-session moves in the rule's expected direction
    hits_counted: int
    base_rate: float | None = (
        None  # the same stocks' 5-session moves in that direction, on every window session
    )
    base_counted: int = 0


def base_rate(
    closes: pd.DataFrame | None, alerts: Iterable[Alert], start: date | None, end: date | None
) -> tuple[float | None, int]:
    """Share of the alerts' stocks' 5-session moves, from every session close in [start, end], in each alert's
    direction, and how many moves were judged: what a hit rate must beat to mean anything."""
    if closes is None or start is None or end is None:
        return None, 0
    pairs = {
        (a.code, d) for a in alerts if (d := expected_direction(a)) is not None and a.code in closes.columns
    }
    hits = judged = 0
    lo, hi = np.datetime64(start, "ns"), np.datetime64(end, "ns")
    for code, direction in sorted(pairs):
        series = closes[code].dropna()
        values, index = series.to_numpy(dtype="float64"), series.index.to_numpy(dtype="datetime64[ns]")
        with np.errstate(all="ignore"):
            moves = values[5:] / values[:-5] - 1.0 if len(values) > 5 else np.array([])
        inside = (index[: len(moves)] >= lo) & (index[: len(moves)] <= hi)
        moves = moves[inside & np.isfinite(moves) & (moves != 0)]
        hits += int((np.sign(moves) == direction).sum())
        judged += len(moves)
    return (hits / judged if judged else None), judged


def summarize(result: ReplayResult) -> list[RuleSummary]:
    """Count, median forward move per horizon and 5-session hit rate, per rule."""
    by_rule: dict[str, list[Alert]] = {}
    for _, alert in result.alerts:
        by_rule.setdefault(alert.rule, []).append(alert)
    out = []
    for rule in sorted(by_rule):
        alerts = by_rule[rule]
        medians = {h: _median(result.outcomes[a.fingerprint].moves[h] for a in alerts) for h in HORIZONS}
        judged = _judged(alerts, result)
        hit_rate = sum(1 for d, m in judged if np.sign(m) == d) / len(judged) if judged else None
        base, counted = base_rate(result.closes, alerts, result.start, result.end)
        out.append(RuleSummary(rule, len(alerts), medians, hit_rate, len(judged), base, counted))
    return out


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def format_text(result: ReplayResult, start: date, end: date, max_notes: int = 30) -> str:
    """Human-readable replay: alerts with forward moves, notes, problems, and the per-rule summary."""
    lines = [
        f"Replay {start.isoformat()} .. {end.isoformat()}: {len(result.days)} session(s), "
        f"{len(result.alerts)} alert(s)"
    ]
    for day, alert in result.alerts:
        moves = result.outcomes[alert.fingerprint].moves
        after = "  ".join(f"{h}d {_pct(moves[h])}" for h in HORIZONS)
        lines.append(f"{alert.trade_date.isoformat()}  {alert.code:<6}  {alert.rule:<30}  {alert.why}")
        seen_on = "" if day == alert.trade_date else f"  (known {day.isoformat()})"
        if alert.published_at is not None:
            seen_on = f"  (known {alert.published_at:%Y-%m-%d %H:%M})"
        if base_day(alert) != alert.trade_date:  # published later than traded: moves count from then
            seen_on += f"  (from the {base_day(alert).isoformat()} close)"
        lines.append(f"{'':20}after: {after}{seen_on}")
    if result.notes:
        lines.append(f"Notes ({len(result.notes)}): where a rule could not judge")
        for day, note in result.notes[:max_notes]:
            lines.append(f"  {day.isoformat()}  {note.code:<6}  {note.rule:<30}  {note.reason}")
        if len(result.notes) > max_notes:
            lines.append(f"  ... and {len(result.notes) - max_notes} more")
    for problem in result.problems:
        lines.append(f"Problem: {problem}")
    lines.append(
        "Summary per rule (forward close-to-close moves; hit = 5-session move in the rule's direction)"
    )
    lines.append(
        f"  {'rule':<30} {'count':>5} {'med 1d':>8} {'med 5d':>8} {'med 20d':>8} {'hit rate 5d':>12} "
        f"{'base rate 5d':>14}"
    )
    for row in summarize(result):
        hit = "n/a" if row.hit_rate is None else f"{row.hit_rate * 100:.0f}% of {row.hits_counted}"
        base = "n/a" if row.base_rate is None else f"{row.base_rate * 100:.0f}% of {row.base_counted}"
        lines.append(
            f"  {row.rule:<30} {row.count:>5} {_pct(row.median[1]):>8} {_pct(row.median[5]):>8} "
            f"{_pct(row.median[20]):>8} {hit:>12} {base:>14}"
        )
    lines.append(
        "  (base rate: the same stocks' 5-session moves from every session close in the window, "
        "in the rule's direction)"
    )
    return "\n".join(lines) + "\n"


def json_lines(result: ReplayResult) -> list[dict[str, object]]:
    """One object per alert, note, problem and per-rule summary row (the CLI prints one per line)."""
    out: list[dict[str, object]] = []
    known = {a.fingerprint: a for _, a in result.alerts}
    for day, alert in result.alerts:
        moves = result.outcomes[alert.fingerprint].moves
        parts = [
            {
                "fingerprint": f,
                "rule": known[f].rule if f in known else None,
                "trade_date": known[f].trade_date.isoformat() if f in known else None,
                "known_at": _iso(known[f].published_at) if f in known else None,
            }
            for f in alert.parts
        ]
        out.append(
            {
                "type": "alert",
                "evaluated_on": day.isoformat(),
                **alert.as_dict(),
                "known_at": _iso(alert.published_at),
                "parts_known": parts,
                "base_day": base_day(alert).isoformat(),
                "forward_moves": {f"{h}d": moves[h] for h in HORIZONS},
            }
        )
    out.extend(
        {"type": "note", "date": day.isoformat(), "rule": n.rule, "code": n.code, "reason": n.reason}
        for day, n in result.notes
    )
    out.extend({"type": "problem", "message": p} for p in result.problems)
    out.extend(
        {
            "type": "summary",
            "rule": s.rule,
            "count": s.count,
            "median_forward_moves": {f"{h}d": s.median[h] for h in HORIZONS},
            "hit_rate_5d": s.hit_rate,
            "hits_counted": s.hits_counted,
            "base_rate_5d": s.base_rate,
            "base_counted": s.base_counted,
        }
        for s in summarize(result)
    )
    return out
