"""Every feed built passes the rules strict validators apply (tests/support/feed_rules.py), and
those rules do catch what they are meant to. Relative links in an advisory's body reach
readers resolved against the advisory's own page."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.feeds import build_feeds
from alerts.ingest import ingest_files
from alerts.web import create_app
from tests.support import NOW
from tests.support.advisory_files import write_advisory, write_hostile_advisory
from tests.support.feed_rules import (
    atom_problems,
    feed_problems,
    feed_warnings,
    json_feed_problems,
    rss_problems,
)

BASE = "https://alerts.example.org"
LINKED = "https://www.kent.police.uk/news/appeals/linked/"
RELATIVE_BODY = (
    "Residents of Dover: see [the earlier appeal](/news/appeals/earlier/), "
    "[the poster](poster.html), [below](#details) and [the map](//maps.example.org/dover). "
    "Call [101](tel:101) or [email us](mailto:appeals@example.org).\n"
)


@pytest.fixture
def built(write_config: Callable[..., Path], advisory_dir: Path, db_url: str) -> App:
    """The sample, a hostile advisory, one with relative links and one keyed by a GUID."""
    write_hostile_advisory(advisory_dir)
    write_advisory(advisory_dir, "linked", title="Appeal in Dover", url=LINKED, body=RELATIVE_BODY)
    write_advisory(
        advisory_dir,
        "guid",
        title="Advice for Deal",
        url="https://www.kent.police.uk/news/deal/",
        guid="42",
    )
    app = App(write_config(database=db_url, site={"base_url": BASE}))
    report = ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW)
    assert len(report.new) == 4 and not report.rejected
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=NOW)
    return app


def test_every_feed_built_passes_the_validators_rules(built: App) -> None:
    files = sorted(
        path
        for path in built.config.feeds.out.glob("[!.]*")
        if path.suffix in (".rss", ".atom", ".json")
    )
    assert len(files) == 3 * (1 + len(built.gazetteer.feed_areas()))
    for path in files:
        assert feed_problems(path.read_bytes(), f"{BASE}/feeds/{path.name}") == [], path.name


def test_relative_links_in_a_body_resolve_against_the_advisorys_own_page(built: App) -> None:
    expected = [
        "https://www.kent.police.uk/news/appeals/earlier/",
        "https://www.kent.police.uk/news/appeals/linked/poster.html",
        "https://www.kent.police.uk/news/appeals/linked/#details",
        "https://maps.example.org/dover",
        "tel:101",
        "mailto:appeals@example.org",
    ]
    folder = built.config.feeds.out
    for fmt in ("rss", "atom"):
        # As published: feedparser's own clean-up would resolve and drop links itself.
        parsed = feedparser.parse(
            (folder / f"dover.{fmt}").read_bytes(), sanitize_html=False, resolve_relative_uris=False
        )
        entry = next(e for e in parsed.entries if e.id == LINKED)
        for href in expected:
            assert f'href="{href}"' in entry.content[0].value, (fmt, href)
    item = next(
        i for i in json.loads((folder / "dover.json").read_bytes())["items"] if i["id"] == LINKED
    )
    assert all(f'href="{href}"' in item["content_html"] for href in expected)
    # The archive page too: "/news/..." would otherwise lead to this site, not the force's.
    advisory = built.store.advisories.get(LINKED)
    page = TestClient(create_app(built)).get(f"/advisories/{advisory.id}").text
    assert all(f'href="{href}"' in page for href in expected)


RSS_OK = (
    '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>T</title>'
    "<link>https://a.example/</link><description>D</description>"
    '<atom:link rel="self" type="application/rss+xml" href="https://a.example/f.rss"/>'
    "<lastBuildDate>Wed, 25 Nov 2026 10:00:00 +0000</lastBuildDate>{items}</channel></rss>"
)
ITEM = "<item><title>x</title><guid>{guid}</guid><pubDate>{date}</pubDate><description>{html}</description></item>"


def rss(*items: tuple[str, str, str]) -> bytes:
    return RSS_OK.format(
        items="".join(ITEM.format(guid=g, date=d, html=h) for g, d, h in items)
    ).encode()


def test_the_rss_rules_catch_what_readers_trip_on() -> None:
    url = "https://a.example/f.rss"
    good = ("https://a.example/1", "Wed, 25 Nov 2026 10:00:00 +0000", "")
    assert rss_problems(rss(good), url) == []
    assert rss_problems(rss(good), "https://a.example/elsewhere.rss")  # self is not the served URL
    problems = rss_problems(
        rss(
            good,
            (
                "https://a.example/1",
                "Wed, 25 Nov 2026 09:00:00 GMT",
                '&lt;a href="/rel"&gt;x&lt;/a&gt;',
            ),
            ("not-a-url", "Tue, 25 Nov 2026 08:00:00 +0000", ""),
        ),
        url,
    )
    assert any("repeats" in p for p in problems)
    assert any("numeric zone" in p for p in problems)
    assert any("'/rel' is relative" in p for p in problems)
    assert any("permalink guid: 'not-a-url'" in p for p in problems)
    assert any("wrong day of the week" in p for p in problems)
    assert rss_problems(b"<rss version='2.0'><channel><title>T</title></channel></rss>", url)[
        :2
    ] == [
        "channel: no <link> (required)",
        "channel: no <description> (required)",
    ]


def test_the_atom_and_json_feed_rules_catch_what_readers_trip_on() -> None:
    url = "https://a.example/f.atom"
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>https://a.example/f.atom</id><title>T</title>'
        b"<updated>2026-11-25T10:00:00Z</updated>"
        b'<link rel="self" href="https://a.example/f.atom"/><entry><id>urn:x:1</id><title>E</title>'
        b"<updated>2026-11-26T10:00:00+00:00</updated>"
        b'<link href="https://a.example/1"/><link rel="alternate" href="https://a.example/2"/>'
        b'<content type="html"><p>raw</p></content></entry></feed>'
    )
    problems = atom_problems(atom, url)
    assert any("more than one alternate" in p for p in problems)
    assert any("markup must be escaped" in p for p in problems)
    assert any("no author" in p for p in problems)
    assert any("after the feed's <updated>" in p for p in problems)
    item = {"id": 7, "url": "/relative", "date_published": "2026-11-25 10:00"}
    feed = {
        "version": "https://jsonfeed.org/version/1",
        "title": "T",
        "feed_url": url,
        "items": [item],
    }
    problems = json_feed_problems(json.dumps(feed).encode(), url)
    assert any(p.startswith("version is") for p in problems)
    assert "item 1: id must be a non-empty string" in problems
    assert "item 1: neither content_html nor content_text" in problems
    assert any("RFC 3339" in p for p in problems) and any("'/relative'" in p for p in problems)


def test_the_media_rules_are_the_w3c_validators() -> None:
    url = "https://a.example/f.rss"
    media = "<item><title>x</title><guid>https://a.example/1</guid><pubDate>Wed, 25 Nov 2026 10:00:00 +0000</pubDate>{}</item>"
    ns = ' xmlns:media="http://search.yahoo.com/mrss/"'
    one = RSS_OK.replace("<rss ", f"<rss{ns} ").format(
        items=media.format(
            '<media:group><media:content url="https://a.example/i.jpg"/></media:group>'
        )
    )
    assert "item 1: media:group must have multiple media:content children" in rss_problems(
        one.encode(), url
    )
    bare = RSS_OK.replace("<rss ", f"<rss{ns} ").format(
        items=media.format('<media:content url="https://a.example/i.jpg" medium="image"/>')
    )
    assert rss_problems(bare.encode(), url) == []
    two = RSS_OK.replace("<rss ", f"<rss{ns} ").format(
        items=media.format(
            '<media:group><media:content url="https://a.example/i.jpg"/><media:content url="https://a.example/i.png"/></media:group>'
        )
    )
    assert rss_problems(two.encode(), url) == []


def test_two_atom_entries_updated_at_the_same_instant_are_warned_about() -> None:
    entry = "<entry><id>urn:x:{n}</id><title>E</title><updated>{when}</updated></entry>"
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        + "".join(
            entry.format(n=n, when=w)
            for n, w in (
                (1, "2026-11-25T10:00:00Z"),
                (2, "2026-11-25T09:00:00Z"),
                (3, "2026-11-25T10:00:00Z"),
            )
        )
        + "</feed>"
    ).encode()
    assert feed_warnings(atom, "https://a.example/f.atom") == [
        "entry 3: two entries with the same value for atom:updated (2026-11-25T10:00:00Z, entry 1)"
    ]


def test_entries_published_at_different_times_carry_different_updated_stamps(built: App) -> None:
    folder = built.config.feeds.out
    assert feed_warnings((folder / "medway.atom").read_bytes(), f"{BASE}/feeds/medway.atom") == []
    # 'linked' and 'guid' were both published at 10:00 01/11/2026 and never changed:
    # the data allows no distinct stamps there, and the warning says so.
    assert feed_warnings((folder / "dover.atom").read_bytes(), f"{BASE}/feeds/dover.atom") == [
        "entry 3: two entries with the same value for atom:updated (2026-11-01T10:00:00+00:00, entry 2)"
    ]
