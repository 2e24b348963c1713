"""Feeds: RSS 2.0, Atom and JSON Feed files per area, and one for everything.

``build_feeds`` writes ``<slug>.rss``, ``<slug>.atom`` and ``<slug>.json`` for every
feed area of the gazetteer plus ``all.*`` into the feeds folder. An area's feed holds
what a subscriber to that area gets (the matching rule in :mod:`alerts.areas`), live
advisories only, newest first, at most ``feeds.max_items``.

Rebuilding with nothing new changes no byte: dates are pinned to the store's contents,
never to the clock (and a feed something left still moves its date on: see
:mod:`alerts.feeds.state`), and a file whose bytes are unchanged is not touched (its mtime, and
so its Last-Modified, stays). Changed files are written beside the old one and renamed
over it, so a reader never fetches half a feed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from alerts.areas import Gazetteer
from alerts.config import FeedsConfig, SiteConfig
from alerts.errors import AlertsError
from alerts.feeds.model import ALL, FORMATS, Entry, Feed, LastChanges, build_feed, feed_url
from alerts.feeds.render import RENDERERS
from alerts.feeds.state import STATE_FILE, dump_state, load_state, settle
from alerts.store.store import Store

__all__ = [
    "ALL",
    "FORMATS",
    "FeedWriteError",
    "FeedsReport",
    "build_feeds",
    "feed_url",
    "write_if_changed",
]

log = logging.getLogger(__name__)


class FeedWriteError(AlertsError):
    """The feeds folder cannot be written."""


@dataclass
class FeedsReport:
    """What one build did: the files it (re)wrote and how many it left as they were."""

    written: list[Path] = field(default_factory=list)
    unchanged: int = 0
    out: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out) if self.out else None,
            "written": [str(path) for path in self.written],
            "unchanged": self.unchanged,
        }


def build_feeds(
    feeds: FeedsConfig,
    site: SiteConfig,
    store: Store,
    gazetteer: Gazetteer,
    *,
    now: datetime,
    out: Path | None = None,
) -> FeedsReport:
    """Write every feed into ``out`` (default ``feeds.out``), titled and linked for ``site``.

    ``now`` decides which advisories have expired; nothing else reads a clock.
    """
    folder = Path(out) if out is not None else feeds.out
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeedWriteError(
            f"cannot create the feeds folder: {exc.strerror or exc}",
            where=str(folder),
            hint="check feeds.out in config.yaml or pass --out DIR",
        ) from None
    report = FeedsReport(out=folder)
    limit = feeds.max_items
    changes = LastChanges(*store.advisories.last_changes(now))
    cache: dict[int, Entry] = {}
    made: list[Feed] = [
        build_feed(
            site, gazetteer, changes, store.advisories.find(live_at=now, limit=limit), None, cache
        )
    ]
    for area in gazetteer.feed_areas():
        items = store.advisories.find(
            areas=gazetteer.matching_areas([area.slug]), live_at=now, limit=limit
        )
        made.append(build_feed(site, gazetteer, changes, items, area, cache))
    # A feed something left (an advisory re-tagged elsewhere) must still move its date on.
    previous = load_state(folder)
    made = [
        settle(feed, previous.get(feed.slug), changed_at=changes.of(None), now=now) for feed in made
    ]
    for feed in made:
        for fmt, render in RENDERERS.items():
            path = folder / f"{feed.slug}.{fmt}"
            if write_if_changed(path, render(feed)):
                report.written.append(path)
            else:
                report.unchanged += 1
    # Recorded after the feeds: a crash between the two leaves the old record, and the
    # next build settles against it again, reaching the same dates.
    write_if_changed(folder / STATE_FILE, dump_state(made))
    log.info("feeds: %d written, %d unchanged in %s", len(report.written), report.unchanged, folder)
    return report


def write_if_changed(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` atomically unless it already holds exactly that.
    Returns whether it wrote."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        try:
            # No fsync: the rename is what makes the swap atomic for readers, and a file
            # a power cut leaves damaged differs from the next build's bytes, so that
            # build rewrites it. (fsync made a build several times slower.)
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            # mkstemp makes the file private; a feed is public, for the web server to read.
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise _write_error(path, exc) from None
    return True


def _write_error(path: Path, exc: OSError) -> FeedWriteError:
    return FeedWriteError(
        f"cannot write feed: {exc.strerror or exc}",
        where=str(path),
        hint="check the feeds folder exists, is writable and has space",
    )
