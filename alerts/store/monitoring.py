"""What an operator on call watches, read from the database (so every web and sender
process reports the same): the outbox by status and priority, the oldest message
waiting, the last feed build, and the latency from an advisory's arrival to the relay's
acceptance; with the heartbeat (:mod:`~alerts.store.runs`), the delivery totals
(counted by :mod:`~alerts.store.outbox`) and each source's health (:mod:`~alerts.store.sources`),
what :meth:`Metrics.operations` gathers for ``alerts status``. :mod:`alerts.metrics` turns the
same into Prometheus text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from alerts.store.counters import BUSY_FORMS, LATENCY_BUCKETS, TOTALS, add_counts
from alerts.store.runs import FEEDS_BUILT, HEARTBEAT_FRESH, Runs
from alerts.store.schema import counters, digests, latency_buckets, outbox, runs
from alerts.store.sources import Sources

WAITING = ("pending", "sending")


@dataclass(frozen=True)
class Latency:
    """Arrival-to-relay latencies of one kind of message (``urgent``, ``immediate``,
    ``daily``, ``weekly``, ``confirm``...): cumulative bucket counts, count and sum."""

    kind: str
    buckets: tuple[tuple[float, int], ...]
    count: int
    total_seconds: float


#: The kinds of message whose latency 'alerts status' shows, together.
LATENCY_GROUPS = {
    "urgent and immediate alerts": ("urgent", "immediate"),
    "confirmations": ("confirm",),
    "daily and weekly digests": ("daily", "weekly"),
}


class Metrics:
    """What operators watch (``store.metrics``): outbox depth, latency, delivery totals."""

    def __init__(self, engine: Engine, runs: Runs, sources: Sources) -> None:
        self.engine = engine
        self.runs = runs
        self.sources = sources

    def outbox_counts(self) -> dict[tuple[str, int], int]:
        """Rows by (status, priority)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.status, outbox.c.priority, func.count()).group_by(
                    outbox.c.status, outbox.c.priority
                )
            ).all()
        return {(status, int(priority)): int(count) for status, priority, count in rows}

    def oldest_waiting(self) -> datetime | None:
        """When the oldest message still waiting (pending or being sent) was queued."""
        with self.engine.connect() as conn:
            oldest: datetime | None = conn.execute(
                select(func.min(outbox.c.created_at)).where(outbox.c.status.in_(WAITING))
            ).scalar_one()
        return oldest

    def last_feed_build(self) -> tuple[datetime, float] | None:
        """When the feeds were last built, and how many seconds it took."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(runs.c.started_at, runs.c.finished_at)
                .where(runs.c.kind == FEEDS_BUILT)
                .order_by(runs.c.started_at.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        started, finished = row
        return started, max(((finished or started) - started).total_seconds(), 0.0)

    def latencies(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> list[Latency]:
        """Arrival-to-relay latency of every message sent since the database was made, by
        kind: the counts kept in ``latency_buckets`` as messages are sent, so purging sent
        rows never lowers them (Prometheus would read a drop as a counter reset)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    latency_buckets.c.kind,
                    latency_buckets.c.le_ms,
                    latency_buckets.c.count,
                    latency_buckets.c.sum_ms,
                )
            ).all()
        by_kind: dict[str, list[tuple[int, int, int]]] = {}
        for kind, le_ms, count, sum_ms in rows:
            by_kind.setdefault(kind, []).append((int(le_ms), int(count), int(sum_ms)))
        found = []
        for kind in sorted(by_kind):
            counted = by_kind[kind]
            found.append(
                Latency(
                    kind=kind,
                    buckets=tuple(
                        (
                            bound,
                            sum(
                                count for le_ms, count, _ in counted if le_ms <= round(bound * 1000)
                            ),
                        )
                        for bound in buckets
                    ),
                    count=sum(count for _, count, _ in counted),
                    total_seconds=sum(sum_ms for _, _, sum_ms in counted) / 1000,
                )
            )
        return found

    def latency_percentiles(
        self, percents: Sequence[int] = (50, 90, 99), kinds: Sequence[str] | None = None
    ) -> tuple[int, dict[int, float]]:
        """How many sent messages have a latency, and its percentiles in seconds (nearest
        rank), over the messages the outbox keeps; ``kinds`` limits it to those kinds.

        Exact and recent (the last ``retention.sent_days``), which is what an operator on
        call asks; the ever-growing buckets (:meth:`latencies`) could only interpolate."""
        source = outbox.join(digests, digests.c.id == outbox.c.digest_id)
        where = [outbox.c.status == "sent", outbox.c.latency_ms.is_not(None)]
        if kinds is not None:
            where.append(digests.c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            count = int(
                conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one()
            )
            found: dict[int, float] = {}
            if not count:
                return 0, found
            for percent in percents:
                rank = max(1, -(-percent * count // 100))  # ceil: the nearest-rank percentile
                value = conn.execute(
                    select(outbox.c.latency_ms)
                    .select_from(source)
                    .where(*where)
                    .order_by(outbox.c.latency_ms)
                    .offset(rank - 1)
                    .limit(1)
                ).scalar_one()
                found[percent] = int(value) / 1000
        return count, found

    def operations(self, now: datetime) -> dict[str, Any]:
        """For ``alerts status``: is ``alerts serve`` alive, the delivery totals, latency
        percentiles by group of kinds, and each source's health."""
        beat = self.runs.last_beat()
        return {
            "heartbeat": None
            if beat is None
            else {
                "at": beat[0],
                "age_seconds": (now - beat[0]).total_seconds(),
                "fresh": now - beat[0] <= HEARTBEAT_FRESH,
                "host": beat[1].get("host"),
                "pid": beat[1].get("pid"),
            },
            "totals": self.delivery_totals(),
            "latency": {
                group: dict(
                    zip(
                        ("count", "percentiles"), self.latency_percentiles(kinds=kinds), strict=True
                    )
                )
                for group, kinds in LATENCY_GROUPS.items()
            },
            "sources": [asdict(health) for health in self.sources.healths()],
        }

    def count_form_busy(self, form: str) -> None:
        """Count one post of ``form`` (one of :data:`BUSY_FORMS`) answered 503 because the
        forms' work queue was full (alerts.web.form_work)."""
        with self.engine.begin() as conn:
            add_counts(conn, {f"form_busy_{form}": 1})

    def form_busy(self) -> dict[str, int]:
        """Posts of each form answered 503 busy since the database was made."""
        names = {f"form_busy_{form}": form for form in BUSY_FORMS}
        with self.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    select(counters.c.name, counters.c.value).where(counters.c.name.in_(names))
                ).all()
            )
        return {form: int(rows.get(name, 0)) for name, form in names.items()}

    def delivery_totals(self) -> dict[str, int]:
        """Messages sent, deferred, bounced and failed since the database was made."""
        with self.engine.connect() as conn:
            rows = dict(
                conn.execute(
                    select(counters.c.name, counters.c.value).where(
                        counters.c.name.in_([f"delivery_{name}" for name in TOTALS])
                    )
                ).all()
            )
        return {name: int(rows.get(f"delivery_{name}", 0)) for name in TOTALS}
