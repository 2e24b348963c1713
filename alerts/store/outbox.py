"""Digests and the outbox: rendered variants (``digests``), the messages queued from them
(``outbox``) and which revision of which advisory each subscriber was sent
(``subscriber_advisories``).

Queueing writes a batch of them in one transaction (:func:`queue_batch`); transactional
mail queues one finished message (:func:`queue_finished_message`).

The outbox is a work queue: claim due rows under a lease, record what the relay said.

A row is ``pending`` until a worker claims it (``sending``, with ``claimed_by`` and a
lease in ``claimed_until``), then ``sent``, ``bounced``, ``failed`` or ``suppressed``, or
``pending`` again with a later ``next_attempt_at``. A worker that dies leaves its rows
``sending``; once the lease runs out any worker may claim them again, which is the only
way a message can go twice, and it keeps its Message-ID when it does.

PostgreSQL: claims are ``SELECT ... FOR UPDATE SKIP LOCKED`` in a short transaction, so
several processes on several machines share one outbox. SQLite: one writer at a time, so a
claim is a ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import enum
import hashlib
import os
import random
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from alerts.schema import digests, outbox, subscriber_advisories, subscribers
from alerts.store.advisories import Store
from alerts.store.ids import CHUNK, chunks
from alerts.types import Frequency, OutboxItem, SubscriberStatus

__all__ = ["CHUNK", "chunks"]  # re-exported: delivery and tests chunk with the same size


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    BOUNCED = "bounced"  # the relay refused the recipient (5xx)
    FAILED = "failed"  # given up: too many attempts, or refused for good
    SUPPRESSED = "suppressed"  # the subscriber left or was suppressed before it went


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds: the item to build and send, and the attempts before this one."""

    item: OutboxItem
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base`` seconds doubling per attempt up to ``maximum``, with
    jitter so that a relay coming back is not hit by every deferred message at once."""

    base: float
    maximum: float
    max_attempts: int

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """Wait before the next attempt, after ``attempts`` failed ones (1 or more)."""
        exponent = min(max(attempts - 1, 0), 40)
        seconds = min(self.maximum, self.base * 2**exponent)
        seconds *= (rng or random).uniform(0.8, 1.2)
        return timedelta(seconds=min(seconds, self.maximum))


@dataclass
class Outcomes:
    """What happened to claimed rows since the last flush; written in one transaction."""

    sent: list[int] = field(default_factory=list)
    deferred: list[tuple[Claimed, str]] = field(default_factory=list)
    bounced: list[tuple[Claimed, str]] = field(default_factory=list)
    failed: list[tuple[Claimed, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.deferred) + len(self.bounced) + len(self.failed)


@dataclass(frozen=True)
class Recorded:
    """What a flush wrote: counts per outcome, and the subscribers whose bounces these were."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced_subscribers: tuple[int, ...] = ()


def worker_name(index: int) -> str:
    """``host:pid:index:nonce``: unique per worker, and says which process holds a row."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{index}:{random.getrandbits(32):08x}"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes. On SQLite it takes the write lock up front (``BEGIN
    IMMEDIATE``), so two claimers queue on the busy timeout instead of both reading the
    same due rows and one failing on upgrade."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # WAL with synchronous=NORMAL: a commit survives a crash of this process (all
            # the outbox promises) but is not fsynced each time; after a power cut the
            # last marks may be lost, and those messages go again with their Message-ID.
            # Restored afterwards: the connection goes back to the pool for other stages.
            previous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            if sqlite:
                conn.exec_driver_sql(f"PRAGMA synchronous={previous}")


class Outbox:
    """The outbox table's queue operations. Thread-safe: each call uses its own connection."""

    def __init__(self, engine: Engine, retry: RetryPolicy, *, lease: timedelta = timedelta(minutes=5)):
        self.engine = engine
        self.retry = retry
        self.lease = lease
        self.sqlite = engine.dialect.name == "sqlite"

    def claim(self, worker: str, limit: int, now: datetime) -> tuple[list[Claimed], int]:
        """Take up to ``limit`` due rows (pending and due, or held under an expired lease).

        Rows of subscribers who unsubscribed or were suppressed since they were queued
        are marked ``suppressed`` on the way and not returned; their number comes second.
        """
        with write_transaction(self.engine) as conn:
            return self._claim(conn, worker, limit, now)

    def record_and_claim(
        self, worker: str, outcomes: Outcomes, limit: int, now: datetime
    ) -> tuple[Recorded, list[Claimed], int]:
        """:meth:`record` a finished batch and :meth:`claim` the next in one transaction
        (one commit, one turn of the SQLite write lock, per batch)."""
        with write_transaction(self.engine) as conn:
            recorded = self._record(conn, worker, outcomes, now)
            return (recorded, *self._claim(conn, worker, limit, now))

    def _claim(self, conn: Connection, worker: str, limit: int, now: datetime) -> tuple[list[Claimed], int]:
        rows = self._due_rows(conn, limit, now)
        if not rows:
            return [], 0
        left = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED)
        gone = [r.id for r in rows if r.status in left]
        held = [r for r in rows if r.status not in left]
        _mark_left(conn, gone)
        self._hold(conn, worker, [r.id for r in held], now)
        return [_claimed(r) for r in held], len(gone)

    def _due_rows(self, conn: Connection, limit: int, now: datetime) -> list[Row[*tuple[Any, ...]]]:
        """Up to ``limit`` rows to claim, locked: those under an expired lease first, then
        the pending ones that are due, each in queue order."""
        columns = (
            outbox.c.id,
            outbox.c.subscriber_id,
            outbox.c.digest_id,
            outbox.c.message_id,
            outbox.c.attempts,
            subscribers.c.email,
            subscribers.c.name,
            subscribers.c.status,
        )
        source = outbox.join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
        # Two queries rather than one OR, so each is an index range scan in order
        # (status, next_attempt_at) instead of a sort of every due row per claim.
        expired = (
            select(*columns)
            .select_from(source)
            .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_until < now)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=outbox)
        )
        due = (
            select(*columns)
            .select_from(source)
            .where(outbox.c.status == OutboxStatus.PENDING, outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=outbox)
        )
        rows = list(conn.execute(expired))
        if len(rows) < limit:
            rows += conn.execute(due.limit(limit - len(rows))).all()
        return rows

    def _hold(self, conn: Connection, worker: str, ids: list[int], now: datetime) -> None:
        for chunk in chunks(ids):
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(chunk))
                .values(status=OutboxStatus.SENDING, claimed_by=worker, claimed_until=now + self.lease)
            )

    def renew(self, worker: str, ids: Sequence[int], now: datetime) -> set[int]:
        """Extend the lease on rows this worker still holds; returns the ids it holds."""
        held: set[int] = set()
        with write_transaction(self.engine) as conn:
            for chunk in chunks(ids):
                held.update(
                    conn.execute(
                        update(outbox)
                        .where(
                            outbox.c.id.in_(chunk),
                            outbox.c.claimed_by == worker,
                            outbox.c.status == OutboxStatus.SENDING,
                        )
                        .values(claimed_until=now + self.lease)
                        .returning(outbox.c.id)
                    ).scalars()
                )
        return held

    def record(self, worker: str, outcomes: Outcomes, now: datetime) -> Recorded:
        """Write a batch of outcomes in one transaction.

        ``sent`` rows were accepted by the relay, so they are marked sent whoever holds
        them now. The other outcomes apply only to rows this worker still holds: if its
        lease ran out and another worker sent the row meanwhile, that result stands.
        """
        with write_transaction(self.engine) as conn:
            return self._record(conn, worker, outcomes, now)

    def _record(self, conn: Connection, worker: str, outcomes: Outcomes, now: datetime) -> Recorded:
        deferred = failed = 0
        bounced: list[int] = []
        for chunk in chunks(outcomes.sent):
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(chunk))
                .values(
                    status=OutboxStatus.SENT,
                    sent_at=now,
                    attempts=outbox.c.attempts + 1,
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
        changes = []
        for claimed, error in outcomes.deferred:
            attempts = claimed.attempts + 1
            if attempts >= self.retry.max_attempts:
                status, due, failed = OutboxStatus.FAILED, now, failed + 1
                error = f"gave up after {attempts} attempts: {error}"
            else:
                status, due, deferred = OutboxStatus.PENDING, now + self.retry.delay(attempts), deferred + 1
            changes.append((claimed, status, due, error))
        for claimed, error in outcomes.failed:
            failed += 1
            changes.append((claimed, OutboxStatus.FAILED, now, error))
        for claimed, error in outcomes.bounced:
            bounced.append(claimed.item.subscriber_id)
            changes.append((claimed, OutboxStatus.BOUNCED, now, error))
        if changes:
            conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == bindparam("row_id"),
                    outbox.c.claimed_by == worker,
                    outbox.c.status == OutboxStatus.SENDING,
                )
                .values(
                    status=bindparam("new_status"),
                    next_attempt_at=bindparam("due"),
                    last_error=bindparam("error"),
                    attempts=outbox.c.attempts + 1,
                    claimed_by=None,
                    claimed_until=None,
                ),
                [
                    {"row_id": c.item.outbox_id, "new_status": s, "due": d, "error": e[:2000]}
                    for c, s, d, e in changes
                ],
            )
        return Recorded(len(outcomes.sent), deferred, failed, tuple(bounced))

    def release(self, worker: str, ids: Iterable[int]) -> None:
        """Give back rows this worker claimed but did not try (stopping, or relay down):
        pending again, due as before, the attempt not counted."""
        with write_transaction(self.engine) as conn:
            for chunk in chunks(list(ids)):
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.id.in_(chunk),
                        outbox.c.claimed_by == worker,
                        outbox.c.status == OutboxStatus.SENDING,
                    )
                    .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_until=None)
                )

    def suppress_queued(self, subscriber_id: int) -> int:
        """Mark the still-queued messages of a suppressed subscriber as suppressed."""
        with write_transaction(self.engine) as conn:
            return conn.execute(
                update(outbox)
                .where(outbox.c.subscriber_id == subscriber_id, outbox.c.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SUPPRESSED, last_error="address suppressed after hard bounces")
            ).rowcount

    def reclaim_orphans(self) -> int:
        """Free rows held by dead processes of this machine, so a restart after a crash
        need not wait for their leases. SQLite only: a database file belongs to one
        machine, so a ``host:pid`` there is unambiguous; on PostgreSQL (shared by
        machines that may reuse host names and pids) the lease alone decides."""
        if not self.sqlite:
            return 0
        host = socket.gethostname()[:60]
        with self.engine.connect() as conn:
            holders = conn.execute(
                select(outbox.c.claimed_by).where(outbox.c.status == OutboxStatus.SENDING).distinct()
            ).scalars().all()
        dead = [h for h in holders if h and _dead_here(h, host)]
        if not dead:
            return 0
        with write_transaction(self.engine) as conn:
            return conn.execute(
                update(outbox)
                .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_by.in_(dead))
                .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_until=None)
            ).rowcount

    def due(self, now: datetime) -> int:
        """How many rows are due now (pending and due, or under an expired lease)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(
                        (and_(outbox.c.status == OutboxStatus.PENDING, outbox.c.next_attempt_at <= now))
                        | (and_(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_until < now))
                    )
                ).scalar_one()
            )


def _dead_here(holder: str, host: str) -> bool:
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False



def _mark_left(conn: Connection, ids: list[int]) -> None:
    """Rows of subscribers who left or were suppressed since they were queued: never sent."""
    for chunk in chunks(ids):
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(chunk))
            .values(
                status=OutboxStatus.SUPPRESSED,
                last_error="subscriber unsubscribed or suppressed before it was sent",
                claimed_by=None,
                claimed_until=None,
            )
        )


def _claimed(row: Row[*tuple[Any, ...]]) -> Claimed:
    item = OutboxItem(
        outbox_id=row.id,
        subscriber_id=row.subscriber_id,
        digest_id=row.digest_id,
        message_id=row.message_id,
        email=row.email,
        name=row.name,
    )
    return Claimed(item, row.attempts)


# -- digests and queueing ------------------------------------------------------


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


@dataclass(frozen=True)
class SentRevision:
    """Which revision of an advisory a subscriber is being sent, and in which variant."""

    subscriber_id: int
    advisory_id: int
    revision: int
    digest_key: str


def queue_batch(
    store: Store,
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
    with store.engine.begin() as conn:
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
                "digest_id": ids[s.digest_key],
                "queued_at": now,
            }
            for s in sent
        ]
        if revisions:
            _record_sent(conn, revisions)
        if watermarks is not None:
            _move_watermarks(conn, watermarks, now)
    return ids


def move_all_watermarks(store: Store, frequencies: Iterable[Frequency], now: datetime) -> None:
    """Nothing new for anyone: every active subscriber of these frequencies is planned up to ``now``."""
    with store.engine.begin() as conn:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
            .where(subscribers.c.frequency.in_([f.value for f in frequencies]))
            .where(or_(subscribers.c.watermark.is_(None), subscribers.c.watermark < now))
            .values(watermark=now)
        )


def sent_revisions(
    store: Store, subscriber_ids: Sequence[int], advisory_ids: Sequence[int]
) -> dict[tuple[int, int], int]:
    """(subscriber id, advisory id) -> the revision they were sent, for these ids."""
    if not subscriber_ids or not advisory_ids:
        return {}
    sent: dict[tuple[int, int], int] = {}
    with store.engine.connect() as conn:
        for advisory_chunk in chunks(list(advisory_ids), 900):
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


def queue_finished_message(
    store: Store,
    subscriber_id: int,
    *,
    kind: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    meta: dict[str, Any],
    now: datetime,
) -> int:
    """Queue one finished message for one subscriber: a ``digests`` row of ``kind`` with
    ``meta`` and a pending ``outbox`` row, in one transaction. Returns the outbox id."""
    with store.engine.begin() as conn:
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
        return int(
            conn.execute(
                insert(outbox)
                .values(
                    subscriber_id=subscriber_id,
                    digest_id=digest_id,
                    status=OutboxStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    message_id=message_id,
                    created_at=now,
                )
                .returning(outbox.c.id)
            ).scalar_one()
        )


def queued_since(store: Store, subscriber_id: int, kind: str, since: datetime) -> int:
    """How many messages of digest ``kind`` were queued for the subscriber after ``since``."""
    with store.engine.connect() as conn:
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


def load_digest(store: Store, digest_id: int) -> StoredDigest | None:
    """The ``digests`` row ``digest_id``, or None."""
    with store.engine.connect() as conn:
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


def _store_digest(conn: Connection, digest: DigestContent, now: datetime) -> int:
    """Insert a rendered variant, or reuse the row an earlier run stored for it."""
    existing = conn.execute(select(digests.c.id).where(digests.c.key == digest.key)).scalar_one_or_none()
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
        .where(subscribers.c.id.in_(list(ids)))
        .where(or_(subscribers.c.watermark.is_(None), subscribers.c.watermark < now))
        .values(watermark=now)
    )
