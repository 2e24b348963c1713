"""A feed's URL opened in a browser: a page, not XML (content negotiation).

Browsers are removing XSLT, so a feed can no longer style itself into a page. The feed
URL instead answers by its request's ``Accept`` header (:func:`prefers_html`): a browser
(which lists ``text/html`` ahead of every feed and XML type) gets an HTML page listing the
area's advisories and saying how to follow it; a feed reader (feed or XML types first,
``*/*``, or no ``Accept`` at all) gets the feed's bytes as before. Both answers carry
``Vary: Accept`` and ETags of their own, so a cache never hands one to the other.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from alerts.feeds.model import ALL, FORMATS, feed_url
from alerts.web.pages import render, web_app

#: The types a browser means by "a page".
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: The types a feed reader means by "the feed" (and ``*+xml``, ``*+json`` besides).
FEED_TYPES = frozenset(
    {*FORMATS.values(), "application/xml", "text/xml", "application/json", "application/rdf+xml"}
)
FORMAT_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


def prefers_html(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for a page before a feed: ``text/html`` (or
    XHTML) has a higher quality than every feed or XML type, or the same quality and
    comes first. Chromium's ``text/html,…,application/xml;q=0.9,*/*;q=0.8`` does;
    ``application/rss+xml, */*``, ``*/*`` and no header do not."""
    html: tuple[float, int] | None = None  # (quality, minus position): bigger wins
    feed: tuple[float, int] | None = None
    for position, item in enumerate((accept or "").split(",")):
        name, *params = (part.strip().lower() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        rank = (quality, -position)
        if name in HTML_TYPES:
            html = max(html or rank, rank)
        elif name in FEED_TYPES or name.endswith(("+xml", "+json")):
            feed = max(feed or rank, rank)
    return html is not None and (feed is None or html > feed)


def feed_page(request: Request, slug: str, fmt: str, headers: dict[str, str]) -> Response:
    """The page for the feed ``<slug>.<fmt>``: what it is, its address to copy into a
    feed reader, its other formats, email alerts, and the advisories it holds now."""
    app = web_app(request)
    gazetteer = app.gazetteer
    area = None if slug == ALL else gazetteer.node(slug)
    areas = None if area is None else gazetteer.matching_areas([slug])
    advisories = app.store.advisories.find(
        areas=areas, live_at=app.now(), limit=app.config.feeds.max_items
    )
    base_url = app.config.site.base_url
    context = {
        "area": area,
        "fmt": fmt,
        "label": FORMAT_LABELS[fmt],
        "address": feed_url(base_url, slug, fmt),
        "others": [
            (FORMAT_LABELS[other], feed_url(base_url, slug, other))
            for other in FORMATS
            if other != fmt
        ],
        "advisories": advisories,
        "feed_slug": slug,
    }
    response = render(request, "feed.html", context)
    response.headers.update(headers)
    return response
