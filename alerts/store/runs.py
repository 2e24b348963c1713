"""Runs: the ``runs`` table, one row per cycle, ``alerts send`` or marker.

A marker row says when something was last done (feeds built, a digest of a frequency
queued); only the latest marker of a kind is ever read. ``alerts status`` reads the
outbox counts and the last runs through :meth:`Runs.outbox_status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, RowMapping, and_, delete, func, insert, or_, select, update

from alerts.store.outbox import OutboxStatus
from alerts.store.schema import advisories, outbox, runs
from alerts.types import Frequency, RunReport

#: How long the rows of frequent runs are kept (digest rows are kept: they say what is due).
KEEP_POLLS = timedelta(days=30)
#: The kinds of ``runs`` rows that come every few minutes; only the last KEEP_POLLS are kept.
PRUNED = ("poll", "files", "run", "send", "sender", "web-sender", "review")
#: The marker of a feeds build.
FEEDS_BUILT = "feeds"
#: The one row ``alerts serve`` rewrites every few seconds while it runs.
HEARTBEAT = "heartbeat"
#: A heartbeat older than this means ``alerts serve`` is not running (or is stuck).
HEARTBEAT_FRESH = timedelta(seconds=60)
#: Every outbox status, in the order ``alerts status`` shows them.
STATUSES = tuple(OutboxStatus)


def digest_kind(frequency: Frequency) -> str:
    """The marker of a ``frequency`` digest run."""
    return f"digest-{frequency.value}"


#: Rows that only say when feeds or a digest were last done (not runs to show).
MARKERS = (FEEDS_BUILT, HEARTBEAT, *(digest_kind(f) for f in Frequency))


@dataclass(frozen=True)
class RunRecord:
    """One ``runs`` row."""

    kind: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    summary: dict[str, Any]


def _run(row: RowMapping | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {key: row[key] for key in ("kind", "started_at", "finished_at", "ok", "summary")}


class Runs:
    """The record of runs, markers and the heartbeat (``store.runs``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        kind: str,
        started: datetime,
        finished: datetime | None,
        *,
        ok: bool,
        summary: dict[str, Any],
        prune: tuple[str, ...] | None = None,
    ) -> None:
        """Insert a ``runs`` row and delete the rows of the ``prune`` kinds (default: this
        kind) older than :data:`KEEP_POLLS`, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(runs).values(
                    kind=kind, started_at=started, finished_at=finished, ok=ok, summary=summary
                )
            )
            conn.execute(
                delete(runs).where(
                    runs.c.kind.in_(prune or (kind,)), runs.c.started_at < started - KEEP_POLLS
                )
            )

    def record(self, report: RunReport) -> None:
        """One ``runs`` row per cycle; poll and ``alerts run`` rows older than :data:`KEEP_POLLS`
        are pruned (``alerts run`` from cron every few minutes would otherwise add 100,000 a year)."""
        self.add(
            report.kind,
            report.started_at,
            report.finished_at,
            ok=report.ok,
            summary=report.as_dict(),
            prune=PRUNED,
        )

    def history(self, kind: str | None = None) -> list[RunRecord]:
        """The recorded runs (of ``kind``), oldest first."""
        query = select(runs).order_by(runs.c.started_at, runs.c.id)
        if kind is not None:
            query = query.where(runs.c.kind == kind)
        with self.engine.connect() as conn:
            return [
                RunRecord(
                    row["kind"],
                    row["started_at"],
                    row["finished_at"],
                    row["ok"],
                    dict(row["summary"] or {}),
                )
                for row in conn.execute(query).mappings()
            ]

    def beat(self, now: datetime, who: dict[str, Any]) -> None:
        """``alerts serve`` is alive at ``now``: one row, rewritten (not a row per beat)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(runs)
                .where(runs.c.kind == HEARTBEAT)
                .values(started_at=now, finished_at=now, ok=True, summary=who)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(runs).values(
                        kind=HEARTBEAT, started_at=now, finished_at=now, ok=True, summary=who
                    )
                )

    def last_beat(self) -> tuple[datetime, dict[str, Any]] | None:
        """When ``alerts serve`` last said it was alive, and who it was (host, pid)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(runs.c.started_at, runs.c.summary)
                .where(runs.c.kind == HEARTBEAT)
                .order_by(runs.c.started_at.desc())
                .limit(1)
            ).first()
        return (row[0], dict(row[1] or {})) if row else None

    def mark(self, kind: str, now: datetime) -> None:
        """A marker row: when this was last done (feeds built, a digest queued)."""
        self.add(kind, now, now, ok=True, summary={})

    def last_digest(self, frequency: Frequency) -> datetime | None:
        """When a ``frequency`` digest run was last queued."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(runs.c.started_at)).where(
                    runs.c.kind == digest_kind(frequency), runs.c.ok.is_(True)
                )
            ).scalar_one()
        return value if isinstance(value, datetime) else None

    def feeds_stale(self, now: datetime) -> bool:
        """Did an advisory change (``alerts ingest`` by hand, say) or expire since the last build?"""
        with self.engine.connect() as conn:
            built = conn.execute(
                select(func.max(runs.c.started_at)).where(runs.c.kind == FEEDS_BUILT)
            ).scalar_one()
            if built is None:
                return True
            changed = conn.execute(
                select(advisories.c.id)
                .where(
                    (advisories.c.updated_at > built)
                    | ((advisories.c.expires_at > built) & (advisories.c.expires_at <= now))
                )
                .limit(1)
            ).first()
        return changed is not None

    def outbox_status(self) -> dict[str, Any]:
        """Counts by status, the oldest waiting message, the next due attempt, the last run,
        and the last run with failures unless a later run of its kind went well."""
        waiting = outbox.c.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])
        with self.engine.connect() as conn:
            counts = {str(status): 0 for status in STATUSES}
            for state, count in conn.execute(
                select(outbox.c.status, func.count()).group_by(outbox.c.status)
            ):
                counts[state] = int(count)
            oldest, due = conn.execute(
                select(func.min(outbox.c.created_at), func.min(outbox.c.next_attempt_at)).where(
                    waiting
                )
            ).one()
            latest = (
                select(runs)
                .where(runs.c.kind.notin_(MARKERS))
                .order_by(runs.c.started_at.desc(), runs.c.id.desc())
                .limit(1)
            )
            last = conn.execute(latest).mappings().first()
            # A service polls every few minutes: a failed digest job would hide behind the polls
            # after it. Shown until a run of its kind succeeds.
            failure = conn.execute(latest.where(runs.c.ok.is_(False))).mappings().first()
            if (
                failure is not None
                and conn.execute(
                    select(runs.c.id)
                    .where(
                        runs.c.kind == failure["kind"],
                        runs.c.ok.is_(True),
                        # Later: started after it, or in the same instant but recorded after it.
                        or_(
                            runs.c.started_at > failure["started_at"],
                            and_(
                                runs.c.started_at == failure["started_at"],
                                runs.c.id > failure["id"],
                            ),
                        ),
                    )
                    .limit(1)
                ).first()
            ):
                failure = None
        return {
            "outbox": counts,
            "oldest_pending": oldest,
            "next_attempt_at": due,
            "last_run": _run(last),
            "last_failure": _run(failure),
        }
