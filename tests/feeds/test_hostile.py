"""A hostile advisory, ingested through the real path, leaves every feed well-formed and
carries none of its script, javascript: links, event handlers or control characters."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from alerts.areas import Gazetteer
from alerts.config import SiteConfig
from alerts.feeds import build_feeds
from alerts.ingest import ingest_files
from alerts.store import Store
from tests.support import NOW
from tests.support.advisory_files import write_hostile_advisory
from tests.support.sections import feeds_config


class Markup(HTMLParser):
    """Every tag and attribute in an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


def assert_harmless(fragment: str) -> None:
    markup = Markup()
    markup.feed(fragment)
    assert not {"script", "iframe", "img", "style"} & set(markup.tags), markup.tags
    for name, value in markup.attributes:
        assert not name.startswith("on") and name != "style", name
        assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:")), value


@pytest.fixture
def hostile_feeds(tmp_path: Path, sqlite_store: Store, gazetteer: Gazetteer) -> Path:
    """The feeds folder, built after the hostile advisory was ingested."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    write_hostile_advisory(folder)
    report = ingest_files([folder], sqlite_store, gazetteer, now=NOW)
    assert report.new and not report.rejected, report.rejected
    feeds = feeds_config(tmp_path)
    build_feeds(feeds, SiteConfig(), sqlite_store, gazetteer, now=NOW)
    return feeds.out


@pytest.mark.parametrize("slug", ["dover", "all"])
def test_hostile_advisory_leaves_feeds_well_formed_and_harmless(
    hostile_feeds: Path, slug: str
) -> None:
    folder = hostile_feeds
    for fmt in ("rss", "atom"):
        raw = (folder / f"{slug}.{fmt}").read_bytes()
        etree.fromstring(raw)  # strict XML parser: raises on any ill-formed byte
        assert b"<script" not in raw and b"]]>" not in raw
        assert not any(byte < 0x20 and byte not in (0x09, 0x0A, 0x0D) for byte in raw)
        parsed = feedparser.parse(raw)
        assert not parsed.bozo, parsed.get("bozo_exception")
        (entry,) = parsed.entries
        assert entry.title == "Warning Second line in Dover"  # one line, markup and BEL gone
        assert entry.summary == "Summary bold for Dover"
        content = entry.content[0].value
        assert_harmless(content)
        # What was text stays text, escaped once: the CDATA terminator survives as words.
        assert (
            "A CDATA end ]]&gt; in the text" in content or "A CDATA end ]]> in the text" in content
        )
        assert "Residents of Dover should be careful." in content
    item = json.loads((folder / f"{slug}.json").read_bytes())["items"][0]
    assert item["title"] == "Warning Second line in Dover"
    assert_harmless(item["content_html"])
    assert "\x01" not in item["content_html"] and "\x1b" not in item["content_html"]
