"""The plain data shapes that flow between the pipeline stages, named once.

It runs past 500 lines on purpose: every shape that crosses a stage boundary is named here
and only here (STYLE.md), including the area rule's reasons as enums with their words."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

#: The origin of advisories read from files: one namespace for every advisory file (a
#: feed's origin is its URL). See :attr:`AdvisoryInput.origin`.
FILES_ORIGIN = "files"


class Status(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class SourceState(enum.StrEnum):
    """Where a source stands in its lifecycle (the table is alerts.ingest.lifecycle.TABLE)."""

    HEALTHY = "healthy"
    FAILING = "failing"
    SURGING = "surging"


class Hold(enum.StrEnum):
    """Why an advisory is held back (``advisories.hold``); NULL: it is not."""

    #: Its source surged (alerts.ingest.lifecycle): neither mailed nor published until
    #: an operator releases the batch.
    SURGE = "surge"
    #: A surge an operator dropped: kept (so it is never new again), never mailed or published.
    DROPPED = "dropped"
    #: Its source's first poll: published, never mailed (a new source mails no backlog).
    BASELINE = "baseline"
    #: A file naming an existing advisory's URL with an entirely different title, text
    #: and date (alerts.replacement): stored as an advisory of its own, neither mailed
    #: nor published until an operator releases it; the old one is left as it was.
    REPLACEMENT = "replacement"
    #: Waiting for a person (``review:``, or an editor's hold in the console): neither
    #: mailed nor published until released in the console or by ``alerts advisories
    #: release``, or by its source's timeout (alerts.ingest.review).
    REVIEW = "review"

    @property
    def published(self) -> bool:
        """In the feeds and the archive despite the hold."""
        return self is Hold.BASELINE


class Priority(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"


class MailPriority(enum.IntEnum):
    """Which queued mail a sender takes first (lowest first): a confirmation before an
    alert, an alert before a digest."""

    TRANSACTIONAL = 0
    ALERT = 10
    DIGEST = 20


class AreaKind(enum.StrEnum):
    FORCE = "force"
    DISTRICT = "district"
    TOWN = "town"
    VILLAGE = "village"
    POSTCODE = "postcode"


class Basis(enum.StrEnum):
    """Why a place decided who an advisory reaches (:attr:`Evidence.basis`). The value is
    what is stored; :attr:`words` is for people, and may be reworded freely."""

    DECLARED = "declared"
    DECLARED_FORCE = "declared-force"
    NATIONAL_ALIAS = "national-alias"
    SCENE = "scene"
    AUDIENCE = "audience"
    FORCE_AREA = "force-area"
    ALL_OF_IT = "all-of-it"
    VICTIM_HOME = "victim-home"
    SOMEONE_HOME = "someone-home"
    NAMED = "named"
    FORCE_ADVICE = "force-advice"
    STOPPED_ONLY = "stopped-only"
    #: A stored decision whose words no longer match any basis (written by an older
    #: version): shown as stored, decides nothing new.
    UNKNOWN = "unknown"

    @property
    def words(self) -> str:
        return _BASIS_WORDS[self]


_BASIS_WORDS: dict[Basis, str] = {
    Basis.DECLARED: "declared area",
    Basis.DECLARED_FORCE: "declared force area; the text decides",
    Basis.NATIONAL_ALIAS: "a national warning; 'National' is an alias of the force",
    Basis.SCENE: "where it happened",
    Basis.AUDIENCE: "whom it is for",
    Basis.FORCE_AREA: "the whole force area",
    Basis.ALL_OF_IT: "all of it",
    Basis.VICTIM_HOME: "a victim's home",
    Basis.SOMEONE_HOME: "someone's home",
    Basis.NAMED: "named",
    Basis.FORCE_ADVICE: "advice addressed to the whole force area",
    Basis.STOPPED_ONLY: "where someone was stopped or arrested, the only place named",
    Basis.UNKNOWN: "",
}


class Why(enum.StrEnum):
    """Why a place the text names did not decide who an advisory reaches
    (:attr:`Discounted.why`). The value is what is stored; :attr:`words` (a template
    whose ``{}`` takes the detail) is for people, and may be reworded freely."""

    PERSON_NAME = "person-name"
    OPERATION_NAME = "operation-name"
    ORGANISATION_BASE = "organisation-base"
    ORGANISATION = "organisation"
    OTHER_COUNTY = "other-county"
    COURT = "court"
    POLICE_FORCE = "police-force"
    POLICE_STATION = "police-station"
    HOSPITAL = "hospital"
    PRISON = "prison"
    CUSTODY = "custody"
    STREET = "street"
    TITLE = "title-or-office"
    SUSPECT_HOME = "suspect-home"
    STOPPED_AT = "stopped-at"
    VICTIM_HOME_ELSEWHERE = "victim-home-elsewhere"
    AMBIGUOUS = "ambiguous"
    ALSO_ELSEWHERE = "also-elsewhere"
    ABOUT_ELSEWHERE = "about-elsewhere"
    OUTSIDE_PLACE = "outside-place"
    OTHER_FORCE = "other-force"
    NATIONAL = "national"
    PUBLISHED_ELSEWHERE = "published-elsewhere"
    OUTSIDE_COVERAGE = "outside-coverage"
    OUTSIDE_DECLARED = "outside-declared"
    FORCE_WIDE = "force-wide"
    EXAMPLE = "example"
    IN_PASSING = "in-passing"
    #: A stored decision whose words no longer match any reason (written by an older
    #: version): shown as stored, decides nothing new.
    UNKNOWN = "unknown"

    @property
    def words(self) -> str:
        return _WHY_WORDS[self]

    def say(self, detail: str = "") -> str:
        """The words with a detail ("a place of that name in Essex, not here")."""
        return _render(self.words, detail)

    @property
    def not_a_place(self) -> bool:
        """The words are not a place at all ("Inspector Andy Hastings", "Operation Deal")."""
        return self in (Why.PERSON_NAME, Why.OPERATION_NAME)

    @property
    def names_the_force(self) -> bool:
        """ "Kent Police", "Kent Police Station": the force named as an institution, which
        still says the release is the force's own."""
        return self in (Why.POLICE_FORCE, Why.POLICE_STATION)


_WHY_WORDS: dict[Why, str] = {
    Why.PERSON_NAME: "a person's name",
    Why.OPERATION_NAME: "the name of a police operation",
    Why.ORGANISATION_BASE: "an organisation's base",
    Why.ORGANISATION: "an organisation",
    Why.OTHER_COUNTY: "a place of that name in {}, not here",
    Why.COURT: "a court",
    Why.POLICE_FORCE: "a police force or team",
    Why.POLICE_STATION: "a police station",
    Why.HOSPITAL: "a hospital",
    Why.PRISON: "a prison",
    Why.CUSTODY: "a prison or custody",
    Why.STREET: "a road or street name",
    Why.TITLE: "a title or office",
    Why.SUSPECT_HOME: "a suspect's home",
    Why.STOPPED_AT: "where someone was stopped or arrested, not where it happened",
    Why.VICTIM_HOME_ELSEWHERE: "a victim's home, but the harm happened elsewhere",
    Why.AMBIGUOUS: "names more than one place ({}) and the text does not say which",
    Why.ALSO_ELSEWHERE: "also a place outside the force area, and nothing here puts it inside",
    Why.ABOUT_ELSEWHERE: "also a place outside the force area, and the text is about elsewhere ({})",
    Why.OUTSIDE_PLACE: "a place outside the force area",
    Why.OTHER_FORCE: "another police force",
    Why.NATIONAL: (
        "a national warning naming nowhere in the force area"
        " (map 'National' to the force in area_aliases: to send these force-wide)"
    ),
    Why.PUBLISHED_ELSEWHERE: "published on another force's or a national site",
    Why.OUTSIDE_COVERAGE: "the advisory is outside coverage",
    Why.OUTSIDE_DECLARED: "outside the declared area ({})",
    Why.FORCE_WIDE: "the advisory is for the whole force area",
    Why.EXAMPLE: "an example: the advice is addressed to the whole force area",
    Why.IN_PASSING: "named only in passing, below the first paragraph",
    Why.UNKNOWN: "",
}


def _render(template: str, detail: str) -> str:
    """A reason's words with its detail: in the template's ``{}``, else in brackets after."""
    if "{}" in template:
        return template.replace("{}", detail)
    if template and detail:
        return f"{template} ({detail})"
    return template or detail


_E = TypeVar("_E", Basis, Why)


def _parse_words(members: type[_E], text: str, unknown: _E) -> tuple[_E, str]:
    """An older stored decision kept only the words: find the member they render, and
    the detail. Read only for rows stored before the codes were; new rows carry the code."""
    for member in members:
        template = member.words
        if not template:
            continue
        head, _, tail = template.partition("{}")
        if "{}" in template:
            if text.startswith(head) and text.endswith(tail) and len(text) > len(head) + len(tail):
                return member, text[len(head) : len(text) - len(tail)]
        elif text == template:
            return member, ""
        elif text.startswith(template + " (") and text.endswith(")"):
            return member, text[len(template) + 2 : -1]
    return unknown, text


@dataclass(frozen=True)
class Evidence:
    """Why an advisory concerns an area: the words that decided it and where they were
    (``title``, ``summary``, ``text``; ``declared`` for front matter or a feed source's
    ``area:``; ``override`` for an operator's retag). ``basis`` is the decision as data;
    ``how`` its words, for people."""

    area: str
    words: str
    part: str
    basis: Basis
    #: Shown with the basis's words ("Medway, which the text also names"); never read by code.
    detail: str = ""

    @property
    def how(self) -> str:
        return _render(self.basis.words, self.detail)

    def as_json(self) -> dict[str, str]:
        found = {"area": self.area, "words": self.words, "part": self.part, "how": self.how}
        return found | {"basis": self.basis.value, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evidence:
        """Rows stored before ``basis`` was have only ``how``: its words are mapped back."""
        if data.get("basis") in _BASES:
            basis, detail = Basis(data["basis"]), str(data.get("detail") or "")
        else:
            basis, detail = _parse_words(Basis, str(data.get("how") or ""), Basis.UNKNOWN)
        return cls(str(data["area"]), str(data["words"]), str(data["part"]), basis, detail)


@dataclass(frozen=True)
class Discounted:
    """A place the text names that did not decide who the advisory reaches, and why
    (``why`` as data; ``reason`` its words: "a court", "a suspect's home", "outside the
    declared area (Medway)")."""

    name: str
    area: str | None
    words: str
    why: Why
    #: Shown in the reason's words ("Essex", "Medway"); never read by code.
    detail: str = ""

    @property
    def reason(self) -> str:
        return self.why.say(self.detail)

    def as_json(self) -> dict[str, str | None]:
        found = {"name": self.name, "area": self.area, "words": self.words, "reason": self.reason}
        return found | {"why": self.why.value, "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Discounted:
        """Rows stored before ``why`` was have only ``reason``: its words are mapped back."""
        if data.get("why") in _WHYS:
            why, detail = Why(data["why"]), str(data.get("detail") or "")
        else:
            why, detail = _parse_words(Why, str(data.get("reason") or ""), Why.UNKNOWN)
        area = data.get("area")
        return cls(
            str(data["name"]), None if area is None else str(area), str(data["words"]), why, detail
        )


_BASES = frozenset(b.value for b in Basis)
_WHYS = frozenset(w.value for w in Why)


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
            evidence=tuple(Evidence.from_json(e) for e in data.get("evidence") or ()),
            discounted=tuple(Discounted.from_json(d) for d in data.get("discounted") or ()),
            mentioned=tuple(Evidence.from_json(m) for m in data.get("mentioned") or ()),
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

    ``key`` is its identity within its ``origin`` (the source that created it: "files",
    or a feed's URL): the canonical URL, or the upstream GUID. A source never updates
    what another created. ``body_html`` is already sanitised; ``body_text`` is plain text for the text part
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
    origin: str = FILES_ORIGIN


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
    #: Who it reaches and why, as the area rule decided (None for advisories stored
    #: before decisions were kept).
    decision: AreaDecision | None = None
    #: Stored, but never mailed or published: its area is unknown here.
    outside_coverage: bool = False
    #: An operator's retag (the areas it reaches instead of the rule's; () for none), and when.
    area_override: tuple[str, ...] | None = None
    area_override_at: datetime | None = None
    origin: str = FILES_ORIGIN
    #: Held back whatever its areas say (None: not held); only a baseline is published.
    #: Which source's batch (or file), since when, and what the operator is told.
    hold: Hold | None = None
    hold_source: str | None = None
    hold_at: datetime | None = None
    hold_detail: dict[str, Any] | None = None
    #: A material change waiting for its update interval (None: none waits).
    update_held_since: datetime | None = None

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
    #: The random key the links made for this row carry (None: a row made before keys).
    link_key: str | None = None


class DigestKind(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    IMMEDIATE = "immediate"  # one advisory, for an immediate subscriber
    URGENT = "urgent"  # one urgent advisory, to every subscriber of its areas
    #: The alerts past a subscriber's hourly limit, gathered into one message when the
    #: hour is up (alerts.digest.guard).
    GATHERED = "gathered"

    @property
    def single(self) -> bool:
        """One advisory in full, rather than a digest of summaries."""
        return self in (DigestKind.IMMEDIATE, DigestKind.URGENT)

    @property
    def alert(self) -> bool:
        """Sent as advisories arrive (ahead of digests), and counted by the flood guard."""
        return self.single or self is DigestKind.GATHERED


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
    #: The subscriber's link key, carried by the personal links in the message.
    link_key: str | None = None


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
    #: Messages whose bodies got no final reply, their tries used up: ``unknown``.
    unknown: int = 0
    #: Why workers stopped early (relay unreachable); the messages stay queued.
    errors: list[str] = field(default_factory=list)
    stopped: bool = False
    #: The relay asked every sender to wait (ISO 8601), quoting ``relay_reply``.
    paused_until: str | None = None
    relay_reply: str | None = None

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
    #: Advisories stored but outside coverage (an unknown or other force's area).
    outside_coverage: int = 0
    #: Advisories that named no place and so went to every subscriber.
    no_place: int = 0
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
    #: Files still being written when the folders were read, and when to look again.
    unsettled: int = 0
    recheck_in: float | None = None
    #: Sources surging (alerts.ingest.lifecycle) and how many advisories each holds: not
    #: a failure (the run exits 0), but named wherever the run is reported.
    surging: dict[str, int] = field(default_factory=dict)

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
            "outside_coverage": self.outside_coverage,
            "no_place": self.no_place,
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
            "unsettled": self.unsettled,
            "surging": dict(self.surging),
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
        if self.outside_coverage or self.no_place:
            line += (
                f"; areas to check: {self.outside_coverage} outside coverage (not mailed),"
                f" {self.no_place} force-wide for want of a place"
            )
        if self.unsettled:
            line += f"; {self.unsettled} file(s) still being written, read once they settle"
        if self.surging:
            held = ", ".join(f"{count} from {source}" for source, count in self.surging.items())
            line += f"; HELD, sources surging: {held} (alerts sources release NAME, or drop)"
        if self.failed_stages:
            line += f"; FAILED: {', '.join(self.failed_stages)}"
        if self.stopped:
            line += "; stopped early, the rest stays queued"
        return line
