"""History: every feed a source declares reaches the rules, as a RuleContext field or in RuleContext.feeds."""

from __future__ import annotations

from datetime import datetime

import pytest

from alerts import history
from alerts.calendar import HK_TZ
from alerts.rules.context import CONTEXT_FIELDS
from alerts.sources import FEEDS as SOURCE_FEEDS
from alerts.sources.common import empty_frame
from alerts.sources.hsi_index_reviews import SCHEMA as REVIEWS
from tests.alerts.rules.frames import DAY, SCHEMAS, frame


def test_feeds_come_from_the_source_records() -> None:
    # The six HK feeds that are RuleContext fields, and the newer ones that travel in RuleContext.feeds.
    assert set(history.FEEDS) == CONTEXT_FIELDS | {
        "shortable",
        "southbound_flow",
        "announcements",
        "index_reviews",
    }
    assert history.FEEDS["index_reviews"] == ("hsi-index-reviews", "main", "announced")
    assert history.FEEDS["southbound_flow"] == ("hkex-stock-connect-daily", "main", "date")
    assert set(history.EXTRA_FEEDS) == {"short", "short_midday"}  # only the card reads the hkex-short pages
    for name, (source, table, column) in history.ALL_FEEDS.items():
        declared_source, feed = SOURCE_FEEDS[name]
        assert (declared_source.name, feed.table, feed.date_column) == (source, table, column)


def test_a_feed_a_new_source_declares_travels_in_feeds(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = ("hkex-quotes", "main", "date")  # a stand-in for a new HK source's feed
    monkeypatch.setitem(history.FEEDS, "shortable", extra)
    monkeypatch.setitem(history.ALL_FEEDS, "shortable", extra)
    rows = frame("quotes", [{"date": DAY, "code": "00700", "turnover": 1.0}])
    frames = {kind: frame(kind, []) for kind in SCHEMAS} | {"index_reviews": empty_frame(REVIEWS)}
    loaded = history.History({**frames, "shortable": rows, "quotes": rows})
    ctx = loaded.context(datetime(2025, 11, 28, 9, 0, tzinfo=HK_TZ), day=DAY)
    assert list(ctx.feed("shortable")["code"]) == ["00700"]
    assert list(ctx.quotes["code"]) == ["00700"] and "shortable" not in CONTEXT_FIELDS
    with pytest.raises(KeyError, match="no feed 'nothing'"):
        ctx.feed("nothing")
