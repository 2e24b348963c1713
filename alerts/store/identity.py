"""Which stored advisory an item from a source is, and when its change is news.

Identity belongs to a source (``advisories.origin``: "files", or a feed's URL): an item
is the advisory its own source stored with the same key; else, the source re-issuing a
story under a new GUID, the one with the same link (unless several entries of the
document share it) or, for a feed, the same title and text first seen lately. An item
whose key or URL another source stored is a duplicate, noted on that advisory
(``advisory_duplicates``), never an update of it.

A material change (:mod:`alerts.material`: the words and link targets) is a new
revision, mailed as "Updated", at most once per update interval unless the new version
is urgent; sooner, it is stored but held, and released once the interval has passed. A
source that goes back to the announced version while a change is held is flapping:
logged, and the hold dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.engine import Connection

from alerts.material import material_hash as hash_of_words
from alerts.store.schema import advisories, advisory_duplicates
from alerts.types import FILES_ORIGIN, AdvisoryInput

#: At most one "Updated" mail per advisory in this time, unless the new version is urgent.
DEFAULT_UPDATE_INTERVAL = timedelta(hours=24)
#: A feed entry under a new GUID with the title and text of one of the same feed first
#: seen this recently is that advisory re-issued, not a new one.
REISSUE_WINDOW = timedelta(days=30)

log = logging.getLogger(__name__)


def material_hash(item: AdvisoryInput | RowMapping) -> str:
    """What makes an update material (worth mailing again): the title, summary and body
    after normalising whitespace, markup and tracking parameters."""
    if isinstance(item, AdvisoryInput):
        return hash_of_words(item.title, item.summary, item.body_html)
    return hash_of_words(item["title"], item["summary"], item["body_html"])


@dataclass(frozen=True)
class Revision:
    """What a save does to an advisory's revision (see :func:`next_revision`)."""

    revision: int
    changed_at: datetime
    revision_hash: str
    held_since: datetime | None
    #: The source went back to the announced version while a change was held.
    flapped: bool = False


def next_revision(
    row: RowMapping, new_hash: str, *, urgent: bool, now: datetime, interval: timedelta
) -> Revision:
    """The revision a stored advisory (``row``) gets when its source now says ``new_hash``.

    A version other than the one last announced is a new revision when the last was
    announced at least ``interval`` ago or it is urgent; sooner it is held. Going back
    to the announced version drops the hold (and, if one was held, is flapping).
    """
    # Hashed from the stored words, not read from content_hash: rows stored before the
    # normalised hash existed compare the same way.
    announced = row["revision_hash"] or material_hash(row)
    held = row["held_since"]
    if new_hash == announced:
        return Revision(
            row["revision"], row["changed_at"], announced, None, flapped=held is not None
        )
    if urgent or row["changed_at"] <= now - interval:
        return Revision(row["revision"] + 1, now, new_hash, None)
    return Revision(row["revision"], row["changed_at"], announced, held or now)


def log_revision(
    row: RowMapping, step: Revision, origin: str, flaps: int, interval: timedelta
) -> None:
    """Say so when a source flaps, or a change is first held."""
    if step.flapped:
        log.warning(
            "advisory %d (%s) is flapping: %s went back to the version already mailed"
            " (%d times); the change in between is not mailed",
            row["id"],
            row["key"],
            origin,
            flaps,
        )
    elif step.held_since is not None and row["held_since"] is None:
        log.info(
            "advisory %d (%s) changed again within %s of its last update: held until %s",
            row["id"],
            row["key"],
            interval,
            step.changed_at + interval,
        )


def own_advisory(
    conn: Connection, item: AdvisoryInput, content_hash: str, now: datetime
) -> RowMapping | None:
    """The advisory ``item``'s source stored before, locked for update."""
    own = advisories.c.origin == item.origin
    tries = [advisories.c.key == item.key]
    if item.extra.get("link_unique", True):
        tries.append(advisories.c.url == item.url)
    if item.origin != FILES_ORIGIN:
        tries.append(
            (advisories.c.content_hash == content_hash)
            & (advisories.c.first_seen_at >= now - REISSUE_WINDOW)
        )
    for condition in tries:
        row = (
            conn.execute(
                select(advisories)
                .where(own, condition)
                .order_by(advisories.c.id)
                .limit(1)
                .with_for_update()
            )
            .mappings()
            .first()
        )
        if row is not None:
            return row
    return None


def stored_elsewhere(conn: Connection, item: AdvisoryInput) -> RowMapping | None:
    """The first advisory another source stored with ``item``'s key or URL."""
    return (
        conn.execute(
            select(advisories)
            .where(advisories.c.origin != item.origin)
            .where(
                (advisories.c.key == item.key)
                | (advisories.c.url == item.url)
                | (advisories.c.key == item.url)
            )
            .order_by(advisories.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )


def note_duplicate(conn: Connection, first: RowMapping, item: AdvisoryInput, now: datetime) -> None:
    """Record on ``first`` that another source sent ``item`` (logged the first time)."""
    where = (
        (advisory_duplicates.c.advisory_id == first["id"])
        & (advisory_duplicates.c.origin == item.origin)
        & (advisory_duplicates.c.key == item.key)
    )
    if conn.execute(select(advisory_duplicates.c.key).where(where)).first() is not None:
        conn.execute(
            update(advisory_duplicates)
            .where(where)
            .values(url=item.url, title=item.title, last_seen_at=now)
        )
        return
    log.warning(
        "%s sent %s, which %s already published as advisory %d: noted as a duplicate, not an update",
        item.origin,
        item.key,
        first["origin"],
        first["id"],
    )
    conn.execute(
        insert(advisory_duplicates).values(
            advisory_id=first["id"],
            origin=item.origin,
            key=item.key,
            url=item.url,
            title=item.title,
            first_seen_at=now,
            last_seen_at=now,
        )
    )
