"""Digests and queueing: rendered variants (``digests``), the messages queued from them
into the outbox and which revision of which advisory each subscriber was sent
(``subscriber_advisories``), with the subscribers' watermarks moved in the same
transaction. Queueing writes a batch in one transaction (:meth:`Digests.queue_batch`);
transactional mail queues one finished message (:meth:`Digests.queue_finished_message`).
Claiming and sending the queued rows is :mod:`alerts.store.outbox`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from alerts.store import sweeps
from alerts.store.ids import among, chunks
from alerts.store.outbox import OutboxStatus
from alerts.store.schema import digests, outbox, subscriber_advisories, subscribers
from alerts.store.wakeup import notify
from alerts.types import DigestKind, Frequency, MailPriority, SubscriberStatus

#: The kinds of message the flood guard counts (a daily or weekly digest is never limited).
ALERT_KINDS = tuple(kind.value for kind in DigestKind if kind.alert)


class DigestContent(Protocol):
    """A rendered variant to store (``alerts.digest.render.RenderedDigest`` is one)."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def areas(self) -> Sequence[str]: ...
    @property
    def advisory_ids(self) -> Sequence[int]: ...
    @property
    def meta(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StoredDigest:
    """A ``digests`` row as delivery reads it. ``meta["transactional"]``: a finished
    message (a confirmation), with ``meta["raw"]`` the whole RFC 5322 text when kept."""

    id: int
    key: str
    kind: str
    subject: str
    html: str
    text: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class QueuedMessage:
    """One message to queue: the variant it uses (by digest key) and its Message-ID."""

    subscriber_id: int
    digest_key: str
    message_id: str
    #: alerts.types.MailPriority: an alert goes ahead of a digest.
    priority: int = 20
    #: When what it carries arrived (the earliest of its advisories).
    arrived_at: datetime | None = None


@dataclass(frozen=True)
class SentRevision:
    """Which revision of an advisory a subscriber is being sent, and in which variant."""

    subscriber_id: int
    advisory_id: int
    revision: int
    #: None: not sent but held back (alerts.digest.guard.HELD).
    digest_key: str | None


def _store_digest(conn: Connection, digest: DigestContent, now: datetime) -> int:
    """Insert a rendered variant, or reuse the row an earlier run stored for it."""
    existing = conn.execute(
        select(digests.c.id).where(digests.c.key == digest.key)
    ).scalar_one_or_none()
    if existing is not None:
        return int(existing)
    digest_id = conn.execute(
        insert(digests)
        .values(
            key=digest.key,
            kind=str(digest.kind),
            subject=digest.subject,
            html=digest.html,
            text=digest.text,
            areas=list(digest.areas),
            advisory_ids=list(digest.advisory_ids),
            created_at=now,
            meta=digest.meta,
        )
        .returning(digests.c.id)
    ).scalar_one()
    return int(digest_id)


def _record_sent(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Upsert which revision of which advisory each subscriber was sent."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(subscriber_advisories)
    statement = statement.on_conflict_do_update(
        index_elements=[subscriber_advisories.c.subscriber_id, subscriber_advisories.c.advisory_id],
        set_={
            "revision": statement.excluded.revision,
            "digest_id": statement.excluded.digest_id,
            "queued_at": statement.excluded.queued_at,
        },
    )
    conn.execute(statement, rows)


def _move_watermarks(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """Everything up to ``now`` has been planned for these subscribers."""
    conn.execute(
        update(subscribers)
        .where(among(subscribers.c.id, ids, conn))
        .where(or_(subscribers.c.watermark.is_(None), subscribers.c.watermark < now))
        .values(watermark=now)
    )


class Digests:
    """Digests, queueing them into the outbox, and what each subscriber was sent (``store.digests``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def queue_batch(
        self,
        *,
        rendered: Iterable[DigestContent],
        known: dict[str, int],
        messages: Iterable[QueuedMessage],
        sent: Iterable[SentRevision],
        watermarks: Sequence[int] | None,
        now: datetime,
    ) -> dict[str, int]:
        """Write one batch of a queueing run in one transaction: the newly ``rendered``
        variants, the pending outbox rows, the sent revisions, and (when given) the
        watermarks of those subscribers moved to ``now``. ``known`` maps the keys of
        variants stored earlier to their ids; returns it with the new ones added."""
        with self.engine.begin() as conn:
            ids = dict(known)
            for digest in rendered:
                ids[digest.key] = _store_digest(conn, digest, now)
            rows = [
                {
                    "subscriber_id": m.subscriber_id,
                    "digest_id": ids[m.digest_key],
                    "status": OutboxStatus.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "message_id": m.message_id,
                    "created_at": now,
                    "priority": m.priority,
                    "arrived_at": m.arrived_at,
                }
                for m in messages
            ]
            if rows:
                conn.execute(insert(outbox), rows)
            revisions = [
                {
                    "subscriber_id": s.subscriber_id,
                    "advisory_id": s.advisory_id,
                    "revision": s.revision,
                    "digest_id": None if s.digest_key is None else ids[s.digest_key],
                    "queued_at": now,
                }
                for s in sent
            ]
            if revisions:
                _record_sent(conn, revisions)
            if watermarks is not None:
                _move_watermarks(conn, watermarks, now)
        if rows:
            notify(self.engine)  # committed: senders in any process start on it now
        return ids

    def move_all_watermarks(self, frequencies: Iterable[Frequency], now: datetime) -> None:
        """Nothing new for anyone: every active subscriber of these frequencies is planned up to ``now``."""
        with self.engine.begin() as conn:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
                .where(subscribers.c.frequency.in_([f.value for f in frequencies]))
                .where(or_(subscribers.c.watermark.is_(None), subscribers.c.watermark < now))
                .values(watermark=now)
            )

    def swept_until(self, name: str) -> datetime | None:
        """Where sweep ``name`` (:data:`alerts.store.sweeps.URGENT`) finished last."""
        return sweeps.swept_until(self.engine, name)

    def record_sweep(self, name: str, *, seen: datetime | None, until: datetime) -> bool:
        """Sweep ``name`` covered everything to ``until``, unless the mark moved from
        ``seen`` meanwhile (:func:`alerts.store.sweeps.record`)."""
        return sweeps.record(self.engine, name, seen=seen, until=until)

    def sent_revisions(
        self, subscriber_ids: Sequence[int], advisory_ids: Sequence[int]
    ) -> dict[tuple[int, int], int]:
        """(subscriber id, advisory id) -> the revision they were sent, for these ids."""
        if not subscriber_ids or not advisory_ids:
            return {}
        sent: dict[tuple[int, int], int] = {}
        with self.engine.connect() as conn:
            for advisory_chunk in chunks(list(advisory_ids), 900):
                rows = conn.execute(
                    select(
                        subscriber_advisories.c.subscriber_id,
                        subscriber_advisories.c.advisory_id,
                        subscriber_advisories.c.revision,
                    ).where(
                        among(subscriber_advisories.c.subscriber_id, subscriber_ids, conn),
                        among(subscriber_advisories.c.advisory_id, advisory_chunk, conn),
                    )
                )
                for subscriber_id, advisory_id, revision in rows:
                    sent[(subscriber_id, advisory_id)] = revision
        return sent

    def queue_finished_message(
        self,
        subscriber_id: int,
        *,
        kind: str,
        subject: str,
        text: str,
        html: str,
        message_id: str,
        meta: dict[str, Any],
        now: datetime,
        not_before: datetime | None = None,
    ) -> int:
        """Queue one finished message for one subscriber: a ``digests`` row of ``kind`` with
        ``meta`` and a pending ``outbox`` row, in one transaction, ahead of every alert and
        digest (due at ``not_before``, else at once); then wakes the senders. Returns the
        outbox id."""
        with self.engine.begin() as conn:
            digest_id = conn.execute(
                insert(digests)
                .values(
                    key=hashlib.sha256(message_id.encode()).hexdigest(),
                    kind=kind,
                    subject=subject,
                    html=html,
                    text=text,
                    areas=[],
                    advisory_ids=[],
                    created_at=now,
                    meta=meta,
                )
                .returning(digests.c.id)
            ).scalar_one()
            outbox_id = int(
                conn.execute(
                    insert(outbox)
                    .values(
                        subscriber_id=subscriber_id,
                        digest_id=digest_id,
                        status=OutboxStatus.PENDING,
                        attempts=0,
                        next_attempt_at=not_before or now,
                        message_id=message_id,
                        created_at=now,
                        # Transactional: ahead of every alert and digest; its latency runs from now.
                        priority=MailPriority.TRANSACTIONAL,
                        arrived_at=now,
                    )
                    .returning(outbox.c.id)
                ).scalar_one()
            )
        notify(self.engine)
        return outbox_id

    def queued_since(self, subscriber_id: int, kind: str, since: datetime) -> int:
        """How many messages of digest ``kind`` were queued for the subscriber after ``since``."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(outbox.join(digests, outbox.c.digest_id == digests.c.id))
                    .where(
                        outbox.c.subscriber_id == subscriber_id,
                        digests.c.kind == kind,
                        outbox.c.created_at > since,
                    )
                ).scalar_one()
            )

    def recent_alerts(
        self, subscriber_ids: Sequence[int], since: datetime
    ) -> dict[int, dict[str, int]]:
        """subscriber id -> {digest kind: messages queued for them after ``since``}, for
        the kinds the flood guard counts (immediate, urgent, gathered: alerts.digest.guard);
        subscribers with none are left out."""
        found: dict[int, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(subscriber_ids), 900):
                rows = conn.execute(
                    select(outbox.c.subscriber_id, digests.c.kind, func.count())
                    .select_from(outbox.join(digests, outbox.c.digest_id == digests.c.id))
                    .where(
                        among(outbox.c.subscriber_id, chunk, conn),
                        outbox.c.created_at > since,
                        digests.c.kind.in_(ALERT_KINDS),
                    )
                    .group_by(outbox.c.subscriber_id, digests.c.kind)
                )
                for subscriber_id, kind, count in rows:
                    found.setdefault(subscriber_id, {})[kind] = int(count)
        return found

    def get(self, digest_id: int) -> StoredDigest | None:
        """The ``digests`` row ``digest_id``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(digests).where(digests.c.id == digest_id)).mappings().first()
        if row is None:
            return None
        return StoredDigest(
            id=row["id"],
            key=row["key"],
            kind=row["kind"],
            subject=row["subject"],
            html=row["html"],
            text=row["text"],
            meta=dict(row["meta"] or {}),
        )
