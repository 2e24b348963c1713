"""Check a feed as strict validators and careful readers do: RSS 2.0 (the RSS Advisory
Board's profile), Atom (RFC 4287) and JSON Feed 1.1. Each function returns the problems
found, as sentences; an empty list means valid by these rules.

    problems = feed_problems(path.read_bytes(), "https://example.org/feeds/all.atom")

No validator on PyPI works offline (the W3C's needs the network), so the rules that
matter to readers are written out here; the test suite runs them over every feed built.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM = f"{{{ATOM_NS}}}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# RFC 822 (with RFC 1123's four-digit year) and a numeric zone: "GMT" or "EST" parse in
# some readers and not others.
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} [+-]\d{4}$"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
# Link schemes that need no base to resolve.
_ABSOLUTE = {"http", "https", "mailto", "tel"}


def feed_problems(raw: bytes, url: str) -> list[str]:
    """The problems of the feed served at ``url``, by its extension (.rss, .atom, .json)."""
    if url.endswith(".rss"):
        return rss_problems(raw, url)
    if url.endswith(".atom"):
        return atom_problems(raw, url)
    if url.endswith(".json"):
        return json_feed_problems(raw, url)
    return [f"{url}: not a .rss, .atom or .json feed"]


def rss_problems(raw: bytes, url: str) -> list[str]:
    problems: list[str] = []
    root = _xml(raw, problems)
    if root is None:
        return problems
    if root.tag != "rss" or root.get("version") != "2.0":
        return [*problems, 'root is not <rss version="2.0">']
    channels = root.findall("channel")
    if len(channels) != 1:
        return [*problems, f"{len(channels)} <channel> elements, not one"]
    channel = channels[0]
    for name in ("title", "link", "description"):
        if not (channel.findtext(name) or "").strip():
            problems.append(f"channel: no <{name}> (required)")
    _absolute(problems, "channel <link>", channel.findtext("link"))
    selves = [link for link in channel.findall(f"{ATOM}link") if link.get("rel") == "self"]
    if len(selves) != 1:
        problems.append(f'channel: {len(selves)} atom:link rel="self", not one')
    elif selves[0].get("href") != url:
        problems.append(
            f'channel: atom:link rel="self" is {selves[0].get("href")!r}, not the served {url!r}'
        )
    elif selves[0].get("type") != "application/rss+xml":
        problems.append('channel: atom:link rel="self" lacks type="application/rss+xml"')
    for name in ("lastBuildDate", "pubDate"):
        if channel.find(name) is not None:
            _rfc822(problems, f"channel <{name}>", channel.findtext(name))
    guids: set[str] = set()
    dates: list[datetime] = []
    for number, item in enumerate(channel.findall("item"), 1):
        where = f"item {number}"
        if not (item.findtext("title") or item.findtext("description")):
            problems.append(f"{where}: neither <title> nor <description>")
        guid = item.find("guid")
        if guid is None or not (guid.text or "").strip():
            problems.append(f"{where}: no <guid>")
        else:
            if guid.text in guids:
                problems.append(f"{where}: guid {guid.text!r} repeats")
            guids.add(guid.text or "")
            if guid.get("isPermaLink", "true") == "true":
                _absolute(problems, f"{where}: permalink guid", guid.text)
        if item.find("link") is not None:
            _absolute(problems, f"{where} <link>", item.findtext("link"))
        published = _rfc822(problems, f"{where} <pubDate>", item.findtext("pubDate"))
        if published:
            dates.append(published)
        for enclosure in item.findall("enclosure"):
            if not all(enclosure.get(key) for key in ("url", "length", "type")):
                problems.append(f"{where}: <enclosure> needs url, length and type")
        _media(problems, where, item)
        for name in ("description", f"{CONTENT}encoded"):
            _html_links(problems, f"{where} <{name.split('}')[-1]}>", item.findtext(name))
    if dates != sorted(dates, reverse=True):
        problems.append("items are not newest first")
    return problems


def atom_problems(raw: bytes, url: str) -> list[str]:
    problems: list[str] = []
    root = _xml(raw, problems)
    if root is None:
        return problems
    if root.tag != f"{ATOM}feed":
        return [*problems, "root is not an Atom <feed>"]
    _absolute(problems, "feed <id>", root.findtext(f"{ATOM}id"))
    if not (root.findtext(f"{ATOM}title") or "").strip():
        problems.append("feed: no <title>")
    feed_updated = _rfc3339(problems, "feed <updated>", root.findtext(f"{ATOM}updated"))
    feed_author = root.find(f"{ATOM}author/{ATOM}name") is not None
    links = root.findall(f"{ATOM}link")
    selves = [link for link in links if link.get("rel") == "self"]
    if len(selves) != 1 or selves[0].get("href") != url:
        problems.append(f'feed: link rel="self" must be one, to the served {url!r}')
    _links(problems, "feed", links)
    ids: set[str] = set()
    for number, entry in enumerate(root.findall(f"{ATOM}entry"), 1):
        where = f"entry {number}"
        ident = entry.findtext(f"{ATOM}id")
        _absolute(problems, f"{where} <id>", ident, schemes=None)
        if ident in ids:
            problems.append(f"{where}: id {ident!r} repeats")
        ids.add(ident or "")
        if not (entry.findtext(f"{ATOM}title") or "").strip():
            problems.append(f"{where}: no <title>")
        updated = _rfc3339(problems, f"{where} <updated>", entry.findtext(f"{ATOM}updated"))
        published = entry.findtext(f"{ATOM}published")
        if published is not None:
            when = _rfc3339(problems, f"{where} <published>", published)
            if when and updated and when > updated:
                problems.append(f"{where}: published after updated")
        if updated and feed_updated and updated > feed_updated:
            problems.append(f"{where}: updated after the feed's <updated>")
        if not feed_author and entry.find(f"{ATOM}author/{ATOM}name") is None:
            problems.append(f"{where}: no author (and the feed has none)")
        entry_links = entry.findall(f"{ATOM}link")
        _links(problems, where, entry_links)
        content = entry.find(f"{ATOM}content")
        if content is None and not any(
            link.get("rel", "alternate") == "alternate" for link in entry_links
        ):
            problems.append(f"{where}: no <content> and no alternate link")
        for name in ("content", "summary"):
            element = entry.find(f"{ATOM}{name}")
            if element is None:
                continue
            kind = element.get("type", "text")
            if kind in ("text", "html") and len(element):
                problems.append(
                    f'{where} <{name} type="{kind}">: holds elements; the markup must be escaped'
                )
            if kind == "html":
                _html_links(problems, f"{where} <{name}>", element.text)
        for category in entry.findall(f"{ATOM}category"):
            if not category.get("term"):
                problems.append(f"{where}: <category> without term")
        _media(problems, where, entry)
    return problems


def feed_warnings(raw: bytes, url: str) -> list[str]:
    """What the W3C Feed Validator warns about (the feed is valid, but readers may
    stumble): in Atom, two entries with the same ``updated`` (readers cannot order them)."""
    if not url.endswith(".atom"):
        return []
    root = _xml(raw, [])
    if root is None:
        return []
    seen: dict[str, int] = {}
    warnings = []
    for number, entry in enumerate(root.findall(f"{ATOM}entry"), 1):
        stamp = entry.findtext(f"{ATOM}updated") or ""
        if stamp in seen:
            warnings.append(
                f"entry {number}: two entries with the same value for atom:updated ({stamp}, entry {seen[stamp]})"
            )
        seen.setdefault(stamp, number)
    return warnings


def _media(problems: list[str], where: str, element: Any) -> None:
    """Media RSS as the W3C validator checks it: a media:group must have several
    media:content children (one image belongs straight in the item), and each has a url."""
    for group in element.findall(f"{MEDIA}group"):
        if len(group.findall(f"{MEDIA}content")) < 2:
            problems.append(f"{where}: media:group must have multiple media:content children")
    for media in element.iter(f"{MEDIA}content"):
        _absolute(problems, f"{where} media:content", media.get("url"))


def json_feed_problems(raw: bytes, url: str) -> list[str]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    if not isinstance(data, dict):
        return ["not a JSON object"]
    problems: list[str] = []
    if data.get("version") != JSON_FEED_VERSION:
        problems.append(f"version is {data.get('version')!r}, not {JSON_FEED_VERSION!r}")
    if not isinstance(data.get("title"), str) or not data["title"]:
        problems.append("no title")
    if data.get("feed_url") != url:
        problems.append(f"feed_url is {data.get('feed_url')!r}, not the served {url!r}")
    _absolute(problems, "home_page_url", data.get("home_page_url"))
    authors = data.get("authors")
    if authors is not None and not (
        isinstance(authors, list)
        and authors
        and all(isinstance(a, dict) and a.get("name") for a in authors)
    ):
        problems.append("authors must be a list of objects with a name")
    items = data.get("items")
    if not isinstance(items, list):
        return [*problems, "no items array"]
    ids: set[str] = set()
    for number, item in enumerate(items, 1):
        where = f"item {number}"
        ident = item.get("id")
        if not isinstance(ident, str) or not ident:
            problems.append(f"{where}: id must be a non-empty string")
        elif ident in ids:
            problems.append(f"{where}: id {ident!r} repeats")
        ids.add(str(ident))
        if not isinstance(item.get("content_html"), str) and not isinstance(
            item.get("content_text"), str
        ):
            problems.append(f"{where}: neither content_html nor content_text")
        for key in ("url", "external_url", "image"):
            if key in item:
                _absolute(problems, f"{where} {key}", item[key])
        for key in ("date_published", "date_modified"):
            if key in item:
                _rfc3339(problems, f"{where} {key}", item[key])
        if "tags" in item and not (
            isinstance(item["tags"], list) and all(isinstance(t, str) for t in item["tags"])
        ):
            problems.append(f"{where}: tags must be a list of strings")
        _html_links(problems, f"{where} content_html", item.get("content_html"))
    return problems


def _xml(raw: bytes, problems: list[str]) -> Any:
    try:
        return etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        problems.append(f"not well-formed XML: {exc}")
        return None


def _absolute(
    problems: list[str], where: str, value: Any, schemes: set[str] | None = _ABSOLUTE
) -> None:
    """An absolute URL (``schemes``: of these; None: any IRI with a scheme, as ids may be)."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or not parts.scheme or (schemes is not None and parts.scheme not in schemes):
        problems.append(f"{where}: {value!r} is not an absolute URL")
    elif parts.scheme in ("http", "https") and not parts.netloc:
        problems.append(f"{where}: {value!r} has no host")


def _links(problems: list[str], where: str, links: list[Any]) -> None:
    seen: set[tuple[str, str]] = set()
    for link in links:
        _absolute(problems, f"{where} link", link.get("href"))
        if link.get("rel", "alternate") == "alternate":
            key = (link.get("type", ""), link.get("hreflang", ""))
            if key in seen:
                problems.append(
                    f"{where}: more than one alternate link of type {key[0]!r} (RFC 4287 4.1.1)"
                )
            seen.add(key)


def _rfc822(problems: list[str], where: str, value: str | None) -> datetime | None:
    if not value or not RFC822.match(value):
        problems.append(f"{where}: {value!r} is not an RFC 822 date with a numeric zone")
        return None
    moment = parsedate_to_datetime(value)
    if moment.strftime("%a") != value[:3]:
        problems.append(f"{where}: {value!r} names the wrong day of the week")
    return moment


def _rfc3339(problems: list[str], where: str, value: Any) -> datetime | None:
    if not isinstance(value, str) or not RFC3339.match(value):
        problems.append(f"{where}: {value!r} is not an RFC 3339 date-time")
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a real date")
        return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [
            value or ""
            for name, value in attrs
            if name in ("href", "src", "cite", "poster", "srcset")
        ]


def _html_links(problems: list[str], where: str, fragment: str | None) -> None:
    """Links in content must not be relative: readers resolve them against the feed (or
    nothing), not against the page the author wrote them on."""
    if not fragment:
        return
    parser = _Links()
    parser.feed(fragment)
    for href in parser.urls:
        scheme = urlsplit(href).scheme
        if scheme not in _ABSOLUTE or (scheme in ("http", "https") and not urlsplit(href).netloc):
            problems.append(f"{where}: link {href!r} is relative or not a web, mail or phone link")
