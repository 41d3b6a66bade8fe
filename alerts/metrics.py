"""A minimal in-process metrics registry: counters and gauges with labels, rendered for Prometheus.

Thread-safe (one lock per registry) because python-telegram-bot and the fetch executor may update metrics from
threads other than the event loop's. Output follows the text exposition format 0.0.4 and is sorted, so the same
values always render to the same bytes.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelSet = tuple[tuple[str, str], ...]


def _label_set(labels: Mapping[str, str] | None) -> LabelSet:
    """Canonical (sorted) form of a label mapping; label names validated, values stringified."""
    items = sorted((str(k), str(v)) for k, v in (labels or {}).items())
    for name, _ in items:
        if not _LABEL.fullmatch(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
    return tuple(items)


def escape_label_value(value: str) -> str:
    """Escape a label value: backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    # HELP text escapes only backslash and newline (quotes stay as they are).
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Sample value as Prometheus writes it: integers without a fraction, +Inf/-Inf/NaN spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Metric:
    """One sample (a metric family's child for one label set)."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._value = 0.0

    @property
    def value(self) -> float:
        """Current value."""
        with self._lock:
            return self._value


class Counter(_Metric):
    """A value that only goes up (reset only by a process restart)."""

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (>= 0)."""
        if amount < 0 or math.isnan(amount):
            raise ValueError(f"a counter can only increase, got inc({amount})")
        with self._lock:
            self._value += amount


class Gauge(_Metric):
    """A value that can go up and down."""

    def set(self, value: float) -> None:
        """Set to `value`."""
        with self._lock:
            self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount`."""
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract `amount`."""
        with self._lock:
            self._value -= amount


@dataclass
class _Family:
    name: str
    kind: str  # counter | gauge
    help: str
    children: dict[LabelSet, _Metric] = field(default_factory=dict)


class Registry:
    """Metric families by name; `counter()`/`gauge()` return (creating on first use) the child for a label set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}

    def counter(self, name: str, help: str, labels: Mapping[str, str] | None = None) -> Counter:
        """The counter `name` with these labels."""
        child = self._child(name, "counter", help, labels)
        assert isinstance(child, Counter)
        return child

    def gauge(self, name: str, help: str, labels: Mapping[str, str] | None = None) -> Gauge:
        """The gauge `name` with these labels."""
        child = self._child(name, "gauge", help, labels)
        assert isinstance(child, Gauge)
        return child

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """Current value of one sample, None when it was never created (for /status and tests)."""
        key = _label_set(labels)
        with self._lock:
            family = self._families.get(name)
            child = family.children.get(key) if family else None
        return child.value if child else None

    def render(self) -> str:
        """All metrics in Prometheus text format 0.0.4, families and samples sorted."""
        with self._lock:
            snapshot = [
                (f.name, f.kind, f.help, sorted((k, c._value) for k, c in f.children.items()))
                for f in sorted(self._families.values(), key=lambda f: f.name)
            ]
        lines: list[str] = []
        for name, kind, help_text, samples in snapshot:
            lines.append(f"# HELP {name} {_escape_help(help_text)}")
            lines.append(f"# TYPE {name} {kind}")
            for label_set, value in samples:
                lines.append(f"{name}{_render_labels(label_set)} {format_value(value)}")
        return "".join(line + "\n" for line in lines)

    def _child(self, name: str, kind: str, help: str, labels: Mapping[str, str] | None) -> _Metric:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        key = _label_set(labels)
        with self._lock:
            family = self._families.get(name)
            if family is None:
                family = self._families[name] = _Family(name, kind, help)
            elif family.kind != kind:
                raise ValueError(f"metric {name} is a {family.kind}, not a {kind}")
            child = family.children.get(key)
            if child is None:
                child = family.children[key] = (Counter if kind == "counter" else Gauge)(self._lock)
            return child


def _render_labels(label_set: LabelSet) -> str:
    if not label_set:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in label_set) + "}"


METRICS = Registry()
