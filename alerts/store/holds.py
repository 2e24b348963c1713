"""Holds (``store.holds``): advisories held back whatever their areas say (a source's
surge, its first poll's baseline, a dropped surge; see :class:`alerts.types.Hold`), and
where each source stands in its lifecycle (``source_health.state``; the table is
:mod:`alerts.ingest.lifecycle`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from alerts.store.advisories import load_advisory_rows
from alerts.store.ids import chunks
from alerts.store.schema import advisories, source_health
from alerts.types import FILES_ORIGIN, Advisory, Hold, SourceState, Status


@dataclass(frozen=True)
class SourceLife:
    """Where a source stands: its state, and whether a poll ever read it (else its next
    good poll is its first, whose advisories are its baseline)."""

    state: SourceState
    read_before: bool


@dataclass(frozen=True)
class HeldBatch:
    """The advisories one source's hold of one kind keeps back, for ``alerts status``."""

    source: str
    hold: Hold
    count: int
    since: datetime


@dataclass(frozen=True)
class HeldUpdate:
    """An advisory whose change waits for its update interval (``digests.update_interval_hours``)."""

    id: int
    title: str
    since: datetime


class Holds:
    """Holds on advisories, and the source lifecycle's state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the lifecycle's state --------------------------------------------------------

    def lifecycles(self, labels: Sequence[str]) -> dict[str, SourceLife]:
        """label -> where it stands, for the sources polled or settled before."""
        found: dict[str, SourceLife] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(list(labels), 500):
                rows = conn.execute(
                    select(
                        source_health.c.source, source_health.c.state, source_health.c.last_ok_at
                    ).where(source_health.c.source.in_(chunk))
                )
                for label, state, last_ok in rows:
                    found[label] = SourceLife(SourceState(state), read_before=last_ok is not None)
        return found

    def set_state(self, label: str, kind: str, state: SourceState, now: datetime) -> None:
        """Record where ``label`` stands (a row is made for a source never polled)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(source_health)
                .where(source_health.c.source == label)
                .values(state=state.value)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(source_health).values(
                        source=label,
                        kind=kind,
                        state=state.value,
                        failures=0,
                        failures_total=0,
                        polls_total=0,
                    )
                )

    # -- counting what a poll brought -------------------------------------------------

    def count_mailable(self, ids: Sequence[int], *, max_age: timedelta) -> int:
        """How many of ``ids`` could be mailed: inside coverage, not held, and not
        published more than ``max_age`` before they were first seen (a backlog)."""
        count = 0
        with self.engine.connect() as conn:
            for chunk in chunks(list(ids)):
                rows = conn.execute(_mailable().where(advisories.c.id.in_(chunk)))
                count += _recent(rows, max_age)
        return count

    def count_mailable_from(self, folder: Path, *, since: datetime, max_age: timedelta) -> int:
        """How many advisories first seen after ``since`` in the files under ``folder``
        could be mailed (a baseline's are not counted: they never will be)."""
        prefix = str(folder).rstrip("/") + "/"
        query = _mailable().where(
            advisories.c.origin == FILES_ORIGIN,
            advisories.c.first_seen_at > since,
            advisories.c.source.startswith(prefix, autoescape=True),
        )
        with self.engine.connect() as conn:
            return _recent(conn.execute(query), max_age)

    # -- holding and letting go -------------------------------------------------------

    def hold(
        self,
        ids: Iterable[int],
        hold: Hold,
        *,
        source: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Hold ``ids`` back as ``source``'s ``hold``."""
        with self.engine.begin() as conn:
            for chunk in chunks(list(ids)):
                conn.execute(
                    update(advisories)
                    .where(advisories.c.id.in_(chunk))
                    .values(hold=hold.value, hold_source=source, hold_at=now, hold_detail=detail)
                )

    def count_held(self, source: str, hold: Hold) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(advisories)
                    .where(advisories.c.hold == hold.value, advisories.c.hold_source == source)
                ).scalar_one()
            )

    def release_held(self, source: str, *, now: datetime) -> int:
        """Let ``source``'s surge go: its advisories count as changed ``now``, so the next
        run mails and publishes them. Returns how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(advisories)
                    .where(
                        advisories.c.hold == Hold.SURGE.value, advisories.c.hold_source == source
                    )
                    .values(
                        hold=None, hold_source=None, hold_at=None, hold_detail=None, changed_at=now
                    )
                ).rowcount
            )

    def release_replacement(self, advisory_id: int, *, now: datetime) -> bool:
        """Let a held replacement go as the advisory of its own it is: mailed and
        published by the next run (it counts as changed ``now``). False: it is not one."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(advisories)
                    .where(
                        advisories.c.id == advisory_id, advisories.c.hold == Hold.REPLACEMENT.value
                    )
                    .values(
                        hold=None,
                        hold_source=None,
                        hold_at=None,
                        hold_detail=None,
                        changed_at=now,
                        updated_at=now,
                    )
                ).rowcount
            )

    def hold_one(
        self,
        advisory_id: int,
        hold: Hold,
        *,
        source: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Hold one advisory, if nothing holds it yet. False: something held it already."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(advisories)
                    .where(advisories.c.id == advisory_id, advisories.c.hold.is_(None))
                    .values(hold=hold.value, hold_source=source, hold_at=now, hold_detail=detail)
                ).rowcount
            )

    def release_one(self, advisory_id: int, hold: Hold, *, now: datetime) -> bool:
        """Let one advisory held as ``hold`` go: it counts as changed ``now``, so the next
        queueing mails it and the next feed build publishes it. False: it was not so held
        (another release came first), so whoever gets True queues it, once."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(advisories)
                    .where(advisories.c.id == advisory_id, advisories.c.hold == hold.value)
                    .values(
                        hold=None,
                        hold_source=None,
                        hold_at=None,
                        hold_detail=None,
                        changed_at=now,
                        updated_at=now,
                    )
                ).rowcount
            )

    def waiting(self, hold: Hold) -> list[Advisory]:
        """The advisories held as ``hold``, oldest hold first (for the review job)."""
        query = (
            select(advisories)
            .where(advisories.c.hold == hold.value)
            .order_by(advisories.c.hold_at, advisories.c.id)
        )
        with self.engine.connect() as conn:
            return load_advisory_rows(conn, conn.execute(query).mappings().all())

    def drop_held(self, source: str, *, now: datetime) -> int:
        """Drop ``source``'s surge: kept (so never new again), never mailed or published."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(advisories)
                    .where(
                        advisories.c.hold == Hold.SURGE.value, advisories.c.hold_source == source
                    )
                    .values(hold=Hold.DROPPED.value, hold_at=now)
                ).rowcount
            )

    def withdraw_files(self, paths: Sequence[str], *, now: datetime) -> list[int]:
        """Withdraw the live advisories read from these (deleted) files. Returns their ids."""
        ids: list[int] = []
        with self.engine.begin() as conn:
            for chunk in chunks(list(paths)):
                where = (
                    advisories.c.origin == FILES_ORIGIN,
                    advisories.c.source.in_(chunk),
                    advisories.c.status == Status.ACTIVE.value,
                )
                found = [int(i) for (i,) in conn.execute(select(advisories.c.id).where(*where))]
                if found:
                    conn.execute(
                        update(advisories)
                        .where(advisories.c.id.in_(found))
                        .values(status=Status.WITHDRAWN.value, updated_at=now)
                    )
                ids += found
        return ids

    def batches(self) -> list[HeldBatch]:
        """Every hold that keeps advisories from inboxes, by source and kind (a
        baseline, mailed to nobody by design, is not listed)."""
        query = (
            select(
                advisories.c.hold_source,
                advisories.c.hold,
                func.count(),
                func.min(advisories.c.hold_at),
            )
            .where(advisories.c.hold.is_not(None), advisories.c.hold != Hold.BASELINE.value)
            .group_by(advisories.c.hold_source, advisories.c.hold)
            .order_by(advisories.c.hold_source, advisories.c.hold)
        )
        with self.engine.connect() as conn:
            return [
                HeldBatch(source or "", Hold(hold), int(count), since)
                for source, hold, count, since in conn.execute(query)
            ]

    def held_updates(self) -> list[HeldUpdate]:
        """Advisories whose material change is held back until their update interval
        has passed (``held_since``), oldest first."""
        query = (
            select(advisories.c.id, advisories.c.title, advisories.c.held_since)
            .where(advisories.c.held_since.is_not(None))
            .order_by(advisories.c.held_since, advisories.c.id)
        )
        with self.engine.connect() as conn:
            return [HeldUpdate(int(i), title, since) for i, title, since in conn.execute(query)]


def _mailable() -> Any:
    return select(advisories.c.published_at, advisories.c.first_seen_at).where(
        advisories.c.outside_coverage.is_(False),
        advisories.c.hold.is_(None) | (advisories.c.hold != Hold.BASELINE.value),
    )


def _recent(rows: Iterable[Any], max_age: timedelta) -> int:
    # As alerts.store.advisories.load_candidates reads a backlog (in Python: portable).
    return sum(1 for published, first_seen in rows if published >= first_seen - max_age)
