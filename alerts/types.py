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
    POSTCODE = "postcode"


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
    #: When the status last changed (an unsubscribe, a confirmation).
    status_changed_at: datetime | None = None
