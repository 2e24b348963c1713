"""The public archive pages and the feeds they serve, through the app's test client
and, for conditional GET, over a real loopback HTTP server with real clients."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.feeds import build_feeds
from alerts.ingest import ingest_files
from alerts.web import create_app
from alerts.web.archive import PER_PAGE
from alerts.web.testing import serve_in_thread
from tests.support import NOW, SAMPLE
from tests.support.advisory_files import write_advisory, write_hostile_advisory
from tests.support.digests import advisory, save
from tests.support.tables import insert_rows, table_rows

BASE = "https://alerts.example.org"
SAMPLE_TITLE = "Safety advice after telephone fraudster poses as Kent Police officer"


@pytest.fixture
def site(
    write_config: Callable[..., Path], advisory_dir: Path, clock: ManualClock
) -> Iterator[App]:
    """The sample and a hostile advisory ingested, feeds built (business time is NOW)."""
    write_hostile_advisory(advisory_dir)
    app = App(write_config(site={"base_url": BASE, "name": "Kent Area Alerts"}))
    clock.set(NOW)
    report = ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW)
    assert len(report.new) == 2 and not report.rejected
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=NOW)
    yield app
    app.close()


@pytest.fixture
def client(site: App) -> TestClient:
    return TestClient(create_app(site))


def alternates(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<link rel="alternate" type="([^"]+)" title="[^"]*" href="([^"]+)">', html)


def sample_id(app: App) -> int:
    return app.store.advisories.find(areas=["medway"])[0].id


def test_area_page_lists_what_the_area_gets_newest_first(client: TestClient) -> None:
    page = client.get("/areas/chatham")  # Chatham gets the Medway advisory: the matching rule
    assert page.status_code == 200
    assert '<html lang="en-GB">' in page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert SAMPLE_TITLE in page.text
    assert "Warning Second line in Dover" not in page.text
    assert "18 December 2020, 14:30" in page.text
    dover = client.get("/areas/dover").text
    assert "Warning Second line in Dover" in dover and SAMPLE_TITLE not in dover


def test_pages_carry_autodiscovery_links_for_the_areas_three_feeds(client: TestClient) -> None:
    assert alternates(client.get("/areas/medway").text) == [
        ("application/rss+xml", f"{BASE}/feeds/medway.rss"),
        ("application/atom+xml", f"{BASE}/feeds/medway.atom"),
        ("application/feed+json", f"{BASE}/feeds/medway.json"),
    ]
    assert [href for _, href in alternates(client.get("/").text)] == [
        f"{BASE}/feeds/all.rss",
        f"{BASE}/feeds/all.atom",
        f"{BASE}/feeds/all.json",
    ]


def test_index_lists_districts_and_towns(client: TestClient) -> None:
    page = client.get("/").text
    for slug in ("kent", "medway", "dover", "chatham"):
        assert f'href="/areas/{slug}"' in page


def test_names_and_postcode_districts_redirect_to_the_areas_address(client: TestClient) -> None:
    for asked, slug in (("ME4", "chatham"), ("Medway", "medway"), ("me8", "medway")):
        response = client.get(f"/areas/{asked}", follow_redirects=False)
        assert response.status_code == 301
        assert response.headers["location"].endswith(f"/areas/{slug}")


def test_the_find_box_takes_a_town_or_postcode_to_its_area(client: TestClient) -> None:
    for query, slug in (
        ("ME4 4TR", "chatham"),
        ("ME8 9AA", "medway"),
        ("chatham", "chatham"),
        ("  Dover ", "dover"),
    ):
        response = client.get("/find", params={"q": query}, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].endswith(
            f"/areas/{slug}"
        ), query
    assert client.get("/find", params={"q": ""}, follow_redirects=False).status_code == 303
    missing = client.get("/find", params={"q": "Atlantis"})
    assert missing.status_code == 404 and "No area in Kent matches “Atlantis”." in missing.text
    assert 'action="/find"' in client.get("/").text


def test_unknown_area_is_a_friendly_404_that_suggests_the_fix(client: TestClient) -> None:
    page = client.get("/areas/medwya")
    assert page.status_code == 404
    assert "There is no area called “medwya”." in page.text
    assert 'Did you mean <a href="/areas/medway">Medway</a>?' in page.text
    assert '<a href="/">Go to the list of areas</a>' in page.text


def test_unknown_advisory_and_unknown_path_are_friendly_404s(client: TestClient) -> None:
    page = client.get("/advisories/99999")
    assert page.status_code == 404 and "Advisory not found" in page.text
    page = client.get("/no/such/page")
    assert (
        page.status_code == 404 and "Page not found" in page.text and "Traceback" not in page.text
    )


def test_advisory_page_shows_the_sanitised_body_and_the_original_link(
    client: TestClient, site: App
) -> None:
    page = client.get(f"/advisories/{sample_id(site)}")
    assert page.status_code == 200
    assert f"<h1>{SAMPLE_TITLE}</h1>" in page.text
    assert "<strong>Medway</strong>" in page.text
    advisory = site.store.advisories.find(areas=["medway"])[0]
    assert f'href="{advisory.url}"' in page.text
    assert alternates(page.text)[0] == ("application/rss+xml", f"{BASE}/feeds/medway.rss")


def test_archive_pages_forbid_scripts_should_a_sanitiser_ever_miss_one(
    client: TestClient, site: App
) -> None:
    for path in (
        "/",
        "/areas/dover",
        f"/advisories/{site.store.advisories.find(areas=['dover'])[0].id}",
    ):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy, path
        assert headers["x-content-type-options"] == "nosniff"
    assert client.get("/feeds/dover.rss").headers["x-content-type-options"] == "nosniff"


def test_hostile_advisory_page_carries_none_of_it(client: TestClient, site: App) -> None:
    hostile = site.store.advisories.find(areas=["dover"])[0]
    for path in (f"/advisories/{hostile.id}", "/areas/dover", "/"):
        text = client.get(path).text
        for marker in (
            "<script",
            "onerror",
            "onclick",
            "<iframe",
            'href="javascript',
            "\x01",
            "\x07",
        ):
            assert marker not in text, (path, marker)
        # The only "alert(" left is the Markdown link that Markdown refused to make a
        # link: inert text, shown as written, not a script or an href.
        assert text.count("alert(") == text.count("](javascript:alert("), path
    assert "<h1>Warning Second line in Dover</h1>" in client.get(f"/advisories/{hostile.id}").text


def test_withdrawn_advisory_page_is_gone_without_its_content(
    client: TestClient, site: App, advisory_dir: Path
) -> None:
    copy = advisory_dir / SAMPLE.name
    copy.write_text(
        copy.read_text(encoding="utf-8").replace("area: Kent", "area: Kent\nstatus: withdrawn"),
        encoding="utf-8",
    )
    ingest_files([advisory_dir], site.store, site.gazetteer, now=NOW)
    page = client.get(f"/advisories/{sample_id(site)}")
    assert page.status_code == 410
    assert "This advisory has been withdrawn." in page.text
    assert "<strong>Medway</strong>" not in page.text
    assert SAMPLE_TITLE not in client.get("/areas/medway").text


def test_area_pages_are_paged(write_config: Callable[..., Path], tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(35):
        write_advisory(
            folder,
            f"a{n:02}",
            title=f"Advice number {n:02} for Dover",
            url=f"https://www.kent.police.uk/news/{n}/",
            date=f"10:{n:02} 01/11/2026",
        )
    app = App(write_config(sources=[{"path": str(folder)}]))
    ingest_files([folder], app.store, app.gazetteer, now=NOW)
    client = TestClient(create_app(app))
    first = client.get("/areas/dover").text
    assert (
        "Advice number 34" in first
        and "Advice number 05" in first
        and "Advice number 04" not in first
    )
    assert 'rel="next"' in first
    second = client.get("/areas/dover?page=2").text
    assert "Advice number 04" in second and "Advice number 00" in second and 'rel="prev"' in second
    # Each page has its own title: bookmarks, history and search results tell them apart.
    assert "<title>Dover advisories · " in first
    assert "<title>Dover advisories (page 2) · " in second
    app.close()


def test_every_page_of_a_long_archive_is_reachable(
    write_config: Callable[..., Path],
    db_url: str,
    clock: ManualClock,
) -> None:
    # 41 full pages and one row more: page 42 holds exactly the oldest advisory. Rows go
    # in with one bulk INSERT (through save_advisory this would take seconds).
    total = 41 * PER_PAGE + 1
    app = App(write_config(database=db_url))
    start = NOW - timedelta(days=30)
    rows = [
        {
            "key": f"https://www.kent.police.uk/news/{n}/",
            "url": f"https://www.kent.police.uk/news/{n}/",
            "title": f"Advice number {n:04} for Dover",
            "content_hash": str(n),
            "source": "bulk",
            "published_at": start + timedelta(minutes=n),
            "first_seen_at": NOW,
            "changed_at": NOW,
            "updated_at": NOW,
        }
        for n in range(total)
    ]
    insert_rows(app.store.engine, "advisories", rows)
    ids = [row["id"] for row in table_rows(app.store.engine, "advisories")]
    insert_rows(
        app.store.engine, "advisory_areas", [{"advisory_id": i, "area": "dover"} for i in ids]
    )
    client = TestClient(create_app(app))
    clock.set(NOW)
    page_41 = client.get("/areas/dover?page=41").text
    # Newest first: page 41 holds numbers PER_PAGE down to 1, page 42 number 0 alone.
    assert (
        f"Advice number {PER_PAGE:04} for Dover" in page_41
        and "Advice number 0001 for Dover" in page_41
    )
    assert f"Advice number {PER_PAGE + 1:04} for Dover" not in page_41
    assert "Advice number 0000 for Dover" not in page_41
    assert 'href="?page=42" rel="next"' in page_41
    last = client.get("/areas/dover?page=42")
    assert last.status_code == 200 and "Advice number 0000 for Dover" in last.text
    assert 'rel="next"' not in last.text and 'href="?page=41" rel="prev"' in last.text
    beyond = client.get("/areas/dover?page=43")
    assert beyond.status_code == 404 and "fewer pages of advisories for Dover" in beyond.text
    for silly in ("0", "-3", "x", "9" * 40):
        response = client.get(f"/areas/dover?page={silly}")
        assert response.status_code in (200, 404) and "Traceback" not in response.text, silly
    app.close()


# -- feeds, served --------------------------------------------------------------------


def test_feed_is_served_with_its_type_etag_and_last_modified(client: TestClient, site: App) -> None:
    response = client.get("/feeds/medway.rss")
    path = site.config.feeds.out / "medway.rss"
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert response.content == path.read_bytes()
    assert re.fullmatch(
        r'"[0-9a-f]{32}(-gzip)?"', response.headers["etag"]
    )  # the test client asks for gzip
    assert response.headers["last-modified"] == formatdate(int(path.stat().st_mtime), usegmt=True)
    assert (
        client.get("/feeds/medway.atom").headers["content-type"]
        == "application/atom+xml; charset=utf-8"
    )
    assert (
        client.get("/feeds/medway.json").headers["content-type"]
        == "application/feed+json; charset=utf-8"
    )


def test_conditional_get_answers_304_when_nothing_changed(client: TestClient) -> None:
    first = client.get("/feeds/medway.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
    ):
        response = client.get("/feeds/medway.atom", headers=headers)
        assert response.status_code == 304, headers
        assert response.content == b""
        assert response.headers["etag"] == etag
    assert client.get("/feeds/medway.atom", headers={"If-None-Match": '"stale"'}).status_code == 200
    old = formatdate(0, usegmt=True)
    assert client.get("/feeds/medway.atom", headers={"If-Modified-Since": old}).status_code == 200
    assert (
        client.get("/feeds/medway.atom", headers={"If-Modified-Since": "garbage"}).status_code
        == 200
    )
    # If-None-Match decides when both are sent (RFC 9110): a stale tag means 200.
    both = {"If-None-Match": '"stale"', "If-Modified-Since": modified}
    assert client.get("/feeds/medway.atom", headers=both).status_code == 200


def test_rebuild_with_nothing_new_keeps_the_etag_and_a_change_alters_it(
    client: TestClient, site: App, tmp_path: Path
) -> None:
    etag = client.get("/feeds/medway.rss").headers["etag"]
    build_feeds(
        site.config.feeds,
        site.config.site,
        site.store,
        site.gazetteer,
        now=NOW + timedelta(hours=1),
    )
    assert client.get("/feeds/medway.rss", headers={"If-None-Match": etag}).status_code == 304
    folder = tmp_path / "news"
    folder.mkdir()
    write_advisory(folder, "m", title="Appeal in Chatham", url="https://www.kent.police.uk/news/m/")
    ingest_files([folder], site.store, site.gazetteer, now=NOW + timedelta(hours=2))
    build_feeds(
        site.config.feeds,
        site.config.site,
        site.store,
        site.gazetteer,
        now=NOW + timedelta(hours=2),
    )
    changed = client.get("/feeds/medway.rss", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert "Appeal in Chatham" in changed.text


def test_a_feed_replaced_by_one_of_the_same_size_and_mtime_gets_a_new_etag(
    client: TestClient, site: App
) -> None:
    path = site.config.feeds.out / "medway.json"
    etag = client.get("/feeds/medway.json", headers={"Accept-Encoding": "identity"}).headers["etag"]
    info = path.stat()
    data = path.read_bytes()
    swapped = data.replace(b"Medway", b"MEDWAY", 1)
    assert swapped != data and len(swapped) == len(data)
    replacement = path.with_name(".medway.json.tmp")
    replacement.write_bytes(swapped)
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(replacement, path)  # as build_feeds writes: a new file renamed in
    response = client.get(
        "/feeds/medway.json", headers={"If-None-Match": etag, "Accept-Encoding": "identity"}
    )
    assert response.status_code == 200 and response.headers["etag"] != etag
    assert response.content == swapped


def test_a_postcode_districts_feed_redirects_to_its_town_or_district(client: TestClient) -> None:
    response = client.get("/feeds/me4.atom", follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"].endswith(
        "/feeds/chatham.atom"
    )
    response = client.get("/feeds/me8.atom", follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"].endswith(
        "/feeds/medway.atom"
    )


def test_unknown_or_unbuilt_feed_is_a_friendly_404(client: TestClient, site: App) -> None:
    for path in (
        "/feeds/nowhere.rss",
        "/feeds/medway.xml",
        "/feeds/.medway.rss.tmp",
        "/feeds/.feeds-state.json",
    ):
        response = client.get(path)
        assert response.status_code == 404 and "Feed not found" in response.text, path
    response = client.get("/feeds/..%2Fconfig.yaml")
    assert response.status_code == 404 and "database:" not in response.text
    (site.config.feeds.out / "dover.rss").unlink()
    response = client.get("/feeds/dover.rss")
    assert response.status_code == 404 and "alerts feeds build" in response.text


def test_readers_fetch_feeds_over_loopback_http_with_conditional_get(site: App) -> None:
    with serve_in_thread(create_app(site)) as url:
        first = httpx.get(f"{url}/feeds/chatham.atom")
        assert first.status_code == 200
        again = httpx.get(
            f"{url}/feeds/chatham.atom", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        # feedparser is a real reader: it fetches, parses, and sends its own validators.
        parsed = feedparser.parse(f"{url}/feeds/chatham.atom")
        assert not parsed.bozo and parsed.status == 200
        assert [entry.title for entry in parsed.entries] == [SAMPLE_TITLE]
        cached = feedparser.parse(
            f"{url}/feeds/chatham.atom", etag=parsed.etag, modified=parsed.modified
        )
        assert cached.status == 304 and cached.entries == []
        cached = feedparser.parse(
            f"{url}/feeds/chatham.rss",
            modified=httpx.get(f"{url}/feeds/chatham.rss").headers["last-modified"],
        )
        assert cached.status == 304
        head = httpx.head(f"{url}/feeds/chatham.rss")
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"]
        # Subscribed by postcode: the reader is told, permanently, where the feed lives
        # (on the configured site, whatever host the request came in on).
        moved = httpx.get(f"{url}/feeds/me4.rss")
        assert moved.status_code == 301 and moved.headers["location"] == f"{BASE}/feeds/chatham.rss"
        parsed = feedparser.parse(f"{url}/feeds/chatham.rss")
        assert [entry.title for entry in parsed.entries] == [SAMPLE_TITLE]


def test_feeds_are_gzipped_for_readers_that_ask_and_304_works_across_encodings(site: App) -> None:
    raw = (site.config.feeds.out / "all.atom").read_bytes()
    with serve_in_thread(create_app(site)) as url, httpx.Client() as http:
        plain = http.get(f"{url}/feeds/all.atom", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == raw
        packed = http.get(f"{url}/feeds/all.atom", headers={"Accept-Encoding": "gzip, deflate"})
        assert (
            packed.headers["content-encoding"] == "gzip" and packed.content == raw
        )  # httpx unpacks
        assert int(packed.headers["content-length"]) < len(raw)
        assert (
            packed.headers["etag"] != plain.headers["etag"]
        )  # two representations, two strong tags
        for response in (plain, packed):
            assert response.headers["vary"] == "Accept, Accept-Encoding"
            assert response.headers["cache-control"] == "public, max-age=300"
        # A reader's tag for either encoding means it holds this version.
        for tag in (plain.headers["etag"], packed.headers["etag"]):
            for encoding in ("identity", "gzip"):
                again = http.get(
                    f"{url}/feeds/all.atom",
                    headers={"If-None-Match": tag, "Accept-Encoding": encoding},
                )
                assert again.status_code == 304 and again.content == b"", (tag, encoding)
        refused = http.get(f"{url}/feeds/all.atom", headers={"Accept-Encoding": "gzip;q=0, br"})
        assert "content-encoding" not in refused.headers
        head = http.head(f"{url}/feeds/all.rss", headers={"Accept-Encoding": "gzip"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "application/rss+xml; charset=utf-8"
        # The same bytes each time: a cache or reader comparing them sees no change.
        assert (
            http.get(f"{url}/feeds/all.atom").headers["content-length"]
            == packed.headers["content-length"]
        )


def test_a_feed_answers_other_methods_with_405_and_what_is_allowed(client: TestClient) -> None:
    response = client.post("/feeds/medway.rss")
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    assert "Not allowed here" in response.text


def test_alerts_web_with_a_bad_config_fails_before_serving(
    run_cli: Callable[..., Any], write_config: Callable[..., Path]
) -> None:
    result = run_cli("web", "--port", "1", config=write_config(site={"base_url": "not a url"}))
    assert result.exit_code == 2
    assert "site.base_url" in result.output and result.output.count("\n") == 1


def test_a_villages_page_lists_what_concerns_it_and_its_feed_is_its_towns(
    client: TestClient,
) -> None:
    page = client.get("/areas/lordswood")
    assert page.status_code == 200 and "Lordswood" in page.text
    assert "/feeds/chatham.rss" in page.text
    response = client.get("/feeds/lordswood.rss", follow_redirects=False)
    assert response.status_code == 301 and response.headers["location"].endswith(
        "/feeds/chatham.rss"
    )


def crumbs(html: str) -> list[str]:
    nav = re.search(r'<nav class="crumbs" aria-label="Breadcrumb">(.*?)</nav>', html, re.S)
    assert nav, html
    return re.findall(r"<li><a [^>]*>([^<]+)</a></li>", nav.group(1))


def test_the_advisory_breadcrumb_is_its_path_in_the_tree_and_places_are_listed_apart(
    site: App, client: TestClient
) -> None:
    both = save(site, advisory("both", areas=["chatham", "gillingham"], title="Two towns"))
    one = save(site, advisory("one", areas=["chatham"], title="One town"))
    page = client.get(f"/advisories/{both}").text
    # Siblings are not nested: the path leads to the district that holds both towns.
    assert crumbs(page) == ["All areas", "Kent", "Medway"]
    places = re.search(r'<p class="meta places">(.*?)</p>', page, re.S)
    assert places and re.findall(r">([^<]+)</a>", places.group(1)) == ["Chatham", "Gillingham"]
    assert crumbs(client.get(f"/advisories/{one}").text) == [
        "All areas",
        "Kent",
        "Medway",
        "Chatham",
    ]
    assert crumbs(client.get("/areas/chatham").text) == ["All areas", "Kent", "Medway", "Chatham"]


@pytest.mark.parametrize("path", ["/", "/areas/medway", "/subscribe", "/privacy"])
def test_html_pages_carry_an_etag_answer_304_and_are_gzipped(client: TestClient, path: str) -> None:
    first = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200
    assert (
        first.headers["content-encoding"] == "gzip"
        and "accept-encoding" in first.headers["vary"].lower()
    )
    assert (
        int(first.headers["content-length"]) < len(first.content) / 2
    )  # sent compressed, read whole
    etag = first.headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": 'W/"other"'}).status_code == 200
