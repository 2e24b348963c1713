"""The plain data shapes that flow between the pipeline stages, named once."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class Priority(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class AreaKind(enum.StrEnum):
    FORCE = "force"
    DISTRICT = "district"
    TOWN = "town"
    VILLAGE = "village"
    POSTCODE = "postcode"


@dataclass(frozen=True)
class Evidence:
    """Why an advisory concerns an area: the words that decided it and where they were
    (``title``, ``summary``, ``text``; ``declared`` for front matter or a feed source's
    ``area:``; ``override`` for an operator's retag)."""

    area: str
    words: str
    part: str
    how: str

    def as_json(self) -> dict[str, str]:
        return {"area": self.area, "words": self.words, "part": self.part, "how": self.how}


@dataclass(frozen=True)
class Discounted:
    """A place the text names that did not decide who the advisory reaches, and why
    ("a court", "a suspect's home", "outside the declared area Medway")."""

    name: str
    area: str | None
    words: str
    reason: str

    def as_json(self) -> dict[str, str | None]:
        return {"name": self.name, "area": self.area, "words": self.words, "reason": self.reason}


@dataclass(frozen=True)
class AreaDecision:
    """Who an advisory reaches, decided once at ingest, with its reasons.

    ``areas`` are the areas it concerns (the force's slug when force-wide; empty when it
    is outside coverage: stored, never mailed, in no feed). ``mentioned`` are places named
    inside a declared area, kept for display. ``unknown`` are declared areas the
    gazetteer does not know."""

    areas: frozenset[str]
    evidence: tuple[Evidence, ...] = ()
    discounted: tuple[Discounted, ...] = ()
    mentioned: tuple[Evidence, ...] = ()
    declared: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    outside_coverage: bool = False
    force_wide: bool = False
    #: True when no place at all was found (so force-wide by default, worth a warning).
    no_place: bool = False
    overridden: bool = False

    @property
    def tags(self) -> frozenset[str]:
        """Every area it names with effect: its areas, the areas of its evidence (a
        declared force area among them) and the places mentioned inside a declared area."""
        return self.areas | {e.area for e in self.evidence} | {m.area for m in self.mentioned}

    def as_json(self) -> dict[str, Any]:
        return {
            "areas": sorted(self.areas),
            "evidence": [e.as_json() for e in self.evidence],
            "discounted": [d.as_json() for d in self.discounted],
            "mentioned": [m.as_json() for m in self.mentioned],
            "declared": list(self.declared),
            "unknown": list(self.unknown),
            "outside_coverage": self.outside_coverage,
            "force_wide": self.force_wide,
            "no_place": self.no_place,
            "overridden": self.overridden,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AreaDecision:
        return cls(
            areas=frozenset(data.get("areas") or ()),
            evidence=tuple(Evidence(**e) for e in data.get("evidence") or ()),
            discounted=tuple(Discounted(**d) for d in data.get("discounted") or ()),
            mentioned=tuple(Evidence(**m) for m in data.get("mentioned") or ()),
            declared=tuple(data.get("declared") or ()),
            unknown=tuple(data.get("unknown") or ()),
            outside_coverage=bool(data.get("outside_coverage")),
            force_wide=bool(data.get("force_wide")),
            no_place=bool(data.get("no_place")),
            overridden=bool(data.get("overridden")),
        )


@dataclass(frozen=True)
class AdvisoryInput:
    """One advisory as read from a source, before it is stored.

    ``key`` is its identity: the canonical URL, or the upstream GUID.
    ``body_html`` is already sanitised; ``body_text`` is plain text for the text part
    of an email and for tagging. ``areas`` are gazetteer slugs (every tag, not only the
    most specific).
    """

    key: str
    url: str
    title: str
    summary: str
    body_html: str
    body_text: str
    published_at: datetime
    source: str
    areas: frozenset[str] = frozenset()
    force_area: str | None = None
    image_url: str | None = None
    status: Status = Status.ACTIVE
    priority: Priority = Priority.NORMAL
    expires_at: datetime | None = None
    date_assumed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: Who it reaches and why (see :func:`alerts.tagging.decide_areas`); ``areas`` is
    #: ``decision.areas``.
    decision: AreaDecision | None = None


@dataclass(frozen=True)
class Advisory:
    """An advisory as the store holds it.

    ``areas`` are the most specific areas it concerns (what the matching rule uses);
    ``tags`` every area it was tagged with. ``first_seen_at`` is when it was first
    ingested, ``changed_at`` when its title or body last changed materially (equal to
    ``first_seen_at`` until then), ``revision`` counts those changes from 1.
    """

    id: int
    key: str
    url: str
    title: str
    summary: str
    body_html: str
    body_text: str
    published_at: datetime
    first_seen_at: datetime
    changed_at: datetime
    updated_at: datetime
    revision: int
    source: str
    areas: tuple[str, ...]
    tags: tuple[str, ...]
    force_area: str | None
    image_url: str | None
    status: Status
    priority: Priority
    expires_at: datetime | None
    extra: dict[str, Any]
    #: Who it reaches and why (None for advisories stored before decisions were kept).
    decision: AreaDecision | None = None

    def is_live(self, now: datetime) -> bool:
        """Still to be published: not withdrawn and not expired at ``now``."""
        if self.status is Status.WITHDRAWN:
            return False
        return self.expires_at is None or self.expires_at > now


class Frequency(enum.StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"  # signed up, not yet confirmed by email
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"  # hard bounces or a complaint; never mailed again


@dataclass(frozen=True)
class Subscriber:
    """A subscriber as the store holds it. ``areas`` are canonical gazetteer slugs.
    ``watermark``: advisories that changed after it are new to them (None: not yet
    confirmed). ``urgent``: False when they opted out of urgent alerts."""

    id: int
    email: str
    name: str | None
    areas: tuple[str, ...]
    frequency: Frequency
    status: SubscriberStatus
    forwardable: bool
    urgent: bool
    watermark: datetime | None
    created_at: datetime
    confirmed_at: datetime | None = None
    bounces: int = 0
