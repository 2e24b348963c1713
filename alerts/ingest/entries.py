"""Feed entries as advisories: what an RSS or Atom entry means to us.

``parse_feed`` checks a fetched body is a whole feed (not junk, not truncated) and
returns one parser per entry; ``entry_to_advisory`` turns an entry into an
:class:`AdvisoryInput` with its GUID as identity, HTML sanitised, dates in UTC and
areas tagged as for files.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from alerts.areas import Gazetteer
from alerts.config import SourceConfig
from alerts.errors import AdvisoryError, SourceError
from alerts.ingest.build import (
    ParsedFile,
    clean_title,
    finish_advisory,
    published_or_first_seen,
    publisher,
)
from alerts.ingest.dates import YEARS, clamp_future
from alerts.ingest.files import canonical_url
from alerts.tagging import Declared
from alerts.text import html_to_text, one_line, sanitise_html
from alerts.types import AdvisoryInput

RETRY_HINT = "it is tried again at the next poll"
_ROOT_CLOSED = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|RDF)\s*>\s*(?:<!--.*?-->\s*)*$", re.DOTALL)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


# -- parsing ------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """A fetch that got an answer: ``body`` is None when the feed was not modified (304)."""

    url: str
    status: int
    body: bytes | None
    etag: str | None
    last_modified: str | None
    content_type: str | None = None
    #: Where a redirect (3xx with a Location) points, absolute; None for any other answer.
    location: str | None = None


def parse_feed(
    fetched: Fetched,
    source: SourceConfig,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    force_area: str | None,
) -> tuple[list[tuple[str, Callable[[], ParsedFile]]], list[str]]:
    """The feed's entries as (where, parser) pairs for :func:`alerts.ingest.save_parsed`,
    and warnings about the feed as a whole. Raises :class:`SourceError` for junk."""
    url = source.feed or fetched.url
    body = fetched.body or b""
    headers = {"content-location": fetched.url}
    if fetched.content_type:
        headers["content-type"] = fetched.content_type
    # A file-like object: feedparser would treat a bytes or str argument as a URL or path.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers, sanitize_html=False)
    warnings: list[str] = []
    if not parsed.get("version") and not parsed.entries:
        raise _not_a_feed(url, fetched)
    if parsed.get("bozo"):
        if not _ROOT_CLOSED.search(body[-4096:].rstrip()):
            raise SourceError(
                "feed is truncated: it stops before its closing tag", where=url, hint=RETRY_HINT
            )
        problem = parsed.get("bozo_exception")
        warnings.append(f"{url}: feed is not well-formed ({problem}); read leniently")
    if not parsed.get("version"):
        raise _not_a_feed(url, fetched)
    items: list[tuple[str, Callable[[], ParsedFile]]] = []
    # A link several entries share (a feed that links every entry to its home page) says
    # nothing about which advisory an entry is.
    links = Counter(_link(entry) for entry in parsed.entries)
    keys: set[str] = set()
    repeated: list[str] = []
    for index, entry in enumerate(parsed.entries, 1):
        where = (
            f"{url} entry {one_line(str(entry.get('id') or entry.get('link') or index), limit=200)}"
        )
        # An id twice in one document: the first wins (feeds list the newest first);
        # read both, the second would overwrite the first, and each poll flip them.
        key = entry_key(str(entry.get("id") or "").strip(), _link(entry), url)
        if key and key in keys:
            repeated.append(key)
            continue
        keys.add(key)

        def parse(entry: Any = entry, where: str = where) -> ParsedFile:
            parsed = entry_to_advisory(entry, where, url, gazetteer, now=now, force_area=force_area)
            if links[_link(entry)] > 1:
                parsed.advisory.extra["link_unique"] = False
            return parsed

        items.append((where, parse))
    if repeated:
        shown = ", ".join(one_line(key, limit=100) for key in dict.fromkeys(repeated))
        warnings.append(
            f"{url}: {len(repeated)} entries repeat an earlier entry's id; the first of each is read ({shown})"
        )
    return items, warnings


def _not_a_feed(url: str, fetched: Fetched) -> SourceError:
    kind = (fetched.content_type or "no content type").split(";")[0]
    return SourceError(
        f"not an RSS or Atom feed ({kind})",
        where=url,
        hint="check the URL points at the feed itself, not a web page; " + RETRY_HINT,
    )


def entry_to_advisory(
    entry: Any,
    where: str,
    feed_url: str,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    force_area: str | None,
) -> ParsedFile:
    """One feed entry as an advisory. Raises :class:`AdvisoryError` only."""
    warnings: list[str] = []
    key, url, guid = _identity(entry, where, feed_url)
    body_html = _body_html(entry)
    body_text = html_to_text(body_html)
    title = _title(entry, body_text, where, warnings)
    updated_at = _date(entry, "updated", where)
    published_at, date_assumed = published_or_first_seen(
        _date(entry, "published", where) or updated_at,
        now,
        f"{where}: no date; taken as published when first seen",
        warnings,
        future=lambda date: (
            f"{where}: dated {date:%Y-%m-%d %H:%M} UTC, more than a day in the future;"
            " taken as published when first seen"
        ),
    )
    if updated_at is not None and clamp_future(updated_at, now) is not None:
        updated_at = None  # no more believable than a future publication date
    categories = [
        one_line(str(tag.get("term") or ""), limit=100) for tag in entry.get("tags") or ()
    ]
    item = AdvisoryInput(
        key=key,
        url=url,
        title=title,
        summary=_summary(entry),
        body_html=body_html,
        body_text=body_text,
        published_at=published_at,
        source=feed_url,
        force_area=force_area,
        image_url=_image(entry),
        date_assumed=date_assumed,
        extra=_extra(feed_url, guid, updated_at, categories),
        origin=feed_url,
    )
    declared = _declared_areas(categories, force_area)
    if not force_area and (by := publisher(str(entry.get("title", "")))):
        declared.append(by)
    return finish_advisory(item, declared, gazetteer, where=where, warnings=warnings)


def _identity(entry: Any, where: str, feed_url: str) -> tuple[str, str, str]:
    """The entry's key (see :func:`entry_key`), its URL, and its GUID as given."""
    link = _link(entry)
    guid = str(entry.get("id") or "").strip()
    key = entry_key(guid, link, feed_url)
    url = link or (key if key.startswith(("http://", "https://")) else None)
    if not key or not url:
        raise AdvisoryError(
            "entry has neither a GUID nor a link",
            where=where,
            hint="the feed publisher must give each entry an id or link",
        )
    if len(key) > 2000:
        raise AdvisoryError("entry id is longer than 2000 characters", where=where)
    return key, url, guid


def _title(entry: Any, body_text: str, where: str, warnings: list[str]) -> str:
    """The entry's title, or the start of its text (with a warning) when it has none."""
    title = clean_title(_text_of(entry.get("title_detail"), entry.get("title", "")))
    if title:
        return title
    if not body_text:
        raise AdvisoryError("entry has no title and no content", where=where)
    warnings.append(f"{where}: no title; the start of its text is used")
    return one_line(body_text, limit=120)


def _summary(entry: Any) -> str:
    """The summary, where the entry has one beside its content; else none (the body's
    start stands in). Without content, the summary *is* the body."""
    if entry.get("content") and entry.get("summary"):
        return one_line(_text_of(entry.get("summary_detail"), entry.get("summary", "")), limit=1000)
    return ""


def _declared_areas(categories: list[str], force_area: str | None) -> list[Declared]:
    """The source's configured area, and the categories: one naming an area declares it;
    others ("Fraud") are topics, which the area rule ignores."""
    declared = [Declared("source", force_area)] if force_area else []
    return declared + [Declared("category", name) for name in categories if name]


def _extra(
    feed_url: str, guid: str, updated_at: datetime | None, categories: list[str]
) -> dict[str, Any]:
    extra: dict[str, Any] = {"feed": feed_url, "guid": guid or None}
    if updated_at:
        extra["updated"] = updated_at.isoformat()
    if categories:
        extra["categories"] = [c for c in categories if c]
    return extra


def entry_key(guid: str, link: str | None, feed_url: str) -> str:
    """An entry's identity: its GUID when it is a URI (a URL is canonicalised so it
    matches the same advisory read from a file), a bare GUID qualified by the feed
    (it is only unique within it), else the link."""
    if guid:
        if guid.lower().startswith(("http://", "https://")):
            return canonical_url(strip_tracking(guid)) or guid
        if _SCHEME.match(guid):
            return guid
        return f"{feed_url}#{guid}"
    return link or ""


def strip_tracking(url: str) -> str:
    """Drop ``utm_*`` parameters: the same article linked from two feeds is one advisory."""
    parts = urlsplit(url)
    if "utm_" not in parts.query:
        return url
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _link(entry: Any) -> str | None:
    candidates = [entry.get("link")]
    candidates += [
        link.get("href") for link in entry.get("links") or () if link.get("rel") == "alternate"
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and (
            found := canonical_url(strip_tracking(candidate.strip()))
        ):
            return found
    return None


def _text_of(detail: Any, value: str) -> str:
    """Plain text of a title or summary, whichever way the feed typed it."""
    if detail and detail.get("type") in _HTML_TYPES:
        return html_to_text(sanitise_html(value))
    return value


def _body_html(entry: Any) -> str:
    contents = list(entry.get("content") or ())
    detail = contents[0] if contents else entry.get("summary_detail")
    value = contents[0].get("value", "") if contents else entry.get("summary", "")
    if not value:
        return ""
    if detail and detail.get("type") not in _HTML_TYPES:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", value) if p.strip()]
        return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return sanitise_html(value)


def _date(entry: Any, field: str, where: str) -> datetime | None:
    """The entry's ``published`` or ``updated`` date in UTC (feedparser gives a UTC
    struct_time), None when it has none or feedparser could not read it. An impossible
    year (before 1900, after 2200: "9999" is a placeholder, not a date) rejects the
    entry: taken as "no date" it would be published as new, dated when first seen."""
    # dict.get: feedparser's own get() maps a missing published_parsed to updated_parsed, with a warning.
    value = dict.get(entry, f"{field}_parsed")
    if not value:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in value[:6])
    except (TypeError, ValueError):
        return None
    if year not in YEARS:
        raw = one_line(str(dict.get(entry, field) or year), limit=60)
        raise AdvisoryError(
            f"{field} date {raw!r} has an impossible year {year}",
            where=where,
            hint="the feed's publisher must correct it; the entry is read again at the next poll",
        )
    try:
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        return None


def _image(entry: Any) -> str | None:
    candidates = [
        e.get("href")
        for e in entry.get("enclosures") or ()
        if str(e.get("type", "")).startswith("image/")
    ]
    candidates += [m.get("url") for m in entry.get("media_thumbnail") or ()]
    candidates += [
        m.get("url")
        for m in entry.get("media_content") or ()
        if m.get("medium", "image") == "image"
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and (found := canonical_url(candidate.strip())):
            return found
    return None
