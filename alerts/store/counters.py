"""Totals that only grow, shared by every process: the delivery outcomes in ``counters``
and the arrival-to-relay latency histogram in ``latency_buckets``. Each is added to by
an upsert (``INSERT ... ON CONFLICT DO UPDATE``, the same statement on SQLite and
PostgreSQL), in the transaction that records the outcomes."""

from __future__ import annotations

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from alerts.store.schema import counters, digests, latency_buckets, outbox

#: The delivery totals kept in ``counters`` (see :meth:`alerts.store.monitoring.Metrics.delivery_totals`).
TOTALS = ("sent", "deferred", "bounced", "failed", "unknown")

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


#: The forms whose posts are counted when the forms' work queue was full (answered 503).
BUSY_FORMS = ("subscribe", "manage")


def count_totals(conn: Connection, **amounts: int) -> None:
    """Add to the delivery totals (``sent=3, failed=1``)."""
    add_counts(conn, {f"delivery_{name}": amount for name, amount in amounts.items()})


def add_counts(conn: Connection, amounts: dict[str, int]) -> None:
    """Add to the named totals in ``counters`` (made at the first)."""
    rows = [{"name": name, "value": amount} for name, amount in sorted(amounts.items()) if amount]
    if not rows:
        return
    statement = _insert(conn, counters).values(rows)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[counters.c.name],
            set_={"value": counters.c.value + statement.excluded.value},
        )
    )


def latency_bucket_ms(latency_ms: int) -> int:
    """The bound of the ``latency_buckets`` row a latency is counted in."""
    return next((bound for bound in _BOUNDS_MS if latency_ms <= bound), OVERFLOW_MS)


def count_latencies(conn: Connection, latencies: dict[int, object]) -> None:
    """Add the latencies of these sent rows (by outbox id; None: arrival unknown) to the
    histogram: one read of their kinds and one upsert."""
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
    if not added:
        return
    rows = [
        {"kind": kind, "le_ms": bound, "count": count, "sum_ms": sum_ms}
        for (kind, bound), (count, sum_ms) in sorted(added.items())
    ]
    statement = _insert(conn, latency_buckets).values(rows)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[latency_buckets.c.kind, latency_buckets.c.le_ms],
            set_={
                "count": latency_buckets.c.count + statement.excluded["count"],
                "sum_ms": latency_buckets.c.sum_ms + statement.excluded.sum_ms,
            },
        )
    )


def _insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ``on_conflict_do_update`` (both spell it alike)."""
    return sqlite.insert(table) if conn.dialect.name == "sqlite" else postgresql.insert(table)
