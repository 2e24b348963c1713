"""Which answer a feed URL gives: the rule that tells a browser from a feed reader by
its ``Accept`` header (content negotiation; see alerts/web/feed_pages.py)."""

from __future__ import annotations

import pytest

from alerts.web.feed_pages import prefers_html

BROWSERS = {
    "chromium": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7",
    "firefox": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "safari": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "html at the same quality, first": "text/html, application/rss+xml",
}
READERS = {
    "no accept": None,
    "empty": "",
    "anything": "*/*",
    "feedparser": "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
    "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",
    "a reader that takes html last": "application/rss+xml, application/atom+xml, text/xml;q=0.9, text/html;q=0.1",
    "feed first at the same quality": "application/rss+xml, text/html",
    "json feed reader": "application/feed+json, application/json;q=0.9, text/html;q=0.5",
    "html refused": "text/html;q=0, application/xml",
    "a bad quality is no quality": "text/html;q=high, application/xml;q=0.5",
}


@pytest.mark.parametrize("accept", BROWSERS.values(), ids=BROWSERS.keys())
def test_a_browser_accept_header_gets_the_page(accept: str) -> None:
    assert prefers_html(accept)


@pytest.mark.parametrize("accept", READERS.values(), ids=READERS.keys())
def test_a_feed_reader_accept_header_gets_the_feed(accept: str | None) -> None:
    assert not prefers_html(accept)
