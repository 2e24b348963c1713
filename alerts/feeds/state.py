"""When each feed's content last changed, kept beside the feeds it describes.

A feed's ``updated`` (Atom) and ``lastBuildDate`` (RSS) are pinned to the store's
contents: the newest change of an advisory the feed holds. That misses one kind of
change: an advisory re-tagged out of an area leaves the area's feed, yet no advisory the
feed still holds changed, so the date would stay put (or go back, when the one that left
was the newest), and a reader that caches on the date would keep showing it.

So each build records, per feed, a fingerprint of everything the feed says except its
date, and the date it gave. When the fingerprint changes but the store-derived date has
not moved past the recorded one, the date moves forward anyway (see :func:`settle`).
With nothing changed, the recorded date is reused, so rebuilds stay byte-identical.

The record is a JSON file in the feeds folder (a dot-file, never served), written
atomically like the feeds: it describes those files, and a fresh folder starts afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

from alerts.feeds.model import EPOCH, Feed

STATE_FILE = ".feeds-state.json"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FeedState:
    fingerprint: str
    updated: datetime


def fingerprint(feed: Feed) -> str:
    """A hash of everything the feed says except its own date. The model is frozen
    dataclasses of strings, datetimes and tuples, whose repr is deterministic."""
    return hashlib.sha256(repr(dataclasses.replace(feed, updated=EPOCH)).encode()).hexdigest()


def settle(feed: Feed, previous: FeedState | None, *, changed_at: datetime, now: datetime) -> Feed:
    """``feed`` with the date a reader should see.

    Unchanged content keeps the recorded date. Changed content whose store-derived date
    is not newer than the recorded one (something left the feed) takes ``changed_at``,
    the newest change anywhere in the store (no earlier than the one that moved the
    advisory out, no later than now); failing that (a changed config or gazetteer) the
    build's ``now``; always strictly later than the recorded date.
    """
    if previous is None:
        return feed
    if previous.fingerprint == fingerprint(feed):
        return dataclasses.replace(feed, updated=previous.updated)
    if feed.updated > previous.updated:
        return feed
    for candidate in (changed_at, now):
        if candidate > previous.updated:
            return dataclasses.replace(feed, updated=candidate)
    return dataclasses.replace(feed, updated=previous.updated + timedelta(seconds=1))


def load_state(folder: Path) -> dict[str, FeedState]:
    """The recorded states by feed slug; none when the file is missing or unreadable
    (then dates come from the store alone, as on a first build)."""
    path = folder / STATE_FILE
    try:
        data = json.loads(path.read_bytes())
        return {
            slug: FeedState(entry["fingerprint"], datetime.fromisoformat(entry["updated"]))
            for slug, entry in data["feeds"].items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning(
            "feeds: ignoring unreadable %s (%s); dates come from the store alone", path, exc
        )
        return {}


def dump_state(feeds: list[Feed]) -> bytes:
    data = {
        "feeds": {
            feed.slug: {"fingerprint": fingerprint(feed), "updated": feed.updated.isoformat()}
            for feed in sorted(feeds, key=lambda feed: feed.slug)
        }
    }
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()
