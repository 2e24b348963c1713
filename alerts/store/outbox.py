"""The outbox as a work queue (queueing into it is in :mod:`alerts.store.digests`).

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
import os
import random
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, and_, bindparam, func, select, update
from sqlalchemy.engine import Connection

from alerts.schema import outbox, subscribers
from alerts.store.ids import chunks
from alerts.types import OutboxItem, SubscriberStatus


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
