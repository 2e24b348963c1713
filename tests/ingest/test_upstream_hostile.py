"""Entries a broken or hostile feed gives, served over loopback HTTP: a date more than
a day ahead is clamped to when first seen, with a warning (it must not sort first in
every feed for ever); an impossible year is refused with one line; a GUID listed twice
in one document is read once, the first, and logged once."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.areas import Gazetteer
from alerts.config import SourceConfig
from alerts.ingest import ingest_files
from alerts.ingest.upstream import ingest_feeds
from alerts.store import Store
from tests.support import NOW
from tests.support.advisory_files import write_advisory
from tests.support.feed_server import FeedServer

RSS_TYPE = {"Content-Type": "application/rss+xml"}


def rss(*items: tuple[str, str, str]) -> bytes:
    """An RSS feed of (guid, title, pubDate) items."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>https://news.example/{guid}</link><description>Residents of Medway.</description>"
        f"<pubDate>{date}</pubDate></item>"
        for guid, title, date in items
    )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>"
        f"<link>https://news.example/</link><description>d</description>{body}</channel></rss>"
    ).encode()


def test_an_entry_dated_2100_is_clamped_to_when_first_seen_and_stays_there(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    server.routes["/f.rss"] = (
        200,
        RSS_TYPE,
        rss(
            ("a", "From the future", "Wed, 01 Dec 2100 10:00:00 +0000"),
            ("b", "Tomorrow morning", "Thu, 26 Nov 2026 09:00:00 +0000"),
        ),  # within a day of NOW: kept
    )
    source = SourceConfig(feed=server.url("/f.rss"))
    report = ingest_feeds([source], sqlite_store, gazetteer, now=NOW, monotonic=time.monotonic)
    assert len(report.new) == 2 and report.ok
    future = [w for w in report.warnings if "in the future" in w]
    assert future == [
        f"{source.feed} entry a: dated 2100-12-01 10:00 UTC, more than a day in the future;"
        " taken as published when first seen"
    ]
    first, second = sqlite_store.advisories.find()  # newest first
    assert (first.title, first.published_at) == ("Tomorrow morning", NOW.replace(day=26, hour=9))
    assert (second.title, second.published_at) == ("From the future", NOW)

    # A later poll (the feed changed) keeps the time first seen, not the new clock.
    server.routes["/f.rss"] = (
        200,
        RSS_TYPE,
        server.routes["/f.rss"][2].replace(b"Residents", b"People"),
    )
    ingest_feeds(
        [source], sqlite_store, gazetteer, now=NOW + timedelta(hours=5), monotonic=time.monotonic
    )
    assert sqlite_store.advisories.get(second.id).published_at == NOW


@pytest.mark.parametrize(
    "date", ["Fri, 31 Dec 9999 10:00:00 +0000", "Mon, 01 Jan 1066 10:00:00 +0000"]
)
def test_an_entry_with_an_impossible_year_is_refused_in_one_line(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, date: str
) -> None:
    server.routes["/f.rss"] = (
        200,
        RSS_TYPE,
        rss(("x", "Placeholder", date), ("y", "Fine", "Tue, 24 Nov 2026 10:00:00 +0000")),
    )
    source = SourceConfig(feed=server.url("/f.rss"))
    report = ingest_feeds([source], sqlite_store, gazetteer, now=NOW, monotonic=time.monotonic)
    assert len(report.new) == 1
    (error,) = report.rejected
    year = date.split()[3]
    assert str(error) == (
        f"{source.feed} entry x: published date {date!r} has an impossible year {int(year)} "
        "(the feed's publisher must correct it; the entry is read again at the next poll)"
    )
    assert "\n" not in str(error)


def test_a_file_dated_more_than_a_day_ahead_is_clamped_with_a_warning(
    sqlite_store: Store, gazetteer: Gazetteer, advisory_dir: Path
) -> None:
    path = write_advisory(
        advisory_dir,
        "future",
        title="Embargo left in",
        url="https://a.example/future/",
        date="09:00 01/12/2100",
    )
    report = ingest_files([path], sqlite_store, gazetteer, now=NOW)
    assert report.new and not report.rejected
    assert (
        f"{path}: publish.date 09:00 01/12/2100 is more than a day in the future; taken as published when first seen (12:00 25/11/2026)"
        in report.warnings
    )
    assert sqlite_store.advisories.get("https://a.example/future/").published_at == NOW


def test_a_file_with_an_impossible_year_is_refused_naming_the_line(
    sqlite_store: Store, gazetteer: Gazetteer, advisory_dir: Path
) -> None:
    path = write_advisory(
        advisory_dir, "y9999", title="T", url="https://a.example/y/", date="14:30 18/12/9999"
    )
    (error,) = ingest_files([path], sqlite_store, gazetteer, now=NOW).rejected
    assert str(error) == (
        f"{path}:4: impossible date '14:30 18/12/9999': impossible year 9999 (an advisory is dated 1900 to 2200)"
        " (write it as 'HH:MM DD/MM/YYYY', local UK time)"
    )


def test_a_guid_listed_twice_in_one_document_the_first_wins_logged_once(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/f.rss"] = (
        200,
        RSS_TYPE,
        rss(
            ("dup", "The real appeal", "Tue, 24 Nov 2026 10:00:00 +0000"),
            ("other", "Another", "Tue, 24 Nov 2026 09:00:00 +0000"),
            ("dup", "HIJACKED: call 0900 123 456", "Tue, 24 Nov 2026 11:00:00 +0000"),
            ("dup", "HIJACKED again", "Tue, 24 Nov 2026 11:00:00 +0000"),
        ),
    )
    source = SourceConfig(feed=server.url("/f.rss"))
    with caplog.at_level("WARNING"):
        report = ingest_feeds([source], sqlite_store, gazetteer, now=NOW, monotonic=time.monotonic)
    assert len(report.new) == 2 and report.ok
    assert sorted(a.title for a in sqlite_store.advisories.find()) == ["Another", "The real appeal"]
    repeats = [
        r.getMessage() for r in caplog.records if "repeat an earlier entry's id" in r.getMessage()
    ]
    assert repeats == [
        f"{source.feed}: 2 entries repeat an earlier entry's id; the first of each is read ({source.feed}#dup)"
    ]

    # The next versions of the document repeat it still: not logged again at each poll
    # (the report of each run still says so), until the feed's warnings change.
    for poll in (1, 2):
        body = server.routes["/f.rss"][2].replace(b"Another", b"Another " + str(poll).encode())
        server.routes["/f.rss"] = (200, RSS_TYPE, body)
        caplog.clear()
        with caplog.at_level("WARNING"):
            again = ingest_feeds(
                [source],
                sqlite_store,
                gazetteer,
                now=NOW + poll * timedelta(minutes=10),
                monotonic=time.monotonic,
            )
        assert [w for w in again.warnings if "repeat an earlier" in w] and not [
            r for r in caplog.records if "repeat an earlier entry's id" in r.getMessage()
        ]
    server.routes["/f.rss"] = (
        200,
        RSS_TYPE,
        rss(("dup", "The real appeal", "Tue, 24 Nov 2026 10:00:00 +0000")),
    )
    with caplog.at_level("WARNING"):
        assert not ingest_feeds(
            [source],
            sqlite_store,
            gazetteer,
            now=NOW + timedelta(hours=1),
            monotonic=time.monotonic,
        ).warnings
    server.routes["/f.rss"] = (
        200,
        RSS_TYPE,
        rss(
            ("dup", "A", "Tue, 24 Nov 2026 10:00:00 +0000"),
            ("dup", "B", "Tue, 24 Nov 2026 10:00:00 +0000"),
        ),
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        ingest_feeds(
            [source],
            sqlite_store,
            gazetteer,
            now=NOW + timedelta(hours=2),
            monotonic=time.monotonic,
        )
    assert len([r for r in caplog.records if "repeat an earlier entry's id" in r.getMessage()]) == 1
