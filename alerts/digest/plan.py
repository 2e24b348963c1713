"""Planning: which advisories each subscriber gets next, and in which variant.

A subscriber gets an advisory when it matches their areas (the one matching rule,
:meth:`alerts.areas.Gazetteer.matching_areas`), changed after their watermark, is
live, was not already old when first ingested (a backlog goes to feeds, not inboxes),
and has not been sent to them at its current revision (``subscriber_advisories``).
One sent at an older revision comes again, marked updated.

Subscribers whose plans are identical share a :class:`Variant`, so rendering costs
grow with the number of distinct variants, not with subscribers.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from alerts.areas import Gazetteer
from alerts.schema import (
    UtcDateTime,
    advisories,
    advisory_areas,
    subscriber_advisories,
    subscribers,
)
from alerts.store import load_advisory_rows
from alerts.types import (
    Advisory,
    DigestKind,
    Frequency,
    Priority,
    Status,
    Subscriber,
    SubscriberStatus,
)


@dataclass(frozen=True)
class Entry:
    """One advisory in a variant, at the revision the subscriber gets."""

    advisory_id: int
    revision: int
    updated: bool


@dataclass(frozen=True)
class Variant:
    """What one message says, whoever it goes to: rendered once, sent to many.

    ``entries`` newest first; ``areas`` the subscriber's areas (sections, subject,
    archive links; empty for a single alert, which names its own); ``forwardable`` picks the footer without personal links;
    ``day`` the local date a daily or weekly digest is for.
    """

    kind: DigestKind
    entries: tuple[Entry, ...]
    areas: tuple[str, ...]
    forwardable: bool
    day: date | None = None

    @functools.cached_property
    def key(self) -> str:
        """The variant's identity (the ``digests.key`` column)."""
        payload = json.dumps(
            [
                self.kind.value,
                [[e.advisory_id, e.revision, e.updated] for e in self.entries],
                list(self.areas),
                self.forwardable,
                self.day.isoformat() if self.day else None,
            ],
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def advisory_ids(self) -> list[int]:
        return [entry.advisory_id for entry in self.entries]


@dataclass(frozen=True)
class Candidate:
    """The little planning needs to know of an advisory (bodies are loaded only to render)."""

    id: int
    revision: int
    changed_at: datetime
    published_at: datetime
    areas: frozenset[str]
    urgent: bool


def watermark_of(subscriber: Subscriber) -> datetime:
    """Advisories that changed after this are new to the subscriber. It starts at their
    confirmation, so a new subscriber is not sent the past."""
    start = subscriber.watermark or subscriber.confirmed_at or subscriber.created_at
    return start


def oldest_watermark(conn: Connection, frequencies: Iterable[Frequency]) -> datetime | None:
    """The earliest watermark among active subscribers of these frequencies (None: nobody)."""
    start = func.coalesce(subscribers.c.watermark, subscribers.c.confirmed_at, subscribers.c.created_at)
    value = conn.execute(
        select(func.min(start, type_=UtcDateTime())).where(
            subscribers.c.status == SubscriberStatus.ACTIVE.value,
            subscribers.c.frequency.in_([f.value for f in frequencies]),
        )
    ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def load_candidates(
    conn: Connection,
    *,
    after: datetime,
    until: datetime,
    max_age: timedelta,
    urgent_only: bool = False,
) -> list[Candidate]:
    """Live advisories that changed in (``after``, ``until``], newest published first,
    leaving out those published more than ``max_age`` before they were first ingested."""
    query = select(
        advisories.c.id,
        advisories.c.revision,
        advisories.c.changed_at,
        advisories.c.published_at,
        advisories.c.first_seen_at,
        advisories.c.priority,
    ).where(
        advisories.c.changed_at > after,
        advisories.c.changed_at <= until,
        advisories.c.status == Status.ACTIVE.value,
        advisories.c.expires_at.is_(None) | (advisories.c.expires_at > until),
    )
    if urgent_only:
        query = query.where(advisories.c.priority == Priority.URGENT.value)
    rows = [
        row
        for row in conn.execute(query)
        # A backlog (published long before we first saw it) is for feeds and the archive.
        if row.published_at >= row.first_seen_at - max_age
    ]
    areas: dict[int, set[str]] = {row.id: set() for row in rows}
    for chunk in _chunks(list(areas), 500):
        for advisory_id, area in conn.execute(
            select(advisory_areas.c.advisory_id, advisory_areas.c.area).where(
                advisory_areas.c.advisory_id.in_(chunk)
            )
        ):
            areas[advisory_id].add(area)
    candidates = [
        Candidate(
            id=row.id,
            revision=row.revision,
            changed_at=row.changed_at,
            published_at=row.published_at,
            areas=frozenset(areas[row.id]),
            urgent=row.priority == Priority.URGENT.value,
        )
        for row in rows
    ]
    candidates.sort(key=lambda c: (c.published_at, c.id), reverse=True)
    return candidates


def sent_revisions(
    conn: Connection, subscriber_ids: Sequence[int], advisory_ids: Sequence[int]
) -> dict[tuple[int, int], int]:
    """(subscriber id, advisory id) -> the revision they were sent, for these ids."""
    if not subscriber_ids or not advisory_ids:
        return {}
    sent: dict[tuple[int, int], int] = {}
    for advisory_chunk in _chunks(list(advisory_ids), 900):
        rows = conn.execute(
            select(
                subscriber_advisories.c.subscriber_id,
                subscriber_advisories.c.advisory_id,
                subscriber_advisories.c.revision,
            ).where(
                subscriber_advisories.c.subscriber_id.in_(list(subscriber_ids)),
                subscriber_advisories.c.advisory_id.in_(advisory_chunk),
            )
        )
        for subscriber_id, advisory_id, revision in rows:
            sent[(subscriber_id, advisory_id)] = revision
    return sent


def load_advisories(conn: Connection, ids: Iterable[int]) -> dict[int, Advisory]:
    """Full advisories by id (for rendering)."""
    found: dict[int, Advisory] = {}
    for chunk in _chunks(sorted(set(ids)), 500):
        rows = conn.execute(select(advisories).where(advisories.c.id.in_(chunk))).mappings().all()
        found.update((item.id, item) for item in load_advisory_rows(conn, rows))
    return found


class Planner:
    """Plans the messages of one run from its candidates. Cheap per subscriber: the
    candidates matching an area set are worked out once per distinct set."""

    def __init__(self, gazetteer: Gazetteer, candidates: Sequence[Candidate], *, day: date | None):
        self.gazetteer = gazetteer
        self.candidates = list(candidates)
        self.day = day
        self._matching: dict[tuple[str, ...], list[Candidate]] = {}
        self._urgent = {c.id for c in self.candidates if c.urgent}
        # Subscribers with the same plan get the same Variant object, so its key (JSON
        # and SHA-256) is worked out once per variant rather than once per subscriber.
        self._variants: dict[Variant, Variant] = {}

    def matching(self, areas: tuple[str, ...]) -> list[Candidate]:
        """Candidates a subscriber to ``areas`` wants, newest first; each once, however
        many of the areas it matches (Medway and Chatham)."""
        found = self._matching.get(areas)
        if found is None:
            wanted = self.gazetteer.matching_areas(areas)
            found = [c for c in self.candidates if not wanted.isdisjoint(c.areas)]
            self._matching[areas] = found
        return found

    def entries(
        self, subscriber: Subscriber, sent: dict[tuple[int, int], int], *, new_only: bool = False
    ) -> list[Entry]:
        """What is new (or updated) for ``subscriber``. ``new_only``: leave out updates of
        advisories already sent (an urgent alert goes out at once only the first time)."""
        watermark = watermark_of(subscriber)
        entries = []
        for candidate in self.matching(areas_key(subscriber.areas)):
            if candidate.changed_at <= watermark:
                continue
            previous = sent.get((subscriber.id, candidate.id))
            if previous is not None and (new_only or previous >= candidate.revision):
                continue
            entries.append(Entry(candidate.id, candidate.revision, updated=previous is not None))
        return entries

    def variants(self, subscriber: Subscriber, entries: list[Entry], kind: DigestKind) -> list[Variant]:
        """The messages for ``subscriber``: one digest holding every entry, or (for single
        kinds) one message per entry; urgent ones are marked so. A single alert does not
        depend on the subscriber's areas (it names its own), so all who get it share it."""
        if not entries:
            return []
        if not kind.single:
            areas = areas_key(subscriber.areas)
            return [self._shared(Variant(kind, tuple(entries), areas, subscriber.forwardable, self.day))]
        return [
            self._shared(
                Variant(
                    DigestKind.URGENT if entry.advisory_id in self._urgent else kind,
                    (entry,),
                    (),
                    subscriber.forwardable,
                )
            )
            for entry in entries
        ]

    def _shared(self, variant: Variant) -> Variant:
        return self._variants.setdefault(variant, variant)


def areas_key(areas: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(areas)))


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
