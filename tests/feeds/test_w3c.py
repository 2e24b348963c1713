"""What the W3C Feed Validator and browsers need of our RSS and Atom: an image is one
``media:content`` in the item (never a ``media:group`` of one), entries read in one run
carry distinct ``updated`` stamps, and no feed relies on XSLT (browsers are removing it):
the feed URL answers a browser with a page instead (tests/test_feed_pages.py, and
tests/browser/test_feed_browser.py in Chromium)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree

from alerts.app import App
from alerts.feeds import build_feeds
from alerts.feeds.model import FORMATS
from alerts.ingest import ingest_files
from alerts.web import create_app
from alerts.web.testing import serve_in_thread
from tests.support import NOW
from tests.support.advisory_files import write_advisory

BASE = "https://alerts.example.org"
ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)


@pytest.fixture
def app(write_config: Callable[..., Path], advisory_dir: Path) -> Iterator[App]:
    """The sample (with an og:image) and three Medway advisories, all read in one run."""
    for number in range(3):
        write_advisory(
            advisory_dir,
            f"medway-{number}",
            title=f"Appeal {number} in Chatham",
            url=f"https://www.kent.police.uk/news/medway-{number}/",
            date=f"{10 + number}:00 01/11/2026",
            area="Medway",
        )
    app = App(write_config(site={"base_url": BASE, "name": "Kent Area Alerts"}))
    report = ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW)
    assert len(report.new) == 4 and not report.rejected
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=NOW)
    yield app
    app.close()


def text_of(element: etree._Element) -> str:
    """The element's words on one line."""
    return " ".join("".join(str(part) for part in element.itertext()).split())


def xml(app: App, name: str) -> etree._Element:
    return etree.fromstring((app.config.feeds.out / name).read_bytes())


def test_an_image_is_one_media_content_in_the_item_never_a_group_of_one(app: App) -> None:
    for name, items in (("medway.rss", "channel/item"), ("medway.atom", f"{ATOM}entry")):
        root = xml(app, name)
        assert not list(root.iter(f"{MEDIA}group")), name
        with_image = [
            item for item in root.iterfind(items) if item.find(f"{MEDIA}content") is not None
        ]
        assert len(with_image) == 1, name
        (media,) = with_image[0].findall(f"{MEDIA}content")
        assert media.get("url", "").startswith("https://") and media.get("medium") == "image"
        # Declared once, at the top, as validators and readers expect.
        assert root.nsmap.get("media") == MEDIA[1:-1]


def test_entries_read_in_one_run_carry_distinct_updated_stamps(app: App) -> None:
    for name in ("medway.atom", "all.atom"):
        stamps = [
            entry.findtext(f"{ATOM}updated") for entry in xml(app, name).iterfind(f"{ATOM}entry")
        ]
        assert len(stamps) == 4 and len(set(stamps)) == 4, (name, stamps)


def test_an_entry_changed_after_publication_is_updated_when_it_changed(
    app: App, advisory_dir: Path
) -> None:
    later = NOW + timedelta(days=1, hours=3)  # past the one-update-a-day interval
    write_advisory(
        advisory_dir,
        "medway-1",
        title="Appeal 1 in Chatham: man arrested",
        url="https://www.kent.police.uk/news/medway-1/",
        date="11:00 01/11/2026",
        area="Medway",
    )
    assert ingest_files([advisory_dir], app.store, app.gazetteer, now=later).updated
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=later)
    entries = {e.findtext(f"{ATOM}id"): e for e in xml(app, "medway.atom").iterfind(f"{ATOM}entry")}
    changed = entries["https://www.kent.police.uk/news/medway-1/"]
    assert changed.findtext(f"{ATOM}updated") == later.isoformat()
    assert changed.findtext(f"{ATOM}published") == "2026-11-01T11:00:00+00:00"
    untouched = entries["https://www.kent.police.uk/news/medway-0/"]
    assert untouched.findtext(f"{ATOM}updated") == untouched.findtext(f"{ATOM}published")


def test_no_feed_names_an_xslt_stylesheet_which_browsers_are_removing(app: App) -> None:
    folder = app.config.feeds.out
    assert not list(folder.glob("*.xsl"))
    for path in [*folder.glob("*.rss"), *folder.glob("*.atom")]:
        assert b"<?xml-stylesheet" not in path.read_bytes(), path.name


def test_a_browser_gets_a_page_and_a_reader_gets_the_feed_each_with_its_own_etag(app: App) -> None:
    with serve_in_thread(create_app(app)) as url, httpx.Client() as http:
        for fmt in ("rss", "atom", "json"):
            address = f"{url}/feeds/medway.{fmt}"
            reader = http.get(address, headers={"Accept": "application/rss+xml, */*;q=0.1"})
            assert reader.headers["content-type"] == f"{FORMATS[fmt]}; charset=utf-8"
            assert reader.content == (app.config.feeds.out / f"medway.{fmt}").read_bytes()
            browser = http.get(address, headers={"Accept": BROWSER_ACCEPT})
            assert browser.headers["content-type"] == "text/html; charset=utf-8"
            assert (
                "<h1>Kent Area Alerts: Medway</h1>" in browser.text
                and "Appeal 2 in Chatham" in browser.text
            )
            for answer in (reader, browser):
                assert answer.headers["vary"].split(", ")[0] == "Accept"
            assert browser.headers["etag"] != reader.headers["etag"]
            assert "frame-ancestors 'none'" in browser.headers["content-security-policy"]
            # Each representation's 304 answers its own tag only.
            for accept, answer in (("application/atom+xml", reader), (BROWSER_ACCEPT, browser)):
                again = http.get(
                    address, headers={"Accept": accept, "If-None-Match": answer.headers["etag"]}
                )
                assert again.status_code == 304, (fmt, accept)
            assert (
                http.get(
                    address,
                    headers={"Accept": BROWSER_ACCEPT, "If-None-Match": reader.headers["etag"]},
                ).status_code
                == 200
            )
            # No Accept, or */* (scripts, curl, most readers): the feed.
            for headers in ({}, {"Accept": "*/*"}):
                assert http.get(address, headers=headers).content == reader.content
