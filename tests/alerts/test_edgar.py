"""Tests for SEC EDGAR over HTTP (alerts.edgar): the declared User-Agent, the rate limit, and the day's Form 4
fetch against the local origin (data-formats.md §8)."""

from __future__ import annotations

import itertools
import json
import time
from datetime import date

import httpx
import pandas as pd
import pytest

import alerts.edgar as edgar_module
from alerts.edgar import DAY_FETCHERS, RateLimiter, check_user_agent, fetch_13d_day, fetch_form4_day
from alerts.errors import MalformedFile, NotPublishedYet
from alerts.fetch import fetch, make_client
from alerts.ingest import DAY_FETCHERS as ALL_DAY_FETCHERS
from alerts.sources import SOURCES, hsi_index_reviews, sec_13d_13g, sec_form4
from alerts.sources.sec_edgar import daily_index_path, dedupe_accessions, form4_filings, parse_daily_index
from config.settings import ConfigError
from tests.support.origin import Origin
from tests.support.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "sec-form4"
DAY = date(2020, 3, 18)
UA = "Positioning Bot ops@positioning-bot.example"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {col: str(dtype) for col, dtype in frame.dtypes.items()}


@pytest.fixture(scope="module")
def index_bytes() -> bytes:
    return fixture("form.20200318.idx")


def _listing(folder: str, names: list[tuple[str, str]]) -> bytes:
    """An index.json shaped like the fixture: (name, type) items."""
    items = [
        {"last-modified": "2020-03-18 21:24:36", "name": name, "type": kind, "size": ""}
        for name, kind in names
    ]
    return json.dumps(
        {
            "directory": {
                "item": items,
                "name": folder.rstrip("/"),
                "parent-dir": folder.rstrip("/").rsplit("/", 1)[0],
            }
        }
    ).encode()


def test_every_declared_day_kind_has_a_fetcher() -> None:
    kinds = {source.fetch_day for source in SOURCES.values() if source.fetch_day is not None}
    assert kinds == {sec_form4.DAY_KIND, sec_13d_13g.DAY_KIND, hsi_index_reviews.DAY_KIND}
    # EDGAR's kinds are fetched here; alerts.ingest joins them with the other networks' (alerts.hsi).
    assert kinds - {hsi_index_reviews.DAY_KIND} == set(DAY_FETCHERS)
    assert kinds <= set(ALL_DAY_FETCHERS)


# --- User-Agent and rate limit --------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", [UA, "Acme Bot ops@acme.hk", "positioning-bot/0.1 (contact: a.b@c.co.uk)"])
def test_user_agent_with_email_is_accepted(agent: str) -> None:
    assert check_user_agent(agent) == agent


@pytest.mark.parametrize("agent", ["", "positioning-bot/0.1", "ops at acme dot hk", "me@localhost"])
def test_user_agent_without_email_is_refused(agent: str) -> None:
    with pytest.raises(ConfigError, match="SEC_USER_AGENT") as info:
        check_user_agent(agent)
    assert isinstance(info.value, ValueError)


class FakeTime:
    """A clock that only moves when the limiter sleeps (optionally waking early)."""

    def __init__(self, early: float = 0.0) -> None:
        self.now = 100.0
        self.early = early
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds * (1 - self.early)


async def test_rate_limiter_spaces_starts_without_bursts() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(5):
        await limiter.wait()
        starts.append(fake.now)
    assert starts == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4])
    fake.now += 5.0  # idle for a while: no saved-up burst afterwards
    await limiter.wait()
    first = fake.now
    await limiter.wait()
    assert fake.now - first == pytest.approx(0.1)


async def test_rate_limiter_survives_early_wakeups() -> None:
    fake = FakeTime(early=0.5)
    limiter = RateLimiter(4, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(4):
        await limiter.wait()
        starts.append(fake.now)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(gap >= 0.25 - 1e-9 for gap in gaps), gaps
    assert len(fake.sleeps) > 3  # it had to sleep again after waking early


def test_rate_limiter_rejects_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


# --- fetch_form4_day over HTTP --------------------------------------------------------------------------------

# Three distinct Form 4/4A filings (five index rows: two are the same filings under another filer's CIK),
# plus a Form 3 and an 8-K that must not be fetched.
KEEP = (
    "0000899243-20-008926.txt",
    "0000899243-20-008928.txt",
    "0001638599-20-000321.txt",
    "0001209191-20-019882.txt",
    "0001564590-20-011604.txt",
)
GOOD_10X = ("/Archives/edgar/data/1770787/000089924320008928/", "doc4.xml", "374WaterForm4.xml")
GOOD_BAKER = (
    "/Archives/edgar/data/1551139/000163859920000321/",
    "wf-form4_158456284653329.xml",
    "form4_purchase_P.xml",
)
BROKEN_ARENA = "/Archives/edgar/data/1080709/000120919120019882/"


def three_filing_index(index_bytes: bytes) -> bytes:
    lines = index_bytes.split(b"\n")
    rows = [line for line in lines[10:] if any(name.encode() in line for name in KEEP)]
    rows = [
        row
        for row in rows
        if b"/1551139/" in row or b"0001638599-20-000321" not in row or b"/1087940/" in row
    ]
    return b"\n".join(lines[:10] + rows) + b"\n"


def serve_day(origin: Origin, index_bytes: bytes, broken: str = "truncated") -> None:
    """Serve the 3-filing index, the two good filings, and the 4/A filing broken in the way asked."""
    origin.add(daily_index_path(DAY), three_filing_index(index_bytes))
    for folder, xml_name, source in (GOOD_10X, GOOD_BAKER):
        origin.add(
            folder + "index.json", _listing(folder, [(xml_name, "text.gif"), ("xslF345X03", "folder.gif")])
        )
        origin.add(folder + xml_name, fixture(source))
    if broken != "no_index_json":
        names = [("0001209191-20-019882.txt", "text.gif")]
        if broken != "no_xml":
            names.append(("doc4.xml", "text.gif"))
        origin.add(BROKEN_ARENA + "index.json", _listing(BROKEN_ARENA, names))
    if broken == "truncated":
        origin.add(BROKEN_ARENA + "doc4.xml", fixture("form4_truncated.xml"))
    elif broken == "error_page":
        origin.add(BROKEN_ARENA + "doc4.xml", fixture("form4_error_page.html"), content_type="text/html")


def test_three_filing_index_has_what_the_fetch_tests_assume(index_bytes: bytes) -> None:
    frame = parse_daily_index(three_filing_index(index_bytes))
    assert frame["form_type"].tolist() == ["3"] * 3 + ["4"] * 5 + ["4/A"] * 2 + ["8-K"]
    assert dedupe_accessions(form4_filings(frame))["file_name"].tolist() == [
        "edgar/data/1770787/0000899243-20-008928.txt",
        "edgar/data/1551139/0001638599-20-000321.txt",
        "edgar/data/1080709/0001209191-20-019882.txt",
    ]


async def test_fetch_form4_day_parses_skips_and_is_polite(
    origin: Origin, index_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_day(origin, index_bytes)
    stamps: list[float] = []
    requests_seen: list[float] = []

    class RecordingLimiter(edgar_module.RateLimiter):
        """Stamps each release: where the ≤ 10/s policy is enforced, free of event-loop jitter after it."""

        async def wait(self) -> None:
            await super().wait()
            stamps.append(time.monotonic())

    monkeypatch.setattr(edgar_module, "RateLimiter", RecordingLimiter)

    async def stamp(request: httpx.Request) -> None:
        requests_seen.append(time.monotonic())

    # The client's own User-Agent has no e-mail: the declared one must replace it on every request.
    async with make_client() as client:
        client.event_hooks = {"request": [stamp]}
        frame = await fetch_form4_day(client, origin.url + "/", DAY, user_agent=UA)

    assert list(frame.columns) == list(sec_form4.SCHEMA)
    assert dtypes(frame) == sec_form4.SCHEMA
    assert frame["accession"].tolist() == [
        "0000899243-20-008928",
        "0001638599-20-000321",
        "0001638599-20-000321",
    ]
    assert frame["code"].tolist() == ["A", "P", "P"]
    assert frame["shares"].tolist() == [757756.0, 50000.0, 25000.0]
    assert frame["form_type"].tolist() == ["4", "4", "4"]
    assert frame.attrs["file_date"] == DAY
    assert frame.attrs["filings"] == 3
    assert frame.attrs["skipped"] == 1
    [skip] = frame.attrs["skipped_filings"]
    assert skip["accession"] == "0001209191-20-019882"
    assert skip["file_name"] == "edgar/data/1080709/0001209191-20-019882.txt"
    assert "not well-formed XML" in skip["error"]
    assert f"<{origin.url}{BROKEN_ARENA}doc4.xml>" in skip["error"]

    # Exactly index + (index.json + XML) per distinct filing; nothing for the Form 3, the 8-K or duplicate rows.
    paths = sorted(request.path for request in origin.requests)
    assert paths == sorted(
        [
            daily_index_path(DAY),
            GOOD_10X[0] + "index.json",
            GOOD_10X[0] + "doc4.xml",
            GOOD_BAKER[0] + "index.json",
            GOOD_BAKER[0] + GOOD_BAKER[1],
            BROKEN_ARENA + "index.json",
            BROKEN_ARENA + "doc4.xml",
        ]
    )
    assert origin.requests[0].path == daily_index_path(DAY)
    assert all(request.headers["User-Agent"] == UA for request in origin.requests)

    # At most 10 requests per second: starts at least 0.1 s apart, any 11 consecutive starts span >= 1 s.
    assert len(requests_seen) == 7  # every request went through the limiter
    assert len(stamps) == 7
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.095, gaps
    assert stamps[-1] - stamps[0] >= 0.6 - 0.01


@pytest.mark.parametrize(
    ("broken", "error"),
    [("error_page", "error page"), ("no_index_json", "HTTP 404"), ("no_xml", "lists no XML document")],
)
async def test_fetch_form4_day_skips_each_kind_of_broken_filing(
    origin: Origin, index_bytes: bytes, broken: str, error: str
) -> None:
    serve_day(origin, index_bytes, broken)
    async with make_client() as client:
        frame = await fetch_form4_day(client, origin.url, DAY, user_agent=UA, max_per_second=100.0)
    assert len(frame) == 3
    assert frame.attrs["skipped"] == 1
    assert error in frame.attrs["skipped_filings"][0]["error"]


async def test_fetch_form4_day_limit(origin: Origin, index_bytes: bytes) -> None:
    serve_day(origin, index_bytes)
    async with make_client() as client:
        frame = await fetch_form4_day(client, origin.url, DAY, user_agent=UA, max_per_second=100.0, limit=1)
    assert frame["accession"].tolist() == ["0000899243-20-008928"]
    assert frame.attrs["filings"] == 1
    assert frame.attrs["skipped"] == 0
    assert len(origin.requests) == 3


async def test_fetch_form4_day_empty_index(origin: Origin) -> None:
    origin.add(daily_index_path(DAY), fixture("empty-form.idx"))
    async with make_client() as client:
        frame = await fetch_form4_day(client, origin.url, DAY, user_agent=UA)
    assert frame.empty
    assert dtypes(frame) == sec_form4.SCHEMA
    assert frame.attrs["filings"] == 0
    assert len(origin.requests) == 1


@pytest.mark.parametrize("status", [404, 403])
async def test_missing_daily_index_is_not_published(origin: Origin, status: int) -> None:
    if status != 404:
        origin.add(daily_index_path(DAY), b"<html>Forbidden</html>", status=status)
    async with make_client() as client:
        with pytest.raises(NotPublishedYet) as info:
            await fetch_form4_day(client, origin.url, DAY, user_agent=UA)
    assert info.value.source == "sec-form4"
    assert len(origin.requests) == 1


async def test_broken_daily_index_is_malformed(origin: Origin) -> None:
    origin.add(daily_index_path(DAY), fixture("form4_error_page.html"))
    async with make_client() as client:
        with pytest.raises(MalformedFile) as info:
            await fetch_form4_day(client, origin.url, DAY, user_agent=UA)
    assert info.value.source == "sec-form4"
    assert info.value.url == origin.url + daily_index_path(DAY)


async def test_fetch_refuses_without_contact_email(origin: Origin) -> None:
    async with make_client() as client:
        with pytest.raises(ValueError, match="SEC_USER_AGENT"):
            await fetch_form4_day(client, origin.url, DAY, user_agent="positioning-bot/0.1")
    assert origin.requests == []


async def test_edgar_downloads_stream_under_the_byte_cap(origin: Origin) -> None:
    # EDGAR's rate-limited client streams like the plain one: an endless body is refused once it passes the cap
    # (read whole first, it would run into the deadline instead).
    origin.add("/Archives/endless.xml", chunks=lambda: (b"x" * 1000 for _ in itertools.count()))
    origin.add("/Archives/small.xml", b"x" * 5000)
    async with make_client() as raw:
        polite = edgar_module._PoliteClient(
            raw, "positioning-bot tests ops@example.com", edgar_module.RateLimiter(1000)
        )
        with pytest.raises(MalformedFile, match="too large"):
            await fetch(
                polite,
                origin.url + "/Archives/endless.xml",
                max_bytes=100_000,
                retries=0,  # type: ignore[arg-type]
                deadline=10,
            )
        got = await fetch(polite, origin.url + "/Archives/small.xml", max_bytes=10_000, retries=0)  # type: ignore[arg-type]
    assert len(got.content) == 5000
    assert {r.headers.get("User-Agent") for r in origin.requests} == {"positioning-bot tests ops@example.com"}


# --- fetch_13d_day over HTTP: Schedule 13D/13G ------------------------------------------------------------------

# Rows of the real 2020-03-18 index: a 13D listed under two filers (one filing), a 13D whose folder holds only a
# text document (paper era: passed over), a 13D/A whose XML is broken, and a Form 4 that must not be fetched.
SC_KEEP = (
    "0001193125-20-077295.txt",
    "0001085146-20-000995.txt",
    "0001104659-20-034979.txt",
    "0000899243-20-008928.txt",
)
SC_XML = "/Archives/edgar/data/80255/000119312520077295/"
SC_PAPER = "/Archives/edgar/data/1331693/000108514620000995/"
SC_BROKEN = "/Archives/edgar/data/1420565/000110465920034979/"


def schedule_index(index_bytes: bytes) -> bytes:
    lines = index_bytes.split(b"\n")
    rows = [line for line in lines[10:] if any(name.encode() in line for name in SC_KEEP)]
    return b"\n".join(lines[:10] + rows) + b"\n"


def serve_schedules(origin: Origin, index_bytes: bytes, broken: bytes) -> None:
    origin.add(daily_index_path(DAY), schedule_index(index_bytes))
    origin.add(
        SC_XML + "index.json",
        _listing(SC_XML, [("primary_doc.xml", "text.gif"), ("xslSCHEDULE_13D_X01", "folder.gif")]),
    )
    origin.add(SC_XML + "primary_doc.xml", (_FIXTURES / "sec-13d-13g" / "schedule13d.xml").read_bytes())
    origin.add(SC_PAPER + "index.json", _listing(SC_PAPER, [("0001085146-20-000995.txt", "text.gif")]))
    origin.add(SC_BROKEN + "index.json", _listing(SC_BROKEN, [("primary_doc.xml", "text.gif")]))
    origin.add(SC_BROKEN + "primary_doc.xml", broken, content_type="text/html")


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        (
            b'<?xml version="1.0"?><edgarSubmission xmlns="http://www.sec.gov/edgar/schedule13D"><headerData>',
            "not well-formed XML",
        ),
        (b"<html><head><title>Page Not Found</title></head><body>Not found</body></html>", "error page"),
        (b'<?xml version="1.0"?><ownershipDocument><issuer/></ownershipDocument>', "<ownershipDocument>"),
    ],
)
async def test_fetch_13d_day_parses_passes_over_paper_filings_and_skips_broken_ones(
    origin: Origin, index_bytes: bytes, broken: bytes, error: str
) -> None:
    serve_schedules(origin, index_bytes, broken)
    async with make_client() as client:
        frame = await fetch_13d_day(client, origin.url, DAY, user_agent=UA, max_per_second=100.0)
    assert list(frame.columns) == list(sec_13d_13g.SCHEMA) and dtypes(frame) == sec_13d_13g.SCHEMA
    assert frame["person_name"].tolist() == ["BML Investment Partners, L.P.", "Leonard Braden Michael"]
    assert set(frame["accession"]) == {"0001193125-20-077295"}
    assert set(frame["filed_date"]) == {pd.Timestamp(DAY)}
    assert frame.attrs["filings"] == 2 and frame.attrs["without_xml"] == 1 and frame.attrs["skipped"] == 1
    [skip] = frame.attrs["skipped_filings"]
    assert skip["accession"] == "0001104659-20-034979" and error in skip["error"]
    paths = sorted(request.path for request in origin.requests)
    assert paths == sorted(
        [
            daily_index_path(DAY),
            SC_XML + "index.json",
            SC_XML + "primary_doc.xml",
            SC_PAPER + "index.json",
            SC_BROKEN + "index.json",
            SC_BROKEN + "primary_doc.xml",
        ]
    )
    assert all(request.headers["User-Agent"] == UA for request in origin.requests)


async def test_fetch_13d_day_empty_index_and_broken_index(origin: Origin) -> None:
    origin.add(daily_index_path(DAY), fixture("empty-form.idx"))
    async with make_client() as client:
        frame = await fetch_13d_day(client, origin.url, DAY, user_agent=UA)
    assert frame.empty and dtypes(frame) == sec_13d_13g.SCHEMA and frame.attrs["filings"] == 0
    origin.add(daily_index_path(DAY), fixture("form4_error_page.html"))
    async with make_client() as client:
        with pytest.raises(MalformedFile) as info:
            await fetch_13d_day(client, origin.url, DAY, user_agent=UA)
    assert info.value.source == "sec-13d-13g"
    async with make_client() as client:
        with pytest.raises(ValueError, match="SEC_USER_AGENT"):
            await fetch_13d_day(client, origin.url, DAY, user_agent="positioning-bot/0.1")
    assert DAY_FETCHERS[sec_13d_13g.DAY_KIND] is edgar_module.schedule13_day
