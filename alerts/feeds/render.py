"""One :class:`~alerts.feeds.model.Feed` as RSS 2.0, Atom (RFC 4287) and JSON Feed 1.1.

feedgen 1.0 writes the XML. Its traps, each handled below: ``add_entry`` prepends
unless told ``order='append'``; naive datetimes raise; the RSS channel ``<link>`` is the
href of the *last* ``fg.link()`` call; ``description()`` after ``content()`` would
replace the Atom content (so ``summary()`` is used); ``updated``/``lastBuildDate``
default to the clock (so they are always pinned); XML-illegal control characters make
lxml raise (the model strips them); entry links lose their ``rel`` and ``type``
in Atom output (a shadowed variable in feedgen), which :func:`render_atom` puts back;
and its media extension wraps even a single ``media:content`` in a ``media:group``,
which the W3C Feed Validator rejects ("media:group must have multiple media:content
children"), so the image is written here as a bare ``media:content``.

Both XML feeds start with an ``xml-stylesheet`` processing instruction naming
:data:`STYLESHEET` (``alerts/feeds/feed.xsl``, written beside the feeds): a browser that
opens a feed shows a page listing its advisories and how to follow it, not raw XML.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator
from lxml import etree

from alerts.feeds.model import Entry, Feed, area_url

GENERATOR = "Area Alerts"
ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA_NS = "http://search.yahoo.com/mrss/"
#: The stylesheet's file name, beside the feeds (so relative to each feed's URL).
STYLESHEET = "feed.xsl"


def _generator(feed: Feed, fmt: str) -> FeedGenerator:
    fg = FeedGenerator()
    # RSS <author> must be an email address; dc:creator is how RSS names an author.
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(feed.url("atom"))
    fg.title(feed.title)
    fg.subtitle(feed.subtitle)  # also the RSS channel description
    fg.language(feed.language)
    fg.author({"name": feed.publisher})
    fg.generator(GENERATOR)
    fg.updated(feed.updated)  # Atom updated and RSS lastBuildDate, pinned: never the clock
    # Self first, alternate last: RSS takes its channel <link> from the last call.
    fg.link(href=feed.url(fmt), rel="self", type=f"application/{fmt}+xml")
    fg.link(href=feed.home_url, rel="alternate", type="text/html")
    for entry in feed.entries:
        fe = fg.add_entry(order="append")  # the model is already newest first
        fe.guid(entry.id, permalink=entry.permalink)  # also the Atom id
        fe.title(entry.title)
        for link in _entry_links(entry):
            fe.link(**link)
        fe.published(entry.published)
        fe.updated(entry.updated)
        fe.author({"name": feed.publisher})
        fe.dc.dc_creator(feed.publisher)
        fe.content(entry.content_html, type="html")
        # summary(), not description(): the latter would replace the Atom content.
        if entry.summary:
            fe.summary(entry.summary)
        for category in entry.categories:
            fe.category(term=category.slug, label=category.name, scheme=area_url(feed.base_url, ""))
    return fg


def render_rss(feed: Feed) -> bytes:
    root = etree.fromstring(_generator(feed, "rss").rss_str())
    for element, entry in zip(root.iterfind("channel/item"), feed.entries, strict=True):
        _add_image(element, entry)
    return _finish(root)


def render_atom(feed: Feed) -> bytes:
    root = etree.fromstring(_generator(feed, "atom").atom_str())
    for element, entry in zip(root.iterfind(f"{ATOM}entry"), feed.entries, strict=True):
        for tag, link in zip(element.iterfind(f"{ATOM}link"), _entry_links(entry), strict=True):
            tag.set("rel", link["rel"])
            tag.set("type", link["type"])
        _add_image(element, entry)
    return _finish(root)


def _add_image(element: Any, entry: Entry) -> None:
    """One ``media:content`` straight in the item: a group of one is invalid Media RSS.
    (An enclosure would need the image's length in bytes, which we do not know.)"""
    if not entry.image_url:
        return
    media = etree.SubElement(element, f"{{{MEDIA_NS}}}content", url=entry.image_url, medium="image")
    if entry.image_type:
        media.set("type", entry.image_type)


def _finish(root: Any) -> bytes:
    """Declare the Media RSS namespace once at the top, indent, and put the
    stylesheet instruction before the root element."""
    etree.cleanup_namespaces(root, top_nsmap={"media": MEDIA_NS})
    etree.indent(root, space="  ")
    root.addprevious(
        etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{STYLESHEET}"')
    )
    data: bytes = etree.tostring(
        root.getroottree(), encoding="UTF-8", xml_declaration=True, pretty_print=True
    )
    return data


def _entry_links(entry: Entry) -> list[dict[str, str]]:
    # Alternate last: RSS takes the item <link> from the last alternate.
    return [
        {"href": entry.archive_url, "rel": "related", "type": "text/html"},
        {"href": entry.url, "rel": "alternate", "type": "text/html"},
    ]


def render_json(feed: Feed) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    data: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed.title,
        "description": feed.subtitle,
        "home_page_url": feed.home_url,
        "feed_url": feed.url("json"),
        "language": feed.language,
        "authors": [{"name": feed.publisher}],
        "items": [],
    }
    for entry in feed.entries:
        item: dict[str, Any] = {
            "id": entry.id,
            "url": entry.url,
            "external_url": entry.archive_url,
            "title": entry.title,
            "content_html": entry.content_html,
            "date_published": _iso(entry.published),
            "date_modified": _iso(entry.updated),
        }
        # Optional keys are left out rather than empty: some readers show an empty summary.
        if entry.summary:
            item["summary"] = entry.summary
        if entry.categories:
            item["tags"] = [category.name for category in entry.categories]
        if entry.image_url:
            item["image"] = entry.image_url
        data["items"].append(item)
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


RENDERERS = {"rss": render_rss, "atom": render_atom, "json": render_json}
