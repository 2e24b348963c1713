"""What one feed holds, as plain data, built from the store: the same model renders
RSS, Atom and JSON Feed, so the three always agree.

Everything here is deterministic in the store's contents and ``now``: no clock is read,
so rebuilding with nothing new gives the same model and the same bytes.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import nh3

from alerts.areas import AreaNode, Gazetteer
from alerts.config import SiteConfig
from alerts.text import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_SCHEMES,
    ALLOWED_TAGS,
    one_line,
    plain_text,
    sanitise_html,
    strip_control,
)
from alerts.types import Advisory, Priority

ALL = "all"
FORMATS = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
# A feed that has never held anything still needs an `updated` date; a fixed one keeps
# rebuilds byte-identical (the clock would change it every run).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class Category:
    slug: str
    name: str


@dataclass(frozen=True)
class Entry:
    """One advisory as a feed entry. ``id`` never changes once published (Atom id, RSS
    guid, JSON Feed id); ``permalink`` says whether it is also the advisory's URL."""

    id: str
    permalink: bool
    url: str
    archive_url: str
    title: str
    summary: str
    content_html: str
    published: datetime
    updated: datetime
    categories: tuple[Category, ...]
    image_url: str | None
    image_type: str | None


@dataclass(frozen=True)
class Feed:
    """One feed: an area's (or everything, slug ``all``), newest first."""

    slug: str
    title: str
    subtitle: str
    base_url: str
    home_url: str
    updated: datetime
    language: str
    publisher: str
    entries: tuple[Entry, ...]

    def url(self, fmt: str) -> str:
        return feed_url(self.base_url, self.slug, fmt)


def feed_url(base_url: str, slug: str, fmt: str) -> str:
    return f"{base_url}/feeds/{slug}.{fmt}"


def area_url(base_url: str, slug: str) -> str:
    return f"{base_url}/areas/{slug}"


def advisory_url(base_url: str, advisory_id: int) -> str:
    return f"{base_url}/advisories/{advisory_id}"


def plain_title(title: str) -> str:
    return plain_text(title) or "(untitled)"


def absolute_html(fragment: str, base_url: str) -> str:
    """Sanitised HTML whose relative links are resolved against ``base_url`` (the
    advisory's own page, where its author wrote them). A reader would resolve them
    against the feed's or archive's URL instead, and lead nowhere; when the base is no
    http(s) URL they are dropped, keeping the link's words."""
    fragment = sanitise_html(fragment or "")
    base = urlsplit(base_url or "")
    rules: dict[str, Any] = {
        "tags": ALLOWED_TAGS,
        "attributes": ALLOWED_ATTRIBUTES,
        "url_schemes": ALLOWED_SCHEMES,
        "link_rel": "noopener noreferrer",
    }
    if base.scheme in ("http", "https") and base.hostname:
        return nh3.clean(fragment, url_relative=("rewrite_with_base", base_url), **rules)
    return nh3.clean(fragment, url_relative="deny", **rules)


def entry_id(advisory: Advisory) -> str:
    """The permanent id: the advisory's key when it is a URI (its URL, or an upstream
    GUID such as ``urn:uuid:...``), else a tag: URI minted from the key alone, so it
    never depends on where this site happens to be served from."""
    key = strip_control(advisory.key).strip()
    if _URI.match(key):
        return key
    host = urlsplit(advisory.url).hostname or "localhost"
    return f"tag:{host},{advisory.published_at:%Y-%m-%d}:{quote(key, safe='')}"


def build_entry(advisory: Advisory, gazetteer: Gazetteer, base_url: str) -> Entry:
    ident = entry_id(advisory)
    categories = tuple(Category(slug, gazetteer.name_of(slug)) for slug in advisory.areas)
    image_type = None
    if advisory.image_url:
        image_type = mimetypes.guess_type(urlsplit(advisory.image_url).path)[0]
    return Entry(
        id=ident,
        permalink=ident == advisory.url,
        url=advisory.url,
        archive_url=advisory_url(base_url, advisory.id),
        # Readers show titles, not categories: urgency must be in the title, as in the email subject.
        title=("Urgent: " if advisory.priority is Priority.URGENT else "")
        + plain_title(advisory.title),
        summary=plain_text(advisory.summary),
        # Sanitised at ingest; again here because the feed is where it leaves us.
        content_html=absolute_html(advisory.body_html, advisory.url),
        published=advisory.published_at.astimezone(UTC),
        updated=entry_updated(advisory),
        categories=categories,
        image_url=advisory.image_url,
        image_type=image_type,
    )


def entry_updated(advisory: Advisory) -> datetime:
    """When the entry last changed in a way a reader cares about: its publication, or
    its last material change (a new title or text) after that. Not when it was stored:
    one ingest run would give every advisory it read the same stamp, which readers
    cannot order by and the W3C validator warns about; publication dates differ."""
    published = advisory.published_at.astimezone(UTC)
    if advisory.revision <= 1:
        return published
    return max(published, advisory.changed_at.astimezone(UTC))


@dataclass(frozen=True)
class LastChanges:
    """When each feed last changed: the newest update of any advisory it could hold
    (live or not, so a withdrawal counts) or the newest expiry already past. Pinning
    ``updated``/``lastBuildDate`` to this, never to the clock, keeps rebuilds
    byte-identical. Read in two queries per build (:func:`alerts.store.advisories.last_changes`),
    not one per feed."""

    everything: datetime | None
    by_area: dict[str, datetime]

    def of(self, areas: set[str] | None) -> datetime:
        """For the feed of advisories concerning ``areas`` (None: everything)."""
        if areas is None:
            return self.everything or EPOCH
        return max((self.by_area[area] for area in areas if area in self.by_area), default=EPOCH)


def build_feed(
    site: SiteConfig,
    gazetteer: Gazetteer,
    changes: LastChanges,
    items: list[Advisory],
    area: AreaNode | None,
    cache: dict[int, Entry] | None = None,
) -> Feed:
    """The feed for ``area`` (None: every area) holding ``items`` (already chosen by the
    matching rule, newest first, capped). ``cache`` keeps entries built for one feed
    for the next: an advisory appears in its town's, district's, force's and all feeds."""
    base_url = site.base_url
    if area is None:
        slug, areas = ALL, None
        title = f"{site.name}: all areas"
        subtitle = f"Every advisory from {site.publisher}"
        home = f"{base_url}/"
    else:
        slug, areas = area.slug, gazetteer.matching_areas([area.slug])
        title = f"{site.name}: {area.name}"
        subtitle = f"Advisories from {site.publisher} for {area.name}"
        home = area_url(base_url, area.slug)
    cache = {} if cache is None else cache
    entries = tuple(
        cache[item.id]
        if item.id in cache
        else cache.setdefault(item.id, build_entry(item, gazetteer, base_url))
        for item in items
    )
    updated = max([changes.of(areas), *(entry.updated for entry in entries)])
    return Feed(
        slug=slug,
        title=one_line(title),
        subtitle=one_line(subtitle),
        base_url=base_url,
        home_url=home,
        updated=updated.astimezone(UTC),
        language=site.language,
        publisher=one_line(site.publisher),
        entries=entries,
    )
