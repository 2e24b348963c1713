"""A feed link clicked in Chromium shows a page, not raw XML and no XSLT: the feed URL
answers a browser with a page listing the area's advisories and saying how to follow it
in a feed reader, on a phone, light and dark; the same URL still gives a reader the feed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alerts.feeds import build_feeds
from alerts.feeds.model import FORMATS
from alerts.ingest import ingest_files
from alerts.web.feed_pages import FORMAT_LABELS
from tests.browser.conftest import PHONE
from tests.support import NOW
from tests.support.advisory_files import write_advisory

SAMPLE_TITLE = "Safety advice after telephone fraudster poses as Kent Police officer"


@pytest.mark.parametrize(("fmt", "scheme"), [("rss", "light"), ("atom", "dark"), ("json", "light")])
def test_a_feed_opened_in_chromium_is_a_page_listing_its_advisories_and_how_to_follow_it(
    live_server: Callable[..., Any],
    browser: Any,
    advisory_dir: Path,
    tmp_path: Path,
    fmt: str,
    scheme: str,
) -> None:
    context = browser.new_context(
        viewport=PHONE, locale="en-GB", color_scheme=scheme, timezone_id="Europe/London"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    write_advisory(
        advisory_dir,
        "chatham",
        title="Appeal after burglary in Chatham",
        url="https://www.kent.police.uk/news/chatham/",
        date="09:00 20/11/2026",
        area="Medway",
    )
    server = live_server(site={"name": "Kent Area Alerts"})
    app = server.app
    assert len(ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW).new) == 2
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=NOW)

    # As a person does: from the area's page, through its feed link.
    page.goto(f"{server.url}/areas/medway")
    href = page.eval_on_selector(f'head link[type="{FORMATS[fmt]}"]', "el => el.href")
    response = page.goto(href)
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    label = FORMAT_LABELS[fmt]
    assert page.title() == f"Medway ({label} feed) · Kent Area Alerts"
    assert page.locator("h1").inner_text() == "Kent Area Alerts: Medway"
    assert page.locator("ul.advisories li h3 a").all_inner_texts() == [
        "Appeal after burglary in Chatham",
        SAMPLE_TITLE,
    ]
    follow = page.get_by_role("region", name="How to follow this feed")
    assert "feed reader" in follow.inner_text()
    assert page.get_by_label(f"Feed address ({label})").input_value() == href
    assert (
        page.get_by_role("link", name="Get email alerts for Medway").get_attribute("href")
        == "/subscribe?area=medway"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot = tmp_path / f"medway-{fmt}-375.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000
    if os.environ.get("ALERTS_KEEP_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["ALERTS_KEEP_SCREENSHOTS"]).with_suffix(f".{fmt}.png"))

    page.get_by_role("link", name="Visit the web page for these advisories").click()
    page.wait_for_url(f"{server.url}/areas/medway")
    page.go_back()
    page.get_by_role("link", name="Appeal after burglary in Chatham").wait_for()
    # The same URL fetched as a feed reader does, from the same browser: the feed's bytes.
    fetched = context.request.get(
        href, headers={"Accept": "application/rss+xml, application/atom+xml, */*;q=0.1"}
    )
    assert fetched.body() == (app.config.feeds.out / f"medway.{fmt}").read_bytes()
    context.close()


def test_a_feed_opened_in_chromium_needs_no_xslt(
    live_server: Callable[..., Any], page: Any
) -> None:
    # The page is HTML from the server, and the feed names no stylesheet: a Chromium
    # without XSLT (as it will ship) has nothing to fail on, and shows no warning.
    server = live_server(site={"name": "Kent Area Alerts"})
    build_feeds(
        server.app.config.feeds,
        server.app.config.site,
        server.app.store,
        server.app.gazetteer,
        now=NOW,
    )
    response = page.goto(f"{server.url}/feeds/kent.rss")
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text() == "Kent Area Alerts: Kent"
    assert "This document cannot be formatted" not in page.content()
    assert b"xml-stylesheet" not in (server.app.config.feeds.out / "kent.rss").read_bytes()
