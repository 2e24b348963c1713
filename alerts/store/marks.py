"""Sent marks: each message the relay accepted is marked sent at once, in a commit of
its own, on the worker's own connection, before the connection carries the next one (so
a sender killed at any instant repeats at most one message per connection); the totals
and the latency histogram follow in batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, update
from sqlalchemy.engine import Connection

from alerts.store.counters import count_latencies, count_totals
from alerts.store.schema import outbox
from alerts.store.writes import immediate, sqlite_writer

#: One row accepted by the relay (``row_id``, ``accepted``, ``latency``): marked sent by
#: SentMarks one at a time and by Outbox._record in batches, with the same statement.
MARK_SENT = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        status="sent",  # OutboxStatus.SENT (alerts.store.outbox imports this module)
        sent_at=bindparam("accepted"),
        latency_ms=bindparam("latency"),
        attempts=outbox.c.attempts + 1,
        last_error=None,
        claimed_by=None,
        claimed_until=None,
    )
)


def latency_ms(accepted: datetime, arrived: datetime | None) -> int | None:
    """From the content's arrival to the relay's acceptance, in milliseconds."""
    return None if arrived is None else max(0, round((accepted - arrived).total_seconds() * 1000))


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
        if not self.sqlite:
            # Each mark is one statement: in autocommit it is its own commit in one round
            # trip (BEGIN, UPDATE, COMMIT were three; profiled with py-spy under
            # benchmarks/latency.py, the marks were a third of each sender's time).
            self.conn = self.conn.execution_options(isolation_level="AUTOCOMMIT")
        #: Where the batched totals are written: this connection on SQLite; on PostgreSQL
        #: a second one held for the run (a new connection per batch cost more than the
        #: marks themselves: py-spy again).
        self._counts = self.conn if self.sqlite else engine.connect()
        if self.sqlite:
            self._previous = int(self.conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
            self.conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        else:
            self.conn.exec_driver_sql("SET synchronous_commit TO off")
            self._counts.exec_driver_sql("SET synchronous_commit TO off")
            self._counts.commit()
        self.conn.commit()
        if not self.sqlite:
            # MARK_SENT compiled once and run by the driver itself (prepared on the server
            # after a few runs): SQLAlchemy's work per execute was most of a mark's CPU.
            compiled = MARK_SENT.compile(dialect=engine.dialect)
            self._statement, self._defaults = compiled.string, dict(compiled.params)
            self._cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
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
        values: dict[str, Any] = {
            "row_id": outbox_id,
            "accepted": now,
            "latency": latency_ms(now, arrived),
        }
        if self.sqlite:
            self._write(lambda conn: conn.execute(MARK_SENT, values))
        else:
            self._mark_pg(values)
        self._uncounted[outbox_id] = values["latency"]
        if (
            len(self._uncounted) >= COUNT_EVERY
            or self._monotonic() - self._counted_at >= COUNT_SECONDS
        ):
            self.flush_counts()

    def _mark_pg(self, values: dict[str, Any]) -> None:
        """One autocommitted MARK_SENT on PostgreSQL, through the driver."""
        params = {**self._defaults, **values, "accepted": values["accepted"].astimezone(UTC)}
        self._cursor.execute(self._statement, params, prepare=True)

    def flush_counts(self) -> None:
        """Add the messages marked since the last flush to the totals and the histogram."""
        latencies, self._uncounted = self._uncounted, {}
        self._counted_at = self._monotonic()
        if latencies:

            def count(conn: Connection) -> None:
                count_totals(conn, sent=len(latencies))
                count_latencies(conn, latencies)

            self._write(count)

    def _write(self, work: Callable[[Connection], object]) -> None:
        """One commit of ``work`` (SQLite: on this connection, taking turns with the
        other writers of this database; PostgreSQL: in a transaction on the counting
        connection, since this one autocommits)."""
        if not self.sqlite:
            with self._counts.begin():
                work(self._counts)
            return
        with immediate(self.conn, self._writer):
            work(self.conn)

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
            if self._counts is not self.conn:
                self._counts.close()
