"""The read model of the bot's commands: history up to a day, the alerts so far and their outcomes.

`DataView` is what /card, /flows, /history, charts and the console demo read. A view never changes once built (the
bot builds a new one when data change, see bot.deps), so what is derived from it is cached on it (`DataView.memo`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar, cast

import pandas as pd

from alerts.calendar import HK_TZ
from alerts.history import ALL_FEEDS, History
from alerts.model import Alert
from alerts.replay import Outcome
from alerts.store.frames import KNOWN_COLUMN
from bot.codes import chinese_names

_CJK = re.compile(r"[\u3400-\u9fff]")
MEMO_SIZE = 2048  # derived values kept per view (answers of about 2 KB, prepared charts), least recently used first out
T = TypeVar("T")


@dataclass
class DataView:
    """What commands read: history up to `today`, alerts so far (live and found by a backfill) and their outcomes."""

    history: History
    today: date
    alerts: list[Alert] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    # Fingerprints of the alerts a backfill's replay found (alerts.backfill): history, never pushed.
    historical: frozenset[str] = frozenset()
    _known: dict[str, pd.DataFrame] | None = field(default=None, repr=False)
    _names: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _memo: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict, repr=False, compare=False)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per view and key, then remembered (bounded, least recently used dropped first).

        A view never changes once built, so neither does anything derived from it: a /card costs tens of ms of
        pandas on the event loop, and under load the same few cards and charts are asked for again and again.
        """
        if key in self._memo:
            self._memo.move_to_end(key)
            return cast(T, self._memo[key])
        value = self._memo[key] = compute()
        if len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return value

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every feed cut at rows dated and published by the end of `today` (the demo's history runs past it, for
        outcomes): the SFC positions of a Friday are not shown before they are published a week later."""
        if self._known is None:
            cut = pd.Timestamp(self.today)
            known_by = pd.Timestamp(datetime.combine(self.today + timedelta(days=1), time(0), tzinfo=HK_TZ))
            self._known = {
                name: frame[(frame[ALL_FEEDS[name][2]] <= cut) & (frame[KNOWN_COLUMN] < known_by)]
                if name in ALL_FEEDS and KNOWN_COLUMN in frame
                else frame
                for name, frame in self.history.frames.items()
            }
        return self._known

    def names(self, lang: str = "en") -> dict[str, str]:
        """Code → display name: the latest English name in the data; Chinese where a source or alias gives one."""
        if lang in self._names:  # the view is rebuilt when data change, so its names can be kept
            return self._names[lang]
        out: dict[str, str] = {}
        for feed in ("southbound", "sfc", "quotes"):
            frame = self.history.frames[feed]
            out.update(zip(frame["code"].astype(str), frame["name"].astype(str), strict=True))
        if lang == "zh":
            out.update({c: n for c, n in out.items() if _CJK.search(n)})  # a Chinese page's names stay
            out.update({c: n for c, n in chinese_names().items() if c in out and not _CJK.search(out[c])})
        self._names[lang] = out
        return out
