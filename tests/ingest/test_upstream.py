"""Upstream feed sources, fetched from a real HTTP server on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.config import SourceConfig
from alerts.errors import ConfigError
from alerts.ingest import IngestReport
from alerts.ingest.entries import entry_key, strip_tracking
from alerts.ingest.upstream import fetch_feeds, ingest_feeds, user_agent
from alerts.pipeline import Plan, run_cycle
from alerts.store import Store
from alerts.types import RunReport
from tests.support import NOW
from tests.support.feed_server import ATOM_LAST_MODIFIED, RSS, RSS_ETAG, FeedServer, serve_feeds

RSS_FIRST = "https://news.kent.police.example/news/warning-after-courier-fraudsters-target-elderly-residents-508544"


def source(server: FeedServer, path: str, **kwargs: Any) -> SourceConfig:
    return SourceConfig(feed=server.url(path), **kwargs)


def poll(
    store: Store, gazetteer: Gazetteer, *sources: SourceConfig, now: datetime = NOW
) -> IngestReport:
    return ingest_feeds(
        sources,
        store,
        gazetteer,
        now=now,
        monotonic=time.monotonic,
        site_url="https://alerts.example",
    )


def failure(report: IngestReport) -> str:
    assert len(report.source_errors) == 1, report.source_errors
    return str(report.source_errors[0])


# -- a good RSS feed ------------------------------------------------------------


def test_rss_entries_become_advisories_keyed_by_guid(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    feed = source(server, "/news.rss", area="kent")
    report = poll(store, gazetteer, feed)
    assert report.counts() == {
        "new": 3,
        "updated": 0,
        "unchanged": 0,
        "duplicates": 0,
        "rejected": 0,
        "failed_sources": 0,
        "outside_coverage": 0,
        "no_place": 0,
    }
    # A bare GUID is only unique within its feed, so the feed URL qualifies it.
    advisory = store.advisories.get(f"{feed.feed}#kent-police-news-508544")
    assert advisory.url == RSS_FIRST  # tracking parameters dropped
    assert (
        advisory.title == "Warning after courier fraudsters target elderly residents in Maidstone"
    )
    assert advisory.published_at == datetime(2026, 4, 22, 20, 15, tzinfo=UTC)
    assert advisory.published_at.utcoffset() is not None
    assert advisory.areas == ("maidstone",)
    assert advisory.force_area == "kent"
    assert advisory.source == feed.feed
    assert (
        advisory.image_url
        == "https://mnd-assets.example/image/upload/c_fill,w_1782/6as3gn6aakik9llxwqkzih"
    )


def test_rss_html_is_sanitised(store: Store, gazetteer: Gazetteer, server: FeedServer) -> None:
    poll(store, gazetteer, source(server, "/news.rss"))
    advisory = store.advisories.get(f"{server.url('/news.rss')}#kent-police-news-508544")
    body = advisory.body_html
    for dangerous in ("<script", "document.cookie", "onerror", "onclick", "javascript:", "<img"):
        assert dangerous not in body
    assert "<strong>courier fraudsters</strong>" in body
    assert 'href="https://www.actionfraud.police.uk/"' in body
    assert "Report fraud to Action Fraud (https://www.actionfraud.police.uk/)" in advisory.body_text
    assert "\n" not in advisory.title and "\n" not in advisory.summary


def test_rss_entry_with_only_the_force_named_is_force_wide(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    poll(store, gazetteer, source(server, "/news.rss", area="kent"))
    advisory = store.advisories.get(f"{server.url('/news.rss')}#kent-police-news-512001")
    assert advisory.title == "Safety advice for drivers & cyclists as the clocks go back"
    assert advisory.areas == ("kent",)


# -- a good Atom feed -----------------------------------------------------------


def test_atom_entries_become_advisories(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(store, gazetteer, source(server, "/news.atom"))
    assert report.counts()["new"] == 2 and report.ok
    advisory = store.advisories.get("tag:kent.police.example,2026:news/medway/rogue-traders-0423")
    assert (
        advisory.title == "Rogue traders warning for Gillingham homeowners"
    )  # markup and force gone
    assert (
        advisory.url
        == "https://www.kent.police.example/news/kent/news/2026/april/rogue-traders-warning/"
    )
    assert advisory.published_at == datetime(2026, 4, 23, 8, 30, tzinfo=UTC)
    assert advisory.extra["updated"] == "2026-04-23T09:05:00+00:00"
    assert advisory.summary == "Residents are urged not to agree to work offered at the door."
    assert "<iframe" not in advisory.body_html and "<li>Never agree" in advisory.body_html
    assert "medway" in advisory.tags or "gillingham" in advisory.tags
    assert set(advisory.areas) <= {"gillingham", "medway"}


def test_atom_plain_text_summary_becomes_paragraphs_and_updated_stands_for_published(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    poll(store, gazetteer, source(server, "/news.atom"))
    advisory = store.advisories.get("tag:kent.police.example,2026:news/dover/missing-man-0422")
    assert advisory.body_html.count("<p>") == 2
    assert advisory.published_at == datetime(2026, 4, 22, 16, 0, tzinfo=UTC)
    assert advisory.areas == ("dover",)


# -- conditional GET ------------------------------------------------------------


def test_unchanged_feed_costs_a_304_and_ingests_nothing(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    feed = source(server, "/news.rss")
    poll(store, gazetteer, feed)
    second = poll(store, gazetteer, feed)
    first_headers, second_headers = server.headers_of("/news.rss")
    assert "if-none-match" not in first_headers
    assert second_headers["if-none-match"] == RSS_ETAG
    assert second.counts() == {
        "new": 0,
        "updated": 0,
        "unchanged": 0,
        "duplicates": 0,
        "rejected": 0,
        "failed_sources": 0,
        "outside_coverage": 0,
        "no_place": 0,
    }
    state = store.sources.upstream_poll(feed.feed or "")
    assert state.status == 304 and state.etag == RSS_ETAG and state.error is None


def test_last_modified_is_sent_back_as_if_modified_since(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    feed = source(server, "/news.atom")
    poll(sqlite_store, gazetteer, feed)
    report = poll(sqlite_store, gazetteer, feed)
    assert server.headers_of("/news.atom")[1]["if-modified-since"] == ATOM_LAST_MODIFIED
    assert report.counts()["new"] == 0 and report.counts()["unchanged"] == 0


def test_requests_name_area_alerts_in_the_user_agent(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    poll(sqlite_store, gazetteer, source(server, "/news.rss"))
    agent = server.headers_of("/news.rss")[0]["user-agent"]
    assert agent == user_agent("https://alerts.example")
    assert "Area Alerts" in agent and "https://alerts.example" in agent


def test_a_permanent_redirect_is_followed(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, "/moved"))
    assert report.counts()["new"] == 3 and report.ok


# -- sources that fail ----------------------------------------------------------


def test_a_failing_source_is_reported_by_url_and_the_others_go_on(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(store, gazetteer, source(server, "/broken"), source(server, "/news.rss"))
    assert (
        failure(report)
        == f"{server.url('/broken')}: HTTP 500 Internal Server Error (it is tried again at the next poll)"
    )
    assert report.counts()["new"] == 3
    assert not report.ok


def test_a_missing_feed_says_to_check_the_url(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, "/nope.rss"))
    assert "HTTP 404" in failure(report) and "check the feed URL in config.yaml" in failure(report)


def test_a_slow_source_times_out(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, "/slow", timeout=0.2))
    assert (
        failure(report)
        == f"{server.url('/slow')}: timed out after 0.2 s (it is tried again at the next poll)"
    )


def test_a_body_cut_short_of_its_content_length_is_truncated(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, "/truncated"))
    assert "truncated" in failure(report)
    assert sqlite_store.advisories.count() == 0


def test_a_feed_cut_off_mid_document_is_truncated_not_half_read(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, "/truncated-xml"))
    assert "feed is truncated" in failure(report)
    assert sqlite_store.advisories.count() == 0


@pytest.mark.parametrize("path", ["/huge", "/huge-stream"])
def test_a_body_over_max_bytes_is_refused(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, path: str
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, path, max_bytes=100_000))
    assert "more than max_bytes 100,000" in failure(report)
    assert "raise 'max_bytes'" in failure(report)


@pytest.mark.parametrize("path", ["/junk", "/binary"])
def test_junk_is_not_a_feed(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer, path: str
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, path))
    assert "not an RSS or Atom feed" in failure(report)
    assert server.url(path) in failure(report)


def test_a_redirect_loop_gives_up_after_five(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    report = poll(sqlite_store, gazetteer, source(server, "/loop"))
    assert "more than 5 redirects" in failure(report)
    assert len(server.headers_of("/loop")) == 6


def test_a_failure_keeps_the_validators_and_the_next_poll_retries(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    feed = source(server, "/news.rss")
    poll(sqlite_store, gazetteer, feed)
    server.routes["/news.rss"] = (503, {}, b"down for maintenance")
    assert "HTTP 503" in failure(poll(sqlite_store, gazetteer, feed))
    state = sqlite_store.sources.upstream_poll(feed.feed or "")
    assert state.etag == RSS_ETAG and "HTTP 503" in (state.error or "")
    del server.routes["/news.rss"]
    again = poll(sqlite_store, gazetteer, feed)
    assert again.ok and server.headers_of("/news.rss")[-1]["if-none-match"] == RSS_ETAG


def test_a_source_area_the_gazetteer_lacks_is_a_config_error(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    with pytest.raises(ConfigError, match="area 'Narnia'"):
        poll(sqlite_store, gazetteer, source(server, "/news.rss", area="Narnia"))


def test_changed_entry_is_an_update_not_a_new_advisory(
    sqlite_store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    from tests.support.feed_server import RSS

    feed = source(server, "/news.rss")
    poll(sqlite_store, gazetteer, feed)
    changed = RSS.replace(b"two women in their eighties", b"three women in their eighties")
    server.routes["/news.rss"] = (200, {"ETag": '"rss-v2"'}, changed)
    report = poll(sqlite_store, gazetteer, feed, now=NOW + timedelta(days=1))  # past the interval
    assert report.counts()["updated"] == 1 and report.counts()["unchanged"] == 2
    assert sqlite_store.advisories.get(f"{feed.feed}#kent-police-news-508544").revision == 2


# -- identities -----------------------------------------------------------------


def test_entry_keys() -> None:
    feed = "https://example.org/news.rss"
    assert entry_key("42", "https://example.org/a", feed) == "https://example.org/news.rss#42"
    assert entry_key("tag:example.org,2026:1", None, feed) == "tag:example.org,2026:1"
    assert (
        entry_key("HTTPS://Example.org/a?utm_source=rss&id=1", None, feed)
        == "https://example.org/a?id=1"
    )
    assert entry_key("", "https://example.org/b", feed) == "https://example.org/b"


def test_strip_tracking_keeps_other_parameters() -> None:
    assert (
        strip_tracking("https://x.example/a?utm_source=rss&page=2&UTM_medium=x")
        == "https://x.example/a?page=2"
    )
    assert strip_tracking("https://x.example/a?page=2") == "https://x.example/a?page=2"


def test_the_fixtures_are_feeds_feedparser_reads_cleanly() -> None:
    from tests.support.feed_server import ATOM, RSS

    for body, version in ((RSS, "rss20"), (ATOM, "atom10")):
        parsed = feedparser.parse(body)
        assert not parsed.bozo and parsed.version == version


# -- fetched before the queue turn, stored inside it ------------------------------


def test_an_answer_fetched_before_another_process_stored_a_newer_one_is_dropped(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    """Feeds are fetched outside the queue turn (alerts.pipeline): 'alerts serve' may
    fetch, then 'alerts ingest' by hand fetch and store a newer version of the feed,
    before serve stores its older answer. That older answer is dropped, never stored
    over the newer one; the next poll asks again."""
    feed = source(server, "/changing", area="kent")
    title = b"Warning after courier fraudsters target elderly residents in Maidstone"
    headers = {"Content-Type": "application/rss+xml"}
    server.routes["/changing"] = (200, headers | {"ETag": '"v1"'}, RSS)
    older = fetch_feeds([feed], store, monotonic=time.monotonic)  # serve's fetch
    newer = RSS.replace(title, title + b" (updated)")
    server.routes["/changing"] = (200, headers | {"ETag": '"v2"'}, newer)
    assert poll(store, gazetteer, feed).counts()["new"] == 3  # 'alerts ingest', meanwhile
    late = ingest_feeds(
        [feed],
        store,
        gazetteer,
        now=NOW + timedelta(minutes=1),
        monotonic=time.monotonic,
        fetches=older,
    )
    assert late.counts()["new"] == late.counts()["updated"] == 0 and late.ok
    kept = store.advisories.get(f"{feed.feed}#kent-police-news-508544")
    assert kept.title.endswith("(updated)")
    assert store.sources.upstream_poll(feed.feed or "").etag == '"v2"'
    # The next poll asks with the validators of the newer version.
    assert poll(store, gazetteer, feed, now=NOW + timedelta(minutes=2)).counts()["updated"] == 0
    assert server.headers_of("/changing")[-1]["if-none-match"] == '"v2"'


def test_a_dropped_answer_is_dropped_for_every_source_on_that_feed(
    store: Store, gazetteer: Gazetteer, server: FeedServer
) -> None:
    """Two sources (each with a name) on one feed URL share one fetch: when it is
    dropped as older than another process's poll, the second source must not store it."""
    one = source(server, "/shared", area="kent", name="kent-news")
    two = source(server, "/shared", area="kent", name="kent-news-again")
    title = b"Warning after courier fraudsters target elderly residents in Maidstone"
    headers = {"Content-Type": "application/rss+xml"}
    server.routes["/shared"] = (200, headers | {"ETag": '"v1"'}, RSS)
    older = fetch_feeds([one, two], store, monotonic=time.monotonic)
    server.routes["/shared"] = (200, headers | {"ETag": '"v2"'}, RSS.replace(title, title + b"!"))
    assert poll(store, gazetteer, one, two).counts()["new"] == 3  # another process, meanwhile
    late = ingest_feeds(
        [one, two],
        store,
        gazetteer,
        now=NOW + timedelta(minutes=1),
        monotonic=time.monotonic,
        fetches=older,
    )
    assert late.dropped == [one.feed, two.feed]
    assert late.counts()["updated"] == 0
    assert store.sources.upstream_poll(one.feed or "").etag == '"v2"'
    assert store.advisories.get(f"{one.feed}#kent-police-news-508544").title.endswith("!")


def test_a_dropped_answer_records_no_poll_the_newer_failed_poll_stands(
    write_config: Callable[..., Path],
    run_cli: Callable[..., Any],
    db_url: str,
    clock: ManualClock,
) -> None:
    """'alerts serve' fetches a feed that answers slowly but well; meanwhile 'alerts
    ingest', run by hand, finds the feed down and records that. Serve's answer, older than
    that failed poll, is dropped: it is not a good poll either. The stored poll keeps the
    failure (no validators from the dropped answer) and 'alerts status' still says the
    source is failing, since the operator's poll."""
    with serve_feeds() as upstream:
        feed = upstream.url("/stall")
        config = write_config(
            database=db_url, sources=[{"name": "kent-news", "feed": feed, "area": "kent"}]
        )
        serve = App(config)
        try:
            reports: list[RunReport] = []
            cycle = threading.Thread(
                target=lambda: reports.append(
                    run_cycle(serve, Plan("poll", feeds="never", digests=(), send=False))
                )
            )
            cycle.start()
            assert upstream.stalled.wait(30), "serve never fetched the feed"
            # Serve holds its answer (200, ETag "rss-v1"); the feed goes down meanwhile.
            upstream.routes["/stall"] = (500, {"Content-Type": "text/plain"}, b"down")
            clock.advance(timedelta(minutes=1))
            by_hand = run_cli("ingest", config=config)
            assert by_hand.exit_code == 1 and "HTTP 500" in by_hand.output
            clock.advance(timedelta(minutes=1))
            upstream.unstall.set()
            cycle.join(60)
            assert not cycle.is_alive() and len(reports) == 1
            (report,) = reports
            assert report.new == 0 and not report.failed_stages, report.problems
            poll_of = serve.store.sources.upstream_poll(feed)
            assert (poll_of.status, poll_of.etag) == (None, None)
            assert poll_of.error == "HTTP 500 Internal Server Error"
            assert poll_of.fetched_at == NOW + timedelta(minutes=1)
            (health,) = serve.store.sources.healths()
            assert (health.failures, health.polls_total, health.last_ok_at) == (1, 1, None)
            assert health.last_poll_at == NOW + timedelta(minutes=1)
        finally:
            serve.close()
        status = run_cli("status", config=config)
        assert status.exit_code == 0, status.output
        assert (
            "Source kent-news (feed): FAILING, 1 poll(s) in a row (never read):"
            " HTTP 500 Internal Server Error" in status.output
        ), status.output
        # The next poll asks afresh (no validators kept from the dropped answer).
        del upstream.routes["/stall"]
        assert run_cli("ingest", config=config).exit_code == 0
        assert "if-none-match" not in upstream.headers_of("/stall")[-1]
        assert "Source kent-news (feed): ok, last read" in run_cli("status", config=config).output
