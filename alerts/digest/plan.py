"""Planning: which advisories each subscriber gets next, and in which variant.

A subscriber gets an advisory when it matches their areas (the one matching rule,
:meth:`alerts.areas.Gazetteer.matching_areas`), changed after their watermark, is
live, was not already old when first ingested (a backlog goes to feeds, not inboxes),
and has not been sent to them at its current revision (``subscriber_advisories``).
One sent at an older revision comes again, marked updated. One the flood guard held
(:data:`HELD`, see :mod:`alerts.digest.guard`) comes again, marked held.

Subscribers whose plans are identical share a :class:`Variant`, so rendering costs
grow with the number of distinct variants, not with subscribers.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from alerts.areas import Gazetteer
from alerts.types import Candidate, DigestKind, Subscriber

#: The ``subscriber_advisories.revision`` of an advisory the flood guard held for a
#: subscriber: real revisions start at 1, so a held one reads as "not sent yet".
HELD = 0


@dataclass(frozen=True)
class Entry:
    """One advisory in a variant, at the revision the subscriber gets."""

    advisory_id: int
    revision: int
    updated: bool
    #: Held back by the flood guard in an earlier run (not part of what a message says).
    held: bool = field(default=False, compare=False)


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


def watermark_of(subscriber: Subscriber) -> datetime:
    """Advisories that changed after this are new to the subscriber. It starts at their
    confirmation, so a new subscriber is not sent the past."""
    start = subscriber.watermark or subscriber.confirmed_at or subscriber.created_at
    return start


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
            if previous == HELD:
                entries.append(Entry(candidate.id, candidate.revision, updated=False, held=True))
                continue
            if previous is not None and (new_only or previous >= candidate.revision):
                continue
            entries.append(Entry(candidate.id, candidate.revision, updated=previous is not None))
        return entries

    @property
    def urgent(self) -> set[int]:
        """The ids of the urgent candidates."""
        return self._urgent

    def gathered(self, subscriber: Subscriber, entries: list[Entry]) -> Variant:
        """One message gathering the alerts the flood guard held: like a digest, it names
        the subscriber's areas, so all with the same areas and entries share it."""
        variant = Variant(
            DigestKind.GATHERED, tuple(entries), areas_key(subscriber.areas), subscriber.forwardable
        )
        return self._shared(variant)

    def variants(
        self, subscriber: Subscriber, entries: list[Entry], kind: DigestKind
    ) -> list[Variant]:
        """The messages for ``subscriber``: one digest holding every entry, or (for single
        kinds) one message per entry; urgent ones are marked so. A single alert does not
        depend on the subscriber's areas (it names its own), so all who get it share it."""
        if not entries:
            return []
        if not kind.single:
            areas = areas_key(subscriber.areas)
            return [
                self._shared(Variant(kind, tuple(entries), areas, subscriber.forwardable, self.day))
            ]
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
