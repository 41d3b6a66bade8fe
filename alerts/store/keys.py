"""Every Redis key template and TTL the project uses, each with the reason it exists.

Keys are namespaced with `pb:` so a shared Redis can host other applications.
"""

from __future__ import annotations

from datetime import date

PREFIX = "pb:"

# Parsed canonical table of one source file: gzip'd JSON (pandas "split" orient) keyed by the file's own date.
# Kept ~2 years so rules always have >= 250 trading days of history without refetching.
FRAME_TTL_SECONDS = 800 * 24 * 3600


def frame(source: str, table: str, day: date) -> str:
    """Key of one stored table of a source for a date."""
    return f"{PREFIX}frame:{source}:{table}:{day.isoformat()}"


def frame_index(source: str, table: str) -> str:
    """ZSET of stored dates (member ISO date, score = proleptic ordinal) so ranges load without SCAN."""
    return f"{PREFIX}frames:{source}:{table}"


# Conditional-GET validators and content hash per URL: lets the next fetch send If-None-Match /
# If-Modified-Since and lets a re-fetch of identical bytes be recognised. Same lifetime as frames.
FETCH_STATE_TTL_SECONDS = FRAME_TTL_SECONDS


def fetch_state(url: str) -> str:
    """HASH of etag / last_modified / sha256 / fetched_at for one URL."""
    return f"{PREFIX}fetch:{url}"


def source_status(source: str) -> str:
    """HASH of the last successful fetch (date, rows, at) and last error (message, at) of a source; no TTL."""
    return f"{PREFIX}status:{source}"
