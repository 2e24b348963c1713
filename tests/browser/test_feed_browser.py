"""A feed link clicked in Chromium shows a page, not raw XML: the feed's stylesheet
lists the area's advisories and says how to follow it in a feed reader, on a phone."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alerts.feeds import build_feeds
from alerts.ingest import ingest_files
from tests.support import NOW
from tests.support.advisory_files import write_advisory

SAMPLE_TITLE = "Safety advice after telephone fraudster poses as Kent Police officer"


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_a_feed_opened_in_chromium_is_a_page_listing_its_advisories_and_how_to_follow_it(
    live_server: Callable[..., Any], page: Any, advisory_dir: Path, tmp_path: Path, fmt: str
) -> None:
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
    build_feeds(app.config, app.store, app.gazetteer, now=NOW)

    # As a person does: from the area's page, through its feed link.
    page.goto(f"{server.url}/areas/medway")
    href = page.eval_on_selector(f'head link[type="application/{fmt}+xml"]', "el => el.href")
    response = page.goto(href)
    assert response.status == 200
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert page.title() == f"Kent Area Alerts: Medway ({'RSS' if fmt == 'rss' else 'Atom'} feed)"
    assert page.locator("h1").inner_text() == "Kent Area Alerts: Medway"
    assert page.locator("ol li h3 a").all_inner_texts() == [
        "Appeal after burglary in Chatham",
        SAMPLE_TITLE,
    ]
    assert page.locator("ol li time").first.inner_text() == "20 Nov 2026"
    follow = page.get_by_role("region", name="How to follow this feed")
    assert "feed reader" in follow.inner_text()
    assert (
        page.get_by_label(f"Feed address ({'RSS' if fmt == 'rss' else 'Atom'})").input_value()
        == href
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
