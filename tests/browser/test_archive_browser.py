"""The archive in a real browser, on a phone-sized screen: the Medway page lists the
sample, its autodiscovery links lead to valid feeds, and the page fits the screen."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser

from alerts.feeds import build_feeds
from alerts.ingest import ingest_files
from tests.support import NOW
from tests.support.advisory_files import write_advisory, write_hostile_advisory

SAMPLE_TITLE = "Safety advice after telephone fraudster poses as Kent Police officer"
FEED_TYPES = ["application/rss+xml", "application/atom+xml", "application/feed+json"]


def test_medway_archive_lists_the_sample_and_its_feeds_resolve(
    live_server: Callable[..., Any], page: Any, advisory_dir: Path, tmp_path: Path
) -> None:
    server = live_server()
    app = server.app
    assert ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW).new
    build_feeds(app.config.feeds, app.config.site, app.store, app.gazetteer, now=NOW)

    response = page.goto(f"{server.url}/areas/medway")
    assert response.status == 200
    assert page.title() == f"Medway advisories · {app.config.site.name}"
    assert page.get_attribute("html", "lang") == "en-GB"
    assert page.locator("h1").inner_text() == "Medway"
    assert page.locator("ul.advisories li h3 a").all_inner_texts() == [SAMPLE_TITLE]

    links = page.eval_on_selector_all(
        'head link[rel="alternate"]', "els => els.map(e => ({type: e.type, href: e.href}))"
    )
    assert [link["type"] for link in links] == FEED_TYPES
    for link in links:
        # Fetched by the browser itself, as a reader extension would.
        fetched = page.evaluate(
            "async href => { const r = await fetch(href);"
            " return {status: r.status, type: r.headers.get('content-type'), body: await r.text()}; }",
            link["href"],
        )
        assert fetched["status"] == 200 and fetched["type"].startswith(link["type"]), link
        if link["type"] == "application/feed+json":
            assert SAMPLE_TITLE in fetched["body"]
            continue
        parsed = feedparser.parse(fetched["body"].encode())
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert [entry.title for entry in parsed.entries] == [SAMPLE_TITLE]
        assert parsed.feed.link == f"{server.url}/areas/medway"

    # Readable on a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot = tmp_path / "medway-375.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000
    if os.environ.get("ALERTS_KEEP_SCREENSHOTS"):
        shutil.copy(shot, os.environ["ALERTS_KEEP_SCREENSHOTS"])

    page.get_by_role("link", name=SAMPLE_TITLE).click()
    page.wait_for_url(f"{server.url}/advisories/*")
    assert page.locator("h1").inner_text() == SAMPLE_TITLE
    assert page.locator(".body strong", has_text="Medway").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


CONTRAST = """el => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
    .map(c => c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const lum = s => { const [r, g, b] = rgb(s); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const style = getComputedStyle(el);
  let bg = style.backgroundColor, node = el;
  while (/rgba\\(0, 0, 0, 0\\)|transparent/.test(bg) && node.parentElement) {
    node = node.parentElement; bg = getComputedStyle(node).backgroundColor;
  }
  const [a, b] = [lum(style.color), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_archive_reads_well_in_dark_mode_on_a_phone(
    live_server: Callable[..., Any], browser: Any, advisory_dir: Path
) -> None:
    write_hostile_advisory(advisory_dir)
    write_advisory(
        advisory_dir,
        "urgent",
        title="Flooding on the A2 near Rochester",
        url="https://www.kent.police.uk/news/flood/",
        date="08:00 24/11/2026",
        priority="urgent",
    )
    server = live_server()
    app = server.app
    assert len(ingest_files([advisory_dir], app.store, app.gazetteer, now=NOW).new) == 3
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, color_scheme="dark", locale="en-GB"
    )
    try:
        page = context.new_page()
        page.goto(f"{server.url}/")
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        # WCAG AA (4.5:1) for the button, body text, links, muted text and the urgent badge.
        for selector in ("form.find button", "main p", "main a", "p.meta", ".urgent"):
            ratio = page.eval_on_selector(selector, CONTRAST)
            assert ratio >= 4.5, (selector, ratio)
        for path in ("/", "/areas/medway", "/areas/dover"):
            page.goto(server.url + path)
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
        hostile = app.store.advisories.find(areas=["dover"])[0]
        page.goto(f"{server.url}/advisories/{hostile.id}")
        # A link the sanitiser disarmed reads as words, not as a link that does nothing.
        dead = page.locator(".body a:not([href])").first
        assert dead.evaluate("el => getComputedStyle(el).color") == page.evaluate(
            "getComputedStyle(document.body).color"
        )
    finally:
        context.close()


FOCUS = """el => { const s = getComputedStyle(el);
  return {bg: s.backgroundColor, colour: s.color, outline: s.outlineColor, width: s.outlineWidth, shadow: s.boxShadow}; }"""
YELLOW, BLACK = "rgb(255, 221, 0)", "rgb(11, 12, 12)"


def test_keyboard_focus_is_yellow_with_black_in_light_and_dark(
    live_server: Callable[..., Any], browser: Any
) -> None:
    server = live_server()
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 375, "height": 812}, color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto(f"{server.url}/")
            page.keyboard.press("Tab")  # the skip link
            page.keyboard.press("Tab")  # the site name
            link = page.evaluate("document.activeElement.tagName")
            assert link == "A"
            style = page.evaluate(f"({FOCUS})(document.activeElement)")
            # Black text on yellow with a black bar beneath: 19:1 on any background.
            assert (
                style["bg"] == YELLOW and style["colour"] == BLACK and BLACK in style["shadow"]
            ), style
            page.focus("#q")
            page.keyboard.press("Shift+Tab")
            page.keyboard.press("Tab")
            style = page.evaluate(f"({FOCUS})(document.activeElement)")
            # A control: a yellow ring inside a black one (the black one 21:1 on white,
            # the yellow one 13:1 on the dark page).
            assert (
                style["outline"] == YELLOW and style["width"] == "3px" and BLACK in style["shadow"]
            ), style
        finally:
            context.close()
