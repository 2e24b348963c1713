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

A message the relay accepted is marked sent at once, in a commit of its own
(:class:`SentMarks`), before the connection carries the next one: a sender killed at any
instant repeats at most the one message per connection whose 250 had arrived. The
commit survives the process dying without waiting for the disk (SQLite WAL with
``synchronous=NORMAL``; PostgreSQL ``synchronous_commit = off``); only a power cut or a
server crash may lose the last few marks, and those messages go again with their
Message-ID.

A dead sender's rows come back without waiting for their lease: on SQLite by its pid
(one machine owns the file), on PostgreSQL by a session advisory lock each sending
process holds while it runs, which the server drops when the process or its connection
dies. A sender that hangs keeps its lock, and the lease covers it.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, and_, bindparam, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement

from alerts.store.database import create_db_engine
from alerts.store.ids import chunks
from alerts.store.schema import counters, digests, latency_buckets, outbox, subscribers
from alerts.types import MailPriority, OutboxItem, SubscriberStatus

log = logging.getLogger(__name__)

#: First key of the senders' advisory locks (the two-key form, so that it can never be the
#: scheduler's one-key lock in alerts.locking).
SENDER_LOCKS = 0x61_6C_72_74


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
    #: When what it carries arrived (for the latency recorded when it is sent).
    arrived_at: datetime | None = None


@dataclass
class Outcomes:
    """What happened to claimed rows since the last flush; written in one transaction."""

    sent: list[int] = field(default_factory=list)
    #: When the relay accepted each sent row (default: the time of the flush), and when
    #: what it carries arrived (to record the latency).
    accepted: dict[int, datetime] = field(default_factory=dict)
    arrived: dict[int, datetime] = field(default_factory=dict)
    deferred: list[tuple[Claimed, str]] = field(default_factory=list)
    bounced: list[tuple[Claimed, str]] = field(default_factory=list)
    failed: list[tuple[Claimed, str]] = field(default_factory=list)
    #: Deferred for the relay's sake (down, closing sessions): pending again after the
    #: relay's backoff, with no attempt counted, so an outage never fails mail for good.
    relay_deferred: list[tuple[Claimed, str]] = field(default_factory=list)
    #: When each deferred and relay-deferred row is due again (by outbox id): the
    #: sender's retry policy decides, not the store (a row it gives up on is ``failed``).
    retry_at: dict[int, datetime] = field(default_factory=dict)

    def __len__(self) -> int:
        return (
            len(self.sent)
            + len(self.deferred)
            + len(self.bounced)
            + len(self.failed)
            + len(self.relay_deferred)
        )


@dataclass(frozen=True)
class Recorded:
    """What a flush wrote: counts per outcome, and the subscribers whose bounces these were."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced_subscribers: tuple[int, ...] = ()


def sender_name() -> str:
    """A new name for one run of a sending process: host, pid and a nonce (pids are
    reused, and one process may run several senders at once)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{random.getrandbits(32):08x}"


def worker_name(sender: str, index: int) -> str:
    """``host:pid:nonce:index``: unique per worker, and says which sender holds a row."""
    return f"{sender}:{index}"


def holder_sender(holder: str) -> str | None:
    """The ``host:pid:nonce`` part of a worker name (None for a name of another form)."""
    parts = holder.split(":")
    return ":".join(parts[:3]) if len(parts) == 4 and parts[1].isdigit() else None


def sender_lock_key(sender: str) -> int:
    """The second key of a sender's advisory lock (a signed 32-bit int)."""
    return int.from_bytes(
        hashlib.blake2b(sender.encode(), digest_size=4).digest(), "big", signed=True
    )


_writers: dict[str, threading.Lock] = {}
_writers_guard = threading.Lock()


def sqlite_writer(engine: Engine) -> threading.Lock:
    """One lock per SQLite database in this process, taken around each write transaction
    of the outbox: the workers take turns here rather than in SQLite's busy handler,
    which sleeps 1, 2, 5, 10 ms... between tries (other processes still meet that)."""
    with _writers_guard:
        return _writers.setdefault(str(engine.url.database), threading.Lock())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes. On SQLite it takes the write lock up front (``BEGIN
    IMMEDIATE``), so two claimers queue on the busy timeout instead of both reading the
    same due rows and one failing on upgrade."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        # WAL with synchronous=NORMAL: a commit survives a crash of this process (all
        # the outbox promises) but is not fsynced each time; after a power cut the
        # last marks may be lost, and those messages go again with their Message-ID.
        # Restored afterwards: the connection goes back to the pool for other stages.
        previous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        try:
            with sqlite_writer(engine):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
        finally:
            conn.exec_driver_sql(f"PRAGMA synchronous={previous}")


#: Sent messages counted into the totals and the histogram at a time (see SentMarks.mark).
COUNT_EVERY = 200
COUNT_SECONDS = 1.0


class SentMarks:
    """Marks accepted messages sent one at a time, each in a commit of its own, on a
    connection of its own (one per worker), as soon as the relay said 250.

    The commit does not wait for the disk: it survives the process dying, which is what
    bounds the repeats after kill -9 to the one message per connection in flight
    (measured in benchmarks/fanout.py --durability against batching the marks)."""

    def __init__(self, engine: Engine, monotonic: Callable[[], float]):
        self.sqlite = engine.dialect.name == "sqlite"
        self._monotonic = monotonic
        self._writer = sqlite_writer(engine)
        self.conn = engine.connect()
        if self.sqlite:
            self._previous = int(self.conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
            self.conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        else:
            self.conn.exec_driver_sql("SET synchronous_commit TO off")
        self.conn.commit()
        self._uncounted: dict[int, object] = {}
        self._counted_at = monotonic()

    def mark(self, outbox_id: int, now: datetime, arrived: datetime | None = None) -> None:
        """Record that the relay accepted this row's message at ``now`` (and the latency
        from ``arrived``, when its content's arrival is known). It was accepted, so the
        row is sent whoever holds it now (a worker that lost its lease included).

        Only the row is written per message. The delivery totals and the latency
        histogram are counted in batches (:data:`COUNT_EVERY` messages or
        :data:`COUNT_SECONDS`, and at :meth:`close`): an upsert of each per message
        halved the fan-out rate (benchmarks/fanout.py). After kill -9 the totals may miss
        the last batch; the rows themselves never do."""
        values = {"row_id": outbox_id, "accepted": now, "latency": _latency_ms(now, arrived)}
        self._write(lambda conn: conn.execute(MARK_SENT, values))
        self._uncounted[outbox_id] = values["latency"]
        if (
            len(self._uncounted) >= COUNT_EVERY
            or self._monotonic() - self._counted_at >= COUNT_SECONDS
        ):
            self.flush_counts()

    def flush_counts(self) -> None:
        """Add the messages marked since the last flush to the totals and the histogram."""
        latencies, self._uncounted = self._uncounted, {}
        self._counted_at = self._monotonic()
        if latencies:

            def count(conn: Connection) -> None:
                _count(conn, sent=len(latencies))
                _count_latencies(conn, latencies)

            self._write(count)

    def _write(self, work: Callable[[Connection], object]) -> None:
        """One commit of ``work`` on this connection (SQLite: taking turns with the other
        writers of this database)."""
        if not self.sqlite:
            with self.conn.begin():
                work(self.conn)
            return
        with self._writer:
            try:
                self.conn.exec_driver_sql("BEGIN IMMEDIATE")
                work(self.conn)
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise

    def close(self) -> None:
        try:
            self.flush_counts()
            if self.sqlite:
                self.conn.exec_driver_sql(f"PRAGMA synchronous={self._previous}")
            else:
                self.conn.exec_driver_sql("RESET synchronous_commit")
            self.conn.commit()
        finally:
            self.conn.close()


class Outbox:
    """The outbox table's queue operations (``store.outbox``). Thread-safe: each call
    uses its own connection. How long a claim holds (``lease``) and whether only
    transactional mail is claimed are the caller's (:mod:`alerts.delivery.queue`)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._held: Engine | None = None
        self._lock = threading.Lock()

    def claim(
        self,
        worker: str,
        limit: int,
        now: datetime,
        *,
        lease: timedelta,
        transactional_only: bool = False,
    ) -> tuple[list[Claimed], int]:
        """Take up to ``limit`` due rows (pending and due, or held under an expired lease),
        each held for ``lease``; ``transactional_only``: confirmations and other
        transactional mail only, never digests or alerts.

        Rows of subscribers who unsubscribed or were suppressed since they were queued
        are marked ``suppressed`` on the way and not returned; their number comes second.
        """
        with write_transaction(self.engine) as conn:
            return self._claim(conn, worker, limit, now, lease, transactional_only)

    def record_and_claim(
        self,
        worker: str,
        outcomes: Outcomes,
        limit: int,
        now: datetime,
        *,
        lease: timedelta,
        transactional_only: bool = False,
    ) -> tuple[Recorded, list[Claimed], int]:
        """:meth:`record` a finished batch and :meth:`claim` the next in one transaction
        (one commit, one turn of the SQLite write lock, per batch)."""
        with write_transaction(self.engine) as conn:
            recorded = self._record(conn, worker, outcomes, now)
            return (recorded, *self._claim(conn, worker, limit, now, lease, transactional_only))

    def _claim(
        self,
        conn: Connection,
        worker: str,
        limit: int,
        now: datetime,
        lease: timedelta,
        transactional_only: bool,
    ) -> tuple[list[Claimed], int]:
        rows = self._due_rows(conn, limit, now, transactional_only)
        if not rows:
            return [], 0
        left = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED)
        gone = [r.id for r in rows if r.status in left]
        held = [r for r in rows if r.status not in left]
        _mark_left(conn, gone)
        self._hold(conn, worker, [r.id for r in held], now + lease)
        return [_claimed(r) for r in held], len(gone)

    def _due_rows(
        self, conn: Connection, limit: int, now: datetime, transactional_only: bool
    ) -> list[Row[*tuple[Any, ...]]]:
        """Up to ``limit`` rows to claim, locked: those under an expired lease first, then
        the pending ones that are due, each in queue order."""
        columns = (
            outbox.c.id,
            outbox.c.subscriber_id,
            outbox.c.digest_id,
            outbox.c.message_id,
            outbox.c.attempts,
            outbox.c.arrived_at,
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
            .order_by(outbox.c.priority, outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=outbox)
        )
        due = (
            select(*columns)
            .select_from(source)
            .where(outbox.c.status == OutboxStatus.PENDING, outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.priority, outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=outbox)
        )
        if transactional_only:
            expired, due = expired.where(self._transactional()), due.where(self._transactional())
        rows = list(conn.execute(expired))
        if len(rows) < limit:
            rows += conn.execute(due.limit(limit - len(rows))).all()
        return rows

    def _hold(self, conn: Connection, worker: str, ids: list[int], until: datetime) -> None:
        for chunk in chunks(ids):
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(chunk))
                .values(status=OutboxStatus.SENDING, claimed_by=worker, claimed_until=until)
            )

    def renew(
        self, worker: str, ids: Sequence[int], now: datetime, *, lease: timedelta
    ) -> set[int]:
        """Hold the rows this worker still holds for ``lease`` from ``now``; returns their ids."""
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
                        .values(claimed_until=now + lease)
                        .returning(outbox.c.id)
                    ).scalars()
                )
        return held

    def record(self, worker: str, outcomes: Outcomes, now: datetime) -> Recorded:
        """Write a batch of outcomes in one transaction.

        ``sent`` rows were accepted by the relay, so they are marked sent whoever holds
        them now. The other outcomes apply only to rows this worker still holds: if its
        lease ran out and another worker sent the row meanwhile, that result stands.
        Deferred rows are due again at ``outcomes.retry_at``.
        """
        with write_transaction(self.engine) as conn:
            return self._record(conn, worker, outcomes, now)

    def _record(self, conn: Connection, worker: str, outcomes: Outcomes, now: datetime) -> Recorded:
        deferred = failed = 0
        bounced: list[int] = []
        if outcomes.sent:
            sent_rows = [_sent_row(row_id, outcomes, now) for row_id in outcomes.sent]
            conn.execute(MARK_SENT, sent_rows)
            _count_latencies(
                conn,
                {
                    row_id: row["latency"]
                    for row_id, row in zip(outcomes.sent, sent_rows, strict=True)
                },
            )
        changes = []
        for claimed, error in outcomes.relay_deferred:
            # No attempt counted: the relay's trouble, not the message's.
            deferred += 1
            changes.append(
                (claimed, OutboxStatus.PENDING, outcomes.retry_at[claimed.item.outbox_id], error, 0)
            )
        for claimed, error in outcomes.deferred:
            deferred += 1
            changes.append(
                (claimed, OutboxStatus.PENDING, outcomes.retry_at[claimed.item.outbox_id], error, 1)
            )
        for claimed, error in outcomes.failed:
            failed += 1
            changes.append((claimed, OutboxStatus.FAILED, now, error, 1))
        for claimed, error in outcomes.bounced:
            bounced.append(claimed.item.subscriber_id)
            changes.append((claimed, OutboxStatus.BOUNCED, now, error, 1))
        _count(
            conn, sent=len(outcomes.sent), deferred=deferred, failed=failed, bounced=len(bounced)
        )
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
                    attempts=outbox.c.attempts + bindparam("counted"),
                    claimed_by=None,
                    claimed_until=None,
                ),
                [
                    {
                        "row_id": c.item.outbox_id,
                        "new_status": s,
                        "due": d,
                        "error": e[:2000],
                        "counted": n,
                    }
                    for c, s, d, e, n in changes
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
                .where(
                    outbox.c.subscriber_id == subscriber_id, outbox.c.status == OutboxStatus.PENDING
                )
                .values(
                    status=OutboxStatus.SUPPRESSED,
                    last_error="address suppressed after hard bounces",
                )
            ).rowcount

    def sent_marks(self, monotonic: Callable[[], float]) -> SentMarks:
        """A worker's own connection for marking its messages sent one by one;
        ``monotonic`` (the run's clock) paces how often totals are counted."""
        return SentMarks(self._held_engine(), monotonic)

    def _held_engine(self) -> Engine:
        """An engine without a pool for the connections a run holds from start to end (a
        sender's lock, each worker's marks), so that they never starve the pool that
        claims, builds and the other stages share, whatever the number of workers."""
        with self._lock:
            if self._held is None:
                if self.sqlite and self.engine.url.database in (None, "", ":memory:"):
                    self._held = self.engine  # one in-memory database: only this engine sees it
                else:
                    url = self.engine.url.render_as_string(hide_password=False)
                    self._held = create_db_engine(url, poolclass=NullPool)
            return self._held

    def close(self) -> None:
        """Close the connections of :meth:`_held_engine` (``Store.close``)."""
        with self._lock:
            if self._held is not None and self._held is not self.engine:
                self._held.dispose()
            self._held = None

    @contextmanager
    def alive(self, sender: str) -> Iterator[None]:
        """Hold the lock that says ``sender`` runs while it sends (PostgreSQL; nothing on
        SQLite, where the pid says whether a holder lives). Taken before any claim."""
        if self.sqlite:
            yield
            return
        params = {"ns": SENDER_LOCKS, "key": sender_lock_key(sender)}
        with self._held_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # A 32-bit key of a random name: taken unless another sender's name hashed the
            # same (then its rows and ours are left to their leases, as before).
            held = conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar_one()
            if not held:
                log.warning(
                    "sender lock %s is held by another sender; dead senders' rows wait for their lease",
                    params,
                )
            yield

    def reclaim_orphans(self) -> int:
        """Free rows held by senders that died, so that they need not wait for their
        leases. SQLite: holders on this machine whose pid is gone (a database file belongs
        to one machine). PostgreSQL: holders whose sender lock is free, which the server
        guarantees once their process or connection is gone, wherever they ran."""
        with self.engine.connect() as conn:
            holders = (
                conn.execute(
                    select(outbox.c.claimed_by)
                    .where(outbox.c.status == OutboxStatus.SENDING)
                    .distinct()
                )
                .scalars()
                .all()
            )
        if self.sqlite:
            host = socket.gethostname()[:60]
            dead = [h for h in holders if h and _dead_here(h, host)]
        else:
            dead = self._unlocked(h for h in holders if h)
        if not dead:
            return 0
        with write_transaction(self.engine) as conn:
            return sum(
                conn.execute(
                    update(outbox)
                    .where(outbox.c.status == OutboxStatus.SENDING, outbox.c.claimed_by.in_(chunk))
                    .values(status=OutboxStatus.PENDING, claimed_by=None, claimed_until=None)
                ).rowcount
                for chunk in chunks(dead)
            )

    def _unlocked(self, holders: Iterable[str]) -> list[str]:
        """The holders whose sender's lock nobody holds (PostgreSQL)."""
        by_sender: dict[str, list[str]] = {}
        for holder in holders:
            sender = holder_sender(holder)
            if sender is not None:
                by_sender.setdefault(sender, []).append(holder)
        dead: list[str] = []
        if not by_sender:
            return dead
        # A connection of its own: a session takes its own advisory locks again at will.
        with self._held_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for sender, names in by_sender.items():
                params = {"ns": SENDER_LOCKS, "key": sender_lock_key(sender)}
                if conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"), params
                ).scalar_one():
                    conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
                    dead.extend(names)
        return dead

    def next_due(self, *, transactional_only: bool = False) -> datetime | None:
        """When the next message a claim (of only transactional mail) would take falls
        due: the earliest retry of a pending row, or the end of the earliest lease of a
        claimed one (None when nothing waits)."""
        pending = select(func.min(outbox.c.next_attempt_at)).where(
            outbox.c.status == OutboxStatus.PENDING
        )
        leased = select(func.min(outbox.c.claimed_until)).where(
            outbox.c.status == OutboxStatus.SENDING
        )
        if transactional_only:
            pending, leased = (
                pending.where(self._transactional()),
                leased.where(self._transactional()),
            )
        with self.engine.connect() as conn:
            times = [conn.execute(pending).scalar_one(), conn.execute(leased).scalar_one()]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    def _transactional(self) -> ColumnElement[bool]:
        return outbox.c.priority == MailPriority.TRANSACTIONAL

    def due(self, now: datetime) -> int:
        """How many rows are due now (pending and due, or under an expired lease)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(
                        (
                            and_(
                                outbox.c.status == OutboxStatus.PENDING,
                                outbox.c.next_attempt_at <= now,
                            )
                        )
                        | (
                            and_(
                                outbox.c.status == OutboxStatus.SENDING,
                                outbox.c.claimed_until < now,
                            )
                        )
                    )
                ).scalar_one()
            )


#: One row accepted by the relay (``row_id``, ``accepted``, ``latency``): marked sent by
#: SentMarks one at a time and by Outbox._record in batches, with the same statement.
MARK_SENT = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        status=OutboxStatus.SENT,
        sent_at=bindparam("accepted"),
        latency_ms=bindparam("latency"),
        attempts=outbox.c.attempts + 1,
        last_error=None,
        claimed_by=None,
        claimed_until=None,
    )
)


def _sent_row(row_id: int, outcomes: Outcomes, now: datetime) -> dict[str, object]:
    accepted = outcomes.accepted.get(row_id, now)
    return {
        "row_id": row_id,
        "accepted": accepted,
        "latency": _latency_ms(accepted, outcomes.arrived.get(row_id)),
    }


def _latency_ms(accepted: datetime, arrived: datetime | None) -> int | None:
    """From the content's arrival to the relay's acceptance, in milliseconds."""
    return None if arrived is None else max(0, round((accepted - arrived).total_seconds() * 1000))


#: The delivery totals kept in ``counters`` (see :meth:`alerts.store.monitoring.Metrics.delivery_totals`).
TOTALS = ("sent", "deferred", "bounced", "failed")


def _count(conn: Connection, **amounts: int) -> None:
    """Add to the delivery totals, in the transaction that records the outcomes."""
    for name, amount in amounts.items():
        if not amount:
            continue
        key = f"delivery_{name}"
        changed = conn.execute(
            update(counters).where(counters.c.name == key).values(value=counters.c.value + amount)
        ).rowcount
        if changed:
            continue
        # The migration made the rows; a database made otherwise gets them here. Two
        # senders may both try: the one whose insert fails adds to the other's row.
        try:
            with conn.begin_nested():
                conn.execute(insert(counters).values(name=key, value=amount))
        except IntegrityError:
            conn.execute(
                update(counters)
                .where(counters.c.name == key)
                .values(value=counters.c.value + amount)
            )


#: Latency histogram buckets, in seconds: an urgent alert should be in the first few;
#: daily and weekly digests land in the last ones by design.
LATENCY_BUCKETS = (
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    6 * 3600.0,
    86400.0,
    7 * 86400.0,
)
#: The bound stored for the bucket above the last one (``+Inf``).
OVERFLOW_MS = 2**62
_BOUNDS_MS = tuple(round(bound * 1000) for bound in LATENCY_BUCKETS)


def latency_bucket_ms(latency_ms: int) -> int:
    """The bound of the ``latency_buckets`` row a latency is counted in."""
    return next((bound for bound in _BOUNDS_MS if latency_ms <= bound), OVERFLOW_MS)


def _count_latencies(conn: Connection, latencies: dict[int, object]) -> None:
    """Add the latencies of these sent rows (by outbox id; None: arrival unknown) to the
    histogram (batched: see SentMarks.mark): one read of their kinds and one
    write per bucket touched."""
    known = {row_id: ms for row_id, ms in latencies.items() if isinstance(ms, int)}
    if not known:
        return
    kinds = dict(
        conn.execute(
            select(outbox.c.id, digests.c.kind)
            .select_from(outbox.join(digests, digests.c.id == outbox.c.digest_id))
            .where(outbox.c.id.in_(list(known)))
        ).all()
    )
    added: dict[tuple[str, int], list[int]] = {}
    for row_id, ms in known.items():
        kind = kinds.get(row_id)
        if kind is not None:
            found = added.setdefault((str(kind), latency_bucket_ms(ms)), [0, 0])
            found[0] += 1
            found[1] += ms
    for (kind, bound), (count, sum_ms) in sorted(added.items()):
        where = (latency_buckets.c.kind == kind, latency_buckets.c.le_ms == bound)
        grow = {
            "count": latency_buckets.c.count + count,
            "sum_ms": latency_buckets.c.sum_ms + sum_ms,
        }
        if conn.execute(update(latency_buckets).where(*where).values(grow)).rowcount:
            continue
        # The first of its kind in this bucket; two senders may both insert: the one
        # that fails adds to the other's row (as in _count).
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(latency_buckets).values(
                        kind=kind, le_ms=bound, count=count, sum_ms=sum_ms
                    )
                )
        except IntegrityError:
            conn.execute(update(latency_buckets).where(*where).values(grow))


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
    return Claimed(item, row.attempts, row.arrived_at)
