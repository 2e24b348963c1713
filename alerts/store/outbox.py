"""The outbox as a work queue (queueing into it is in :mod:`alerts.store.digests`): claim due
rows under a lease, record what the relay said. It runs past 500 lines because claiming
and recording share one transaction per batch; the write transaction, the counters, the
senders and the sent marks are modules of their own.

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
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, and_, bindparam, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.elements import ColumnElement

from alerts.store.counters import count_latencies, count_totals
from alerts.store.database import create_db_engine
from alerts.store.ids import among, chunks
from alerts.store.marks import MARK_SENT, SentMarks, latency_ms
from alerts.store.schema import outbox, subscribers
from alerts.store.senders import SENDER_LOCKS, dead_here, holder_sender, sender_lock_key
from alerts.store.writes import write_transaction
from alerts.subscribers.lifecycle import may_mail
from alerts.types import MailPriority, OutboxItem

log = logging.getLogger(__name__)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    BOUNCED = "bounced"  # the relay refused the recipient (5xx)
    FAILED = "failed"  # given up: too many attempts, or refused for good
    SUPPRESSED = "suppressed"  # the subscriber left or was suppressed before it went
    UNKNOWN = "unknown"  # the body went out, no final reply came, its tries used up


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds: the item to build and send, and the attempts before this one."""

    item: OutboxItem
    attempts: int
    #: When what it carries arrived (for the latency recorded when it is sent).
    arrived_at: datetime | None = None
    #: Bodies sent before without a final reply.
    unanswered: int = 0


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
    #: When the relay's pause ends, if it asked to wait: the relay-deferred rows are
    #: due then (otherwise when the sender's retry policy says).
    relay_until: datetime | None = None
    #: The body went out without a final reply: pending again at the time given, no
    #: attempt counted, the unanswered count up by one.
    unanswered: list[tuple[Claimed, str, datetime]] = field(default_factory=list)
    #: The same, with its tries used up: neither sent nor failed, never sent again.
    unknown: list[tuple[Claimed, str]] = field(default_factory=list)
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
            + len(self.unanswered)
            + len(self.unknown)
        )


@dataclass(frozen=True)
class Recorded:
    """What a flush wrote: counts per outcome, and the subscribers whose bounces these were."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced_subscribers: tuple[int, ...] = ()
    unknown: int = 0


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
        up_to: MailPriority | None = None,
    ) -> tuple[list[Claimed], int]:
        """Take up to ``limit`` due rows (pending and due, or held under an expired lease),
        each held for ``lease``; ``transactional_only``: confirmations and other
        transactional mail only, never digests or alerts; ``up_to``: mail of this
        priority or a more urgent one only (``ALERT``: no digests).

        Rows of subscribers who unsubscribed or were suppressed since they were queued
        are marked ``suppressed`` on the way and not returned; their number comes second.
        """
        with write_transaction(self.engine) as conn:
            return self._claim(conn, worker, limit, now, lease, _ceiling(transactional_only, up_to))

    def record_and_claim(
        self,
        worker: str,
        outcomes: Outcomes,
        limit: int,
        now: datetime,
        *,
        lease: timedelta,
        transactional_only: bool = False,
        up_to: MailPriority | None = None,
    ) -> tuple[Recorded, list[Claimed], int]:
        """:meth:`record` a finished batch and :meth:`claim` the next in one transaction
        (one commit, one turn of the SQLite write lock, per batch)."""
        with write_transaction(self.engine) as conn:
            recorded = self._record(conn, worker, outcomes, now)
            ceiling = _ceiling(transactional_only, up_to)
            return (recorded, *self._claim(conn, worker, limit, now, lease, ceiling))

    def _claim(
        self,
        conn: Connection,
        worker: str,
        limit: int,
        now: datetime,
        lease: timedelta,
        up_to: MailPriority | None,
    ) -> tuple[list[Claimed], int]:
        rows = self._due_rows(conn, limit, now, up_to)
        if not rows:
            return [], 0
        # Who may be mailed is the lifecycle's rule: the confirmation an unsubscribed
        # person asked for after leaving goes; nothing else to anyone who left.
        allowed = [r for r in rows if may_mail(
            r.status, transactional=r.priority == MailPriority.TRANSACTIONAL, queued_at=r.created_at,
            left_at=r.status_changed_at,
        )]  # fmt: skip
        held_ids = {r.id for r in allowed}
        gone = [r.id for r in rows if r.id not in held_ids]
        held = allowed
        _mark_left(conn, gone)
        self._hold(conn, worker, [r.id for r in held], now + lease)
        return [_claimed(r) for r in held], len(gone)

    def _due_rows(
        self, conn: Connection, limit: int, now: datetime, up_to: MailPriority | None
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
            outbox.c.unanswered,
            outbox.c.priority,
            outbox.c.created_at,
            subscribers.c.email,
            subscribers.c.name,
            subscribers.c.status,
            subscribers.c.status_changed_at,
            subscribers.c.link_key,
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
        if up_to is not None:
            expired, due = expired.where(_up_to(up_to)), due.where(_up_to(up_to))
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # Only the due index's own order, never a sort: the outbox's statistics lag
            # a large queueing (ANALYZE saw few pending rows), and PostgreSQL then joined
            # and sorted every pending row for each claim of 200 (auto_explain: 330 ms
            # at 9,600 pending, a second at 100,000, several hundred times per send).
            conn.exec_driver_sql("SET LOCAL enable_sort = off")
        try:
            rows = list(conn.execute(expired))
            if len(rows) < limit:
                rows += conn.execute(due.limit(limit - len(rows))).all()
        finally:
            if postgres:
                conn.exec_driver_sql("SET LOCAL enable_sort = on")
        return rows

    def _hold(self, conn: Connection, worker: str, ids: list[int], until: datetime) -> None:
        for chunk in chunks(ids):
            conn.execute(
                update(outbox)
                .where(among(outbox.c.id, chunk, conn))
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
            count_latencies(
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
        answerless = [
            (claimed, OutboxStatus.PENDING, due, error)
            for claimed, error, due in outcomes.unanswered
        ]
        answerless += [
            (claimed, OutboxStatus.UNKNOWN, now, error) for claimed, error in outcomes.unknown
        ]
        deferred += len(outcomes.unanswered)
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
        count_totals(
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
        if answerless:
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
                    unanswered=outbox.c.unanswered + 1,
                    claimed_by=None,
                    claimed_until=None,
                ),
                [
                    {"row_id": c.item.outbox_id, "new_status": s, "due": d, "error": e[:2000]}
                    for c, s, d, e in answerless
                ],
            )
        count_totals(conn, unknown=len(outcomes.unknown))
        return Recorded(len(outcomes.sent), deferred, failed, tuple(bounced), len(outcomes.unknown))

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

    def held_engine(self) -> Engine:
        """The engine of :meth:`_held_engine`, for ``store.senders``' locks."""
        return self._held_engine()

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
            dead = [h for h in holders if h and dead_here(h, host)]
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

    def next_due(
        self, *, transactional_only: bool = False, up_to: MailPriority | None = None
    ) -> datetime | None:
        """When the next message a claim (of only transactional mail, or ``up_to`` a
        priority) would take falls due: the earliest retry of a pending row, or the end
        of the earliest lease of a claimed one (None when nothing waits)."""
        ceiling = _ceiling(transactional_only, up_to)
        pending = select(func.min(outbox.c.next_attempt_at)).where(
            outbox.c.status == OutboxStatus.PENDING
        )
        leased = select(func.min(outbox.c.claimed_until)).where(
            outbox.c.status == OutboxStatus.SENDING
        )
        if ceiling is not None:
            pending, leased = pending.where(_up_to(ceiling)), leased.where(_up_to(ceiling))
        with self.engine.connect() as conn:
            times = [conn.execute(pending).scalar_one(), conn.execute(leased).scalar_one()]
        found = [t for t in times if t is not None]
        return min(found) if found else None

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


def _sent_row(row_id: int, outcomes: Outcomes, now: datetime) -> dict[str, object]:
    accepted = outcomes.accepted.get(row_id, now)
    return {
        "row_id": row_id,
        "accepted": accepted,
        "latency": latency_ms(accepted, outcomes.arrived.get(row_id)),
    }


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
        link_key=row.link_key,
    )
    return Claimed(item, row.attempts, row.arrived_at, row.unanswered)


def _ceiling(transactional_only: bool, up_to: MailPriority | None) -> MailPriority | None:
    return MailPriority.TRANSACTIONAL if transactional_only else up_to


def _up_to(priority: MailPriority) -> ColumnElement[bool]:
    """Mail of ``priority`` or a more urgent one (a lower number)."""
    return outbox.c.priority <= int(priority)
