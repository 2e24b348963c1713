"""What the W3C Feed Validator and browsers need of our RSS and Atom: an image is one
``media:content`` in the item (never a ``media:group`` of one), entries read in one run
carry distinct ``updated`` stamps, and every feed names a stylesheet that turns it into
a page listing its advisories and saying how to follow it (applied here with libxslt,
the XSLT engine Chromium uses; tests/browser/test_feed_browser.py opens it in Chromium)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree

from alerts.app import App
from alerts.feeds import build_feeds
from alerts.feeds.render import STYLESHEET
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
    build_feeds(app.config, app.store, app.gazetteer, now=NOW)
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
    build_feeds(app.config, app.store, app.gazetteer, now=later)
    entries = {e.findtext(f"{ATOM}id"): e for e in xml(app, "medway.atom").iterfind(f"{ATOM}entry")}
    changed = entries["https://www.kent.police.uk/news/medway-1/"]
    assert changed.findtext(f"{ATOM}updated") == later.isoformat()
    assert changed.findtext(f"{ATOM}published") == "2026-11-01T11:00:00+00:00"
    untouched = entries["https://www.kent.police.uk/news/medway-0/"]
    assert untouched.findtext(f"{ATOM}updated") == untouched.findtext(f"{ATOM}published")


def test_every_xml_feed_names_the_stylesheet_written_beside_it(app: App) -> None:
    folder = app.config.feeds.out
    assert (folder / STYLESHEET).read_bytes() == (Path("alerts/feeds") / STYLESHEET).read_bytes()
    for path in [*folder.glob("*.rss"), *folder.glob("*.atom")]:
        head = path.read_bytes()[:200].decode()
        assert f'<?xml-stylesheet type="text/xsl" href="{STYLESHEET}"?>' in head, path.name


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_the_stylesheet_makes_a_feed_a_page_listing_its_advisories_and_how_to_follow_it(
    app: App, fmt: str
) -> None:
    transform = etree.XSLT(etree.parse(str(app.config.feeds.out / STYLESHEET)))
    page = transform(etree.parse(str(app.config.feeds.out / f"medway.{fmt}")))
    html = page.getroot()
    assert html.get("lang") == "en-GB"
    assert (
        html.findtext("head/title")
        == f"Kent Area Alerts: Medway ({fmt.upper() if fmt == 'rss' else 'Atom'} feed)"
    )
    assert html.findtext(".//h1") == "Kent Area Alerts: Medway"
    links = list(html.iterfind(".//ol/li/h3/a"))
    assert [text_of(a) for a in links[:3]] == [
        "Appeal 2 in Chatham",
        "Appeal 1 in Chatham",
        "Appeal 0 in Chatham",
    ]
    assert links[0].get("href") == "https://www.kent.police.uk/news/medway-2/"
    assert text_of(next(html.iterfind(".//ol/li/time"))) == "1 Nov 2026"
    (address,) = html.iterfind(".//input[@id='feed-address']")
    assert address.get("value") == f"{BASE}/feeds/medway.{fmt}" and address.get("readonly")
    assert html.find(".//label[@for='feed-address']") is not None
    assert "feed reader" in text_of(next(html.iterfind(".//section")))
    assert f"{BASE}/areas/medway" in [a.get("href") for a in html.iterfind(".//section//a")]


def test_the_stylesheet_shows_markup_in_a_title_as_text_never_as_markup(
    app: App, advisory_dir: Path
) -> None:
    write_advisory(
        advisory_dir,
        "evil",
        title="<b>Bold</b> & <script>alert(1)</script>",
        url="https://www.kent.police.uk/news/evil/",
        area="Medway",
    )
    ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW)
    build_feeds(app.config, app.store, app.gazetteer, now=NOW)
    transform = etree.XSLT(etree.parse(str(app.config.feeds.out / STYLESHEET)))
    for fmt in ("rss", "atom"):
        page = transform(etree.parse(str(app.config.feeds.out / f"medway.{fmt}")))
        assert page.getroot().find(".//script") is None and page.getroot().find(".//ol//b") is None


def test_a_browser_gets_the_feed_as_xml_it_renders_and_a_reader_gets_the_feed_type(
    app: App,
) -> None:
    with serve_in_thread(create_app(app)) as url, httpx.Client() as http:
        for fmt in ("rss", "atom"):
            reader = http.get(
                f"{url}/feeds/medway.{fmt}", headers={"Accept": "application/rss+xml, */*;q=0.1"}
            )
            assert reader.headers["content-type"] == f"application/{fmt}+xml; charset=utf-8"
            browser = http.get(f"{url}/feeds/medway.{fmt}", headers={"Accept": BROWSER_ACCEPT})
            assert browser.headers["content-type"] == "application/xml; charset=utf-8"
            assert browser.content == reader.content and "Accept" in browser.headers["vary"]
            # What a page's script or a reader without Accept gets: the feed's own type.
            assert (
                http.get(f"{url}/feeds/medway.{fmt}")
                .headers["content-type"]
                .startswith(f"application/{fmt}+xml")
            )
        as_json = http.get(f"{url}/feeds/medway.json", headers={"Accept": BROWSER_ACCEPT})
        assert as_json.headers["content-type"] == "application/feed+json; charset=utf-8"
        style = http.get(f"{url}/feeds/{STYLESHEET}")
        assert (
            style.status_code == 200 and style.headers["content-type"] == "text/xsl; charset=utf-8"
        )
        assert style.content == (app.config.feeds.out / STYLESHEET).read_bytes()
        assert (
            http.get(
                f"{url}/feeds/{STYLESHEET}", headers={"If-None-Match": style.headers["etag"]}
            ).status_code
            == 304
        )
