"""Feeds: what they hold, that real readers parse them, and that rebuilds are stable.

Every feed produced is read back with feedparser (a real client); structure that
validators check is read with lxml. Runs on SQLite and, when configured, PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import feedparser
import pytest
from click.testing import Result
from lxml import etree

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.config import SiteConfig
from alerts.feeds import FeedsReport, build_feeds, write_if_changed
from alerts.feeds.state import STATE_FILE
from alerts.ingest import ingest_files
from tests.support import NOW, SAMPLE, make_database, utc_of
from tests.support.advisory_files import write_advisory
from tests.support.sections import Stages, feeds_config, make_stages

BASE = "https://alerts.example.org"
SAMPLE_URL = (
    "https://www.kent.police.uk/news/kent/news2/policing-news/2012/"
    "safety-advice-after-telephone-fraudster-poses-as-kent-police-officer/"
)
SAMPLE_TITLE = "Safety advice after telephone fraudster poses as Kent Police officer"
SAMPLE_PUBLISHED = datetime(2020, 12, 18, 14, 30, tzinfo=UTC)  # 14:30 GMT
ATOM = "{http://www.w3.org/2005/Atom}"
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"
)


@pytest.fixture
def feeds_stages(
    tmp_path: Path, db_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> Iterator[Stages]:
    """The feeds stage's inputs on SQLite or PostgreSQL (``ingest`` puts the sample in)."""
    site = SiteConfig(base_url=BASE, name="Kent Area Alerts", publisher="Kent Police")
    stages = make_stages(tmp_path, db_url, clock, gazetteer, site=site)
    yield stages
    stages.close()


def ingest(stages: Stages, *paths: Path, now: datetime = NOW) -> None:
    """Ingest ``paths`` (by default the sample advisory) at ``now``."""
    sources = list(paths) or [SAMPLE]
    report = ingest_files(sources, stages.store, stages.gazetteer, now=now)
    assert not report.rejected, report.rejected


def out(stages: Stages) -> Path:
    return stages.feeds.out


T = TypeVar("T")


def found(value: T | None) -> T:
    """What an XPath find returned, failing the test where it found nothing."""
    assert value is not None
    return value


def parse(stages: Stages, name: str) -> feedparser.FeedParserDict:
    parsed = feedparser.parse((out(stages) / name).read_bytes())
    assert not parsed.bozo, f"{name}: {parsed.get('bozo_exception')}"
    return parsed


def entry_ids(stages: Stages, slug: str) -> dict[str, list[str]]:
    """The entry ids in each format of one area's feed."""
    found = {fmt: [e.id for e in parse(stages, f"{slug}.{fmt}").entries] for fmt in ("rss", "atom")}
    found["json"] = [
        item["id"] for item in json.loads((out(stages) / f"{slug}.json").read_bytes())["items"]
    ]
    return found


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.iterdir())
    }


def test_builds_rss_atom_and_json_for_every_feed_area_and_all(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    report = build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    slugs = ["all", *(node.slug for node in feeds_stages.gazetteer.feed_areas())]
    expected = {f"{slug}.{fmt}" for slug in slugs for fmt in ("rss", "atom", "json")}
    assert {path.name for path in report.written} == expected
    assert report.unchanged == 0
    # No temporary files left; the one dot-file records each feed's date (never served).
    # No stylesheet: a browser opening a feed's URL gets a page from the web stages.
    assert {path.name for path in out(feeds_stages).iterdir()} == expected | {STATE_FILE}


def test_every_feed_parses_in_feedparser_without_errors(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    for path in sorted(
        p for p in out(feeds_stages).glob("[!.]*") if p.suffix in (".rss", ".atom", ".json")
    ):
        if path.suffix == ".json":
            data = json.loads(path.read_bytes())
            assert data["version"] == "https://jsonfeed.org/version/1.1"
            assert data["feed_url"] == f"{BASE}/feeds/{path.name}"
        else:
            parsed = parse(feeds_stages, path.name)
            assert parsed.version in {"rss20", "atom10"}
            assert parsed.feed.language == "en-GB"


def test_medway_and_chatham_feeds_hold_the_sample_and_dover_does_not(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    for slug in ("medway", "chatham", "kent", "all"):  # Chatham: the matching rule (town in Medway)
        assert entry_ids(feeds_stages, slug) == {
            "rss": [SAMPLE_URL],
            "atom": [SAMPLE_URL],
            "json": [SAMPLE_URL],
        }, slug
    for slug in ("dover", "deal", "maidstone"):
        assert entry_ids(feeds_stages, slug) == {"rss": [], "atom": [], "json": []}, slug


def test_entry_round_trips_id_dates_links_content_and_categories(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    advisory = feeds_stages.store.advisories.get(SAMPLE_URL)
    for fmt in ("rss", "atom"):
        parsed = parse(feeds_stages, f"medway.{fmt}")
        assert parsed.feed.title == "Kent Area Alerts: Medway"
        assert parsed.feed.link == f"{BASE}/areas/medway"
        assert {(link.rel, link.href) for link in parsed.feed.links} >= {
            ("self", f"{BASE}/feeds/medway.{fmt}")
        }
        (entry,) = parsed.entries
        assert entry.id == SAMPLE_URL
        assert entry.title == SAMPLE_TITLE
        assert entry.link == SAMPLE_URL
        assert utc_of(entry.published_parsed) == SAMPLE_PUBLISHED
        assert entry.summary.startswith("Fraud investigators are reminding residents")
        assert "<strong>Medway</strong>" in entry.content[0].value
        # Atom: term is the slug, label the name; RSS has room for one, the name readers show.
        assert [tag.term for tag in entry.tags] == (["medway"] if fmt == "atom" else ["Medway"])
        assert entry.media_content[0]["url"] == advisory.image_url
        assert entry.author == "Kent Police"  # Atom author, RSS dc:creator
        if fmt == "atom":
            # Never changed since published: updated is its publication, not when it was stored.
            assert utc_of(entry.updated_parsed) == SAMPLE_PUBLISHED
            assert {(link.rel, link.href) for link in entry.links} == {
                ("alternate", SAMPLE_URL),
                ("related", f"{BASE}/advisories/{advisory.id}"),
            }
    item = json.loads((out(feeds_stages) / "medway.json").read_bytes())["items"][0]
    assert item["id"] == item["url"] == SAMPLE_URL
    assert item["external_url"] == f"{BASE}/advisories/{advisory.id}"
    assert datetime.fromisoformat(item["date_published"]) == SAMPLE_PUBLISHED
    assert datetime.fromisoformat(item["date_modified"]) == SAMPLE_PUBLISHED  # unchanged since
    assert item["tags"] == ["Medway"] and item["image"] == advisory.image_url


def test_rss_and_atom_follow_the_rules_validators_apply(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    rss = etree.fromstring((out(feeds_stages) / "medway.rss").read_bytes())
    channel = found(rss.find("channel"))
    (self_link,) = channel.findall(f"{ATOM}link")
    assert self_link.get("rel") == "self" and self_link.get("href") == f"{BASE}/feeds/medway.rss"
    assert self_link.get("type") == "application/rss+xml"
    assert channel.findtext("link") == f"{BASE}/areas/medway"
    assert RFC822.match(found(channel.findtext("lastBuildDate")))
    item = found(channel.find("item"))
    assert RFC822.match(found(item.findtext("pubDate")))
    assert item.findtext("pubDate") == "Fri, 18 Dec 2020 14:30:00 +0000"
    guid = found(item.find("guid"))
    assert guid.text == SAMPLE_URL and guid.get("isPermaLink") == "true"  # the id is the URL

    atom = etree.fromstring((out(feeds_stages) / "medway.atom").read_bytes())
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-GB"
    assert atom.findtext(f"{ATOM}id") == f"{BASE}/feeds/medway.atom"
    assert atom.findtext(f"{ATOM}updated") == NOW.isoformat()
    assert atom.findtext(f"{ATOM}author/{ATOM}name") == "Kent Police"
    links = {(link.get("rel"), link.get("href")) for link in atom.findall(f"{ATOM}link")}
    assert links == {("self", f"{BASE}/feeds/medway.atom"), ("alternate", f"{BASE}/areas/medway")}
    for entry in atom.findall(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}id") and entry.findtext(f"{ATOM}updated")
        rels = [link.get("rel") for link in entry.findall(f"{ATOM}link")]
        assert rels.count("alternate") == 1, "RFC 4287: one alternate link per type"
        assert found(entry.find(f"{ATOM}content")).get("type") == "html"


def test_an_urgent_advisory_says_so_in_its_title_in_every_format(
    feeds_stages: Stages, tmp_path: Path
) -> None:
    folder = tmp_path / "urgent"
    folder.mkdir()
    write_advisory(
        folder,
        "u",
        title="Flooding in Dover",
        url="https://www.kent.police.uk/news/u/",
        priority="urgent",
    )
    ingest(feeds_stages, folder)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    for fmt in ("rss", "atom"):
        assert [e.title for e in parse(feeds_stages, f"dover.{fmt}").entries] == [
            "Urgent: Flooding in Dover"
        ]
    assert (
        json.loads((out(feeds_stages) / "dover.json").read_bytes())["items"][0]["title"]
        == "Urgent: Flooding in Dover"
    )


def test_an_id_that_is_not_a_url_is_not_a_permalink_and_becomes_a_tag_uri(
    feeds_stages: Stages, tmp_path: Path
) -> None:
    folder = tmp_path / "guids"
    folder.mkdir()
    write_advisory(
        folder,
        "guid",
        title="Appeal in Dover",
        url="https://www.kent.police.uk/news/appeal/",
        guid="12345",
    )
    ingest(feeds_stages, folder)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    guid = found(
        etree.fromstring((out(feeds_stages) / "dover.rss").read_bytes()).find("channel/item/guid")
    )
    assert guid.text == "tag:www.kent.police.uk,2026-11-01:12345"
    assert guid.get("isPermaLink") == "false"
    assert parse(feeds_stages, "dover.atom").entries[0].id == guid.text


def test_empty_feed_is_valid_with_a_fixed_date(feeds_stages: Stages) -> None:
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    parsed = parse(feeds_stages, "dover.atom")
    assert parsed.entries == []
    assert parsed.feed.updated.startswith("1970-01-01")


def test_rebuild_with_nothing_new_changes_no_byte_and_touches_no_file(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    first = build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    before = snapshot(out(feeds_stages))
    # Later, and the sample ingested again unchanged: still nothing new.
    ingest(feeds_stages, now=NOW + timedelta(hours=3))
    again = build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=NOW + timedelta(hours=3),
    )
    assert again.written == []
    assert again.unchanged == len(first.written)
    assert snapshot(out(feeds_stages)) == before


def test_a_damaged_or_missing_feed_file_is_repaired_by_the_next_build(feeds_stages: Stages) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    good = (out(feeds_stages) / "medway.atom").read_bytes()
    (out(feeds_stages) / "medway.atom").write_bytes(
        good[:100]
    )  # as a crash mid-write might leave it
    (out(feeds_stages) / "dover.json").unlink()
    report = build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    assert sorted(path.name for path in report.written) == ["dover.json", "medway.atom"]
    assert (out(feeds_stages) / "medway.atom").read_bytes() == good


def test_only_the_feeds_a_new_advisory_concerns_are_rewritten(
    feeds_stages: Stages, tmp_path: Path
) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    folder = tmp_path / "new"
    folder.mkdir()
    write_advisory(
        folder,
        "dover",
        title="Scam calls reported in Dover",
        url="https://www.kent.police.uk/news/dover-scam/",
    )
    later = NOW + timedelta(hours=1)
    ingest(feeds_stages, folder, now=later)
    report = build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=later,
    )
    gazetteer = feeds_stages.gazetteer
    concerned = {"all"} | {
        node.slug for node in gazetteer.feed_areas() if gazetteer.wants([node.slug], ["dover"])
    }
    assert {"dover", "deal", "kent"} <= concerned and "medway" not in concerned
    assert {path.stem for path in report.written} == concerned
    assert len(report.written) == 3 * len(concerned)
    assert entry_ids(feeds_stages, "all")["atom"] == [
        "https://www.kent.police.uk/news/dover-scam/",
        SAMPLE_URL,
    ]


def test_updated_advisory_keeps_its_id_and_gets_a_new_updated(
    feeds_stages: Stages, advisory_dir: Path
) -> None:
    ingest(feeds_stages, advisory_dir)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    copy = advisory_dir / SAMPLE.name
    copy.write_text(
        copy.read_text(encoding="utf-8") + "\nUpdate: a man has been arrested.\n", encoding="utf-8"
    )
    later = NOW + timedelta(days=1)
    ingest(feeds_stages, advisory_dir, now=later)
    build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=later,
    )
    parsed = parse(feeds_stages, "medway.atom")
    (entry,) = parsed.entries
    assert entry.id == SAMPLE_URL
    assert utc_of(entry.updated_parsed) == later
    assert utc_of(entry.published_parsed) == SAMPLE_PUBLISHED
    assert "a man has been arrested" in entry.content[0].value
    assert utc_of(parsed.feed.updated_parsed) == later
    rss = parse(feeds_stages, "medway.rss")
    assert rss.entries[0].id == SAMPLE_URL
    assert utc_of(rss.feed.updated_parsed) == later  # lastBuildDate


def test_withdrawn_advisory_leaves_the_feeds_at_the_next_build(
    feeds_stages: Stages, advisory_dir: Path
) -> None:
    ingest(feeds_stages, advisory_dir)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    copy = advisory_dir / SAMPLE.name
    copy.write_text(
        copy.read_text(encoding="utf-8").replace("area: Kent", "area: Kent\nstatus: withdrawn"),
        encoding="utf-8",
    )
    later = NOW + timedelta(days=2)
    ingest(feeds_stages, advisory_dir, now=later)
    report = build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=later,
    )
    for slug in ("medway", "chatham", "kent", "all"):
        assert entry_ids(feeds_stages, slug) == {"rss": [], "atom": [], "json": []}
    assert out(feeds_stages) / "medway.rss" in report.written
    # The feed's date moves on with the withdrawal, so readers see it changed.
    assert utc_of(parse(feeds_stages, "medway.rss").feed.updated_parsed) == later


def feed_dates(stages: Stages, slug: str) -> tuple[datetime, datetime]:
    """(Atom updated, RSS lastBuildDate) of one area's feed."""
    atom, rss = parse(stages, f"{slug}.atom").feed, parse(stages, f"{slug}.rss").feed
    return (utc_of(atom.updated_parsed), utc_of(rss.updated_parsed))


def test_an_advisory_retagged_out_of_an_area_moves_that_areas_feed_date_forward(
    feeds_stages: Stages, tmp_path: Path
) -> None:
    folder = tmp_path / "moving"
    folder.mkdir()
    url = "https://www.kent.police.uk/news/moving/"
    write_advisory(folder, "moving", title="Scam calls in Dover", url=url)
    first = NOW + timedelta(hours=1)
    ingest(feeds_stages, folder, now=first)
    build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=first,
    )
    assert entry_ids(feeds_stages, "dover")["atom"] == [url]
    assert feed_dates(feeds_stages, "dover") == (first, first)

    # Corrected: it was Maidstone. Nothing Dover still holds changed, yet Dover's feed did.
    write_advisory(folder, "moving", title="Scam calls in Maidstone", url=url)
    retagged = NOW + timedelta(hours=2)
    ingest(feeds_stages, folder, now=retagged)
    report = build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=retagged + timedelta(minutes=5),
    )
    assert out(feeds_stages) / "dover.atom" in report.written
    assert entry_ids(feeds_stages, "dover") == {"rss": [], "atom": [], "json": []}
    # A reader caching on updated/lastBuildDate sees the change, dated when it happened.
    assert feed_dates(feeds_stages, "dover") == (retagged, retagged)
    assert feed_dates(feeds_stages, "maidstone") == (retagged, retagged)
    # And the dates hold: building again with nothing new changes no byte.
    before = snapshot(out(feeds_stages))
    assert (
        build_feeds(
            feeds_stages.feeds,
            feeds_stages.site,
            feeds_stages.store,
            feeds_stages.gazetteer,
            now=retagged + timedelta(days=1),
        ).written
        == []
    )
    assert snapshot(out(feeds_stages)) == before


def test_a_feed_changed_by_the_config_alone_is_dated_by_the_build_that_changed_it(
    tmp_path: Path, db_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    first = make_stages(tmp_path, db_url, clock, gazetteer, site=SiteConfig(name="Kent Alerts"))
    ingest(first)
    build_feeds(first.feeds, first.site, first.store, first.gazetteer, now=NOW)
    first.close()
    site = SiteConfig(name="Kent Area Alerts")
    renamed = make_stages(tmp_path, db_url, clock, gazetteer, site=site)
    later = NOW + timedelta(days=1)
    try:
        build_feeds(renamed.feeds, renamed.site, renamed.store, renamed.gazetteer, now=later)
        assert parse(renamed, "medway.atom").feed.title == "Kent Area Alerts: Medway"
        # No advisory changed, so only the build's clock says when the feed did.
        assert feed_dates(renamed, "medway") == (later, later)
        assert (
            build_feeds(
                renamed.feeds,
                renamed.site,
                renamed.store,
                renamed.gazetteer,
                now=later + timedelta(hours=1),
            ).written
            == []
        )
    finally:
        renamed.close()


def test_a_lost_or_damaged_date_record_only_costs_the_dates_from_the_store(
    feeds_stages: Stages,
) -> None:
    ingest(feeds_stages)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    before = snapshot(out(feeds_stages))
    (out(feeds_stages) / STATE_FILE).write_text("{not json")
    assert (
        build_feeds(
            feeds_stages.feeds,
            feeds_stages.site,
            feeds_stages.store,
            feeds_stages.gazetteer,
            now=NOW + timedelta(hours=1),
        ).written
        == []
    )
    (out(feeds_stages) / STATE_FILE).unlink()
    assert (
        build_feeds(
            feeds_stages.feeds,
            feeds_stages.site,
            feeds_stages.store,
            feeds_stages.gazetteer,
            now=NOW + timedelta(hours=2),
        ).written
        == []
    )
    after = snapshot(out(feeds_stages))
    assert after.pop(STATE_FILE)[0] == before.pop(STATE_FILE)[0]  # the record, written again
    assert after == before  # the feeds, untouched


def test_expired_advisory_leaves_the_feeds_at_the_next_build(
    feeds_stages: Stages, tmp_path: Path
) -> None:
    folder = tmp_path / "expiring"
    folder.mkdir()
    write_advisory(
        folder,
        "appeal",
        title="Road closure in Dover",
        url="https://www.kent.police.uk/news/closure/",
        expires="18:00 26/11/2026",
    )
    ingest(feeds_stages, folder)
    build_feeds(
        feeds_stages.feeds, feeds_stages.site, feeds_stages.store, feeds_stages.gazetteer, now=NOW
    )
    assert entry_ids(feeds_stages, "dover")["rss"] == ["https://www.kent.police.uk/news/closure/"]
    after = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=after,
    )
    assert entry_ids(feeds_stages, "dover") == {"rss": [], "atom": [], "json": []}
    updated = parse(feeds_stages, "dover.atom").feed.updated_parsed
    assert utc_of(updated) == datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
    # and that is stable: building again later changes nothing
    assert (
        build_feeds(
            feeds_stages.feeds,
            feeds_stages.site,
            feeds_stages.store,
            feeds_stages.gazetteer,
            now=after + timedelta(days=3),
        ).written
        == []
    )


def test_feeds_hold_at_most_max_items_newest_first(
    tmp_path: Path, sqlite_url: str, clock: ManualClock, gazetteer: Gazetteer
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for day in (1, 2, 3):
        write_advisory(
            folder,
            f"a{day}",
            title=f"Advice {day} for Dover",
            url=f"https://www.kent.police.uk/news/{day}/",
            date=f"10:00 0{day}/11/2026",
        )
    stages = make_stages(
        tmp_path, sqlite_url, clock, gazetteer, feeds=feeds_config(tmp_path, max_items=2)
    )
    try:
        ingest(stages, folder)
        build_feeds(stages.feeds, stages.site, stages.store, stages.gazetteer, now=NOW)
        expected = ["https://www.kent.police.uk/news/3/", "https://www.kent.police.uk/news/2/"]
        assert entry_ids(stages, "dover") == {"rss": expected, "atom": expected, "json": expected}
    finally:
        stages.close()


def test_build_writes_into_out_when_given(feeds_stages: Stages, tmp_path: Path) -> None:
    ingest(feeds_stages)
    report = build_feeds(
        feeds_stages.feeds,
        feeds_stages.site,
        feeds_stages.store,
        feeds_stages.gazetteer,
        now=NOW,
        out=tmp_path / "elsewhere",
    )
    assert isinstance(report, FeedsReport)
    assert (tmp_path / "elsewhere" / "medway.rss").exists()
    assert not out(feeds_stages).exists()


def test_write_if_changed_replaces_atomically_with_a_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "x.rss"
    assert write_if_changed(target, b"one")
    assert target.stat().st_mode & 0o777 == 0o644  # public, not mkstemp's 0600
    assert not write_if_changed(target, b"one")
    assert write_if_changed(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["x.rss"]


def test_cli_feeds_build_prints_json_and_a_second_run_writes_nothing(
    run_cli: Callable[..., Result], config_path: Path, tmp_path: Path
) -> None:
    assert run_cli("ingest").exit_code == 0
    first = run_cli("feeds", "build", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["unchanged"] == 0 and f"{tmp_path / 'feeds' / 'medway.rss'}" in data["written"]
    second = run_cli("feeds", "build")
    assert second.exit_code == 0
    assert (
        second.output.strip()
        == f"Feeds in {tmp_path / 'feeds'}: 0 written, {len(data['written'])} unchanged."
    )


def test_cli_feeds_build_into_a_file_fails_with_one_line(
    run_cli: Callable[..., Result], config_path: Path, tmp_path: Path
) -> None:
    make_database(config_path)  # feeds build reads what a run stored; it never makes a database
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = run_cli("feeds", "build", "--out", str(blocker / "feeds"))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "cannot create the feeds folder" in result.output and "--out DIR" in result.output
