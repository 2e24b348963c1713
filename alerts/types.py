"""The plain data shapes that flow between the pipeline stages, named once."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
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


class DigestKind(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    IMMEDIATE = "immediate"  # one advisory, for an immediate subscriber
    URGENT = "urgent"  # one urgent advisory, to every subscriber of its areas

    @property
    def single(self) -> bool:
        """One advisory in full, rather than a digest of summaries."""
        return self in (DigestKind.IMMEDIATE, DigestKind.URGENT)


@dataclass(frozen=True)
class RenderedDigest:
    """One variant, rendered: what a ``digests`` row holds. ``placeholders`` maps each
    personal value's name to the marker standing for it in ``html`` and ``text``."""

    key: str
    kind: DigestKind
    subject: str
    html: str
    text: str
    areas: tuple[str, ...]
    advisory_ids: tuple[int, ...]
    forwardable: bool
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        return {"placeholders": self.placeholders, "forwardable": self.forwardable}
@dataclass(frozen=True)
class OutboxItem:
    """One outbox row to turn into a message. ``name`` is the subscriber's display name
    for the To header (optional)."""

    outbox_id: int
    subscriber_id: int
    digest_id: int
    message_id: str
    email: str
    name: str | None = None


@dataclass(frozen=True)
class Candidate:
    """The little planning needs to know of an advisory (bodies are loaded only to render)."""

    id: int
    revision: int
    changed_at: datetime
    published_at: datetime
    areas: frozenset[str]
    urgent: bool


@dataclass
class SendReport:
    """What one run of :func:`alerts.delivery.send_pending` did."""

    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    failed: int = 0
    suppressed: int = 0
    #: Subscribers suppressed by this run's bounces.
    suppressed_addresses: int = 0
    #: Why workers stopped early (relay unreachable); the messages stay queued.
    errors: list[str] = field(default_factory=list)
    stopped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    """What one cycle did, in counts, and what went wrong."""

    kind: str
    started_at: datetime
    finished_at: datetime | None = None
    new: int = 0
    updated: int = 0
    rejected: int = 0
    failed_sources: int = 0
    feeds_written: int = 0
    feeds_unchanged: int = 0
    queued: int = 0
    digests: list[str] = field(default_factory=list)
    #: What delivery did (all zero when this cycle did not send).
    send: SendReport = field(default_factory=SendReport)
    stopped: bool = False
    #: One line per problem: rejected files, failed sources, failed stages, relay trouble.
    problems: list[str] = field(default_factory=list)
    #: Stages that raised (their names); later stages still ran.
    failed_stages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return self.send.sent

    @property
    def deferred(self) -> int:
        return self.send.deferred

    @property
    def bounced(self) -> int:
        return self.send.bounced

    @property
    def failed(self) -> int:
        return self.send.failed

    @property
    def suppressed(self) -> int:
        return self.send.suppressed

    @property
    def ok(self) -> bool:
        """False when the run reported failures: rejected advisories, failed sources, a
        failed stage, or messages deferred or given up. Bounces are not failures."""
        return not (
            self.rejected
            or self.failed_sources
            or self.failed_stages
            or self.deferred
            or self.failed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "ok": self.ok,
            "new": self.new,
            "updated": self.updated,
            "rejected": self.rejected,
            "failed_sources": self.failed_sources,
            "feeds_written": self.feeds_written,
            "feeds_unchanged": self.feeds_unchanged,
            "queued": self.queued,
            "digests": list(self.digests),
            "sent": self.sent,
            "deferred": self.deferred,
            "bounced": self.bounced,
            "failed": self.failed,
            "suppressed": self.suppressed,
            "suppressed_addresses": self.send.suppressed_addresses,
            "stopped": self.stopped,
            "failed_stages": list(self.failed_stages),
            "problems": list(self.problems),
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """One line an operator reads in a log."""
        digests = f" (ran the {' and '.join(self.digests)} digests)" if self.digests else ""
        line = (
            f"{self.kind}: {self.new} new, {self.updated} updated, {self.rejected} rejected, "
            f"{self.failed_sources} sources failed; {self.feeds_written} feeds written; "
            f"{self.queued} messages queued{digests}; {self.sent} sent, {self.deferred} deferred, "
            f"{self.bounced} bounced, {self.failed} failed ({self.seconds:.1f} s)"
        )
        if self.failed_stages:
            line += f"; FAILED: {', '.join(self.failed_stages)}"
        if self.stopped:
            line += "; stopped early, the rest stays queued"
        return line
