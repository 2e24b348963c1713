"""The alert email as a phone shows it: the HTML part of a real message (built by the
MessageFactory) opened in Chromium at 320 px, light and dark, with an advisory that
holds what stretches mail layouts (a long unbroken URL, a table, preformatted text);
and the archive page of the same advisory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.app import App
from alerts.digest import queue_digests
from alerts.types import Frequency, Priority
from tests.support import NOW
from tests.support.digests import advisory, built, parts, save, subscribe

LONG_URL = "https://www.actionfraud.police.uk/report/" + "x" * 120
BODY = (
    f"<p>Report it at {LONG_URL} or call 0300 123 2040.</p><h2>What to do</h2><ul><li>Hang up</li></ul>"
    "<table><tr><th>Date</th><th>Place</th><th>Description of the incident</th></tr>"
    "<tr><td>12/11/2026</td><td>Rochester High Street</td><td>Catalytic converter stolen overnight</td></tr></table>"
    "<pre>Reference: 46/123456/26 and some longer preformatted text</pre>"
)


@pytest.fixture
def app(write_config: Callable[..., Path], sqlite_url: str) -> Iterator[App]:
    app = App(write_config(database=sqlite_url))
    yield app
    app.close()


def html_of_each_message(app: App, tmp_path: Path) -> list[Path]:
    paths = []
    for index, (_, _, message) in enumerate(built(app)):
        path = tmp_path / f"message-{index}.html"
        path.write_text(parts(message)[1], encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_alert_emails_fit_a_320px_screen_light_and_dark(
    browser: Any, app: App, tmp_path: Path, scheme: str
) -> None:
    subscribe(app, "now@example.org", ["medway"], frequency="immediate")
    subscribe(app, "day@example.org", ["medway", "dover"], frequency="daily")
    save(app, advisory("flood", title="Flood warning", priority=Priority.URGENT, body=BODY))
    save(
        app,
        advisory(
            "thefts", title="Catalytic converter thefts", body=BODY, summary=f"Report at {LONG_URL}"
        ),
    )
    save(app, advisory("dover", areas=["dover"], title="Dover harbour scam"))
    queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.IMMEDIATE, now=NOW
    )
    queue_digests(
        app.config.mail, app.config.digests, app.store, app.gazetteer, Frequency.DAILY, now=NOW
    )
    paths = html_of_each_message(app, tmp_path)
    assert len(paths) == 4  # two immediate alerts, the urgent one again for daily, one digest

    context = browser.new_context(viewport={"width": 320, "height": 640}, color_scheme=scheme)
    try:
        page = context.new_page()
        for path in paths:
            page.goto(path.as_uri())
            assert page.evaluate("document.documentElement.scrollWidth") <= 320, path.name
            assert page.locator("h1").count() == 1
            # Body text is light on dark in dark mode, dark on light otherwise.
            colour = page.eval_on_selector("td.footer p", "e => getComputedStyle(e).color")
            channels = [
                int(c) for c in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]
            ]
            assert (min(channels) > 150) if scheme == "dark" else (max(channels) < 120), colour
    finally:
        context.close()


def test_the_advisory_page_with_the_same_content_fits_a_320px_screen(
    live_server: Callable[..., Any], page: Any
) -> None:
    server = live_server()
    advisory_id = save(server.app, advisory("flood", title="Flood warning", body=BODY))
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{server.url}/advisories/{advisory_id}")
    assert page.locator("h1").inner_text() == "Flood warning"
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
