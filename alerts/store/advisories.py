"""Advisories: the ``advisories`` and ``advisory_areas`` tables, as ``store.advisories``.

It runs past 500 lines because saving an advisory is one transaction that applies the
identity rules (:mod:`alerts.store.identity`), the update interval and replacements, and
each needs the same private insert and update helpers.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, RowMapping, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from alerts.errors import NotFound
from alerts.replacement import looks_like_replacement
from alerts.store.identity import (
    DEFAULT_UPDATE_INTERVAL,
    log_revision,
    material_hash,
    next_revision,
    note_duplicate,
    own_advisory,
    stored_elsewhere,
)
from alerts.store.ids import chunks
from alerts.store.schema import advisories, advisory_areas, advisory_duplicates
from alerts.types import (
    FILES_ORIGIN,
    Advisory,
    AdvisoryInput,
    AreaDecision,
    Candidate,
    Hold,
    Priority,
    Status,
)


class Outcome(enum.StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    #: Another source created it: noted on that advisory, which is left as it was.
    DUPLICATE = "duplicate"
    #: A file naming an existing advisory's URL but saying something else entirely
    #: (alerts.replacement): stored as an advisory of its own, held (Hold.REPLACEMENT).
    HELD = "held"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    advisory_id: int
    revision: int
    #: For a held replacement: the advisory whose URL it names (id, title, published).
    replaces: tuple[int, str, datetime] | None = None


class Advisories:
    """Reads and writes advisories (``store.advisories``)."""

    def __init__(self, engine: Engine, *, update_interval: timedelta = DEFAULT_UPDATE_INTERVAL):
        self.engine = engine
        #: At most one "Updated" per advisory in this time (``digests.update_interval_hours``).
        self.update_interval = update_interval

    def save(self, item: AdvisoryInput, areas: Iterable[str], now: datetime) -> IngestResult:
        """Insert a new advisory or update the one its source stored before
        (:mod:`alerts.store.identity`); an advisory another source stored with this key
        or URL is left as it was, the item noted on it as a duplicate.

        ``areas`` are the most specific areas it concerns. A material change of title,
        summary or body is a new revision, at most one per :attr:`update_interval`
        unless urgent (sooner it is held); other changes (status, expiry, areas, ...)
        only move ``updated_at``; nothing changed leaves the row alone.
        """
        wanted = sorted(set(areas))
        values = _row_values(item)
        try:
            return self._save_advisory(item, values, wanted, now)
        except IntegrityError:
            # Another process (two 'alerts ingest' started together) inserted the same
            # advisory between our look and our insert: look again, and find it stored.
            return self._save_advisory(item, values, wanted, now)

    def _save_advisory(
        self, item: AdvisoryInput, values: dict[str, Any], wanted: list[str], now: datetime
    ) -> IngestResult:
        with self.engine.begin() as conn:
            row = own_advisory(conn, item, values["content_hash"], now)
            if item.origin == FILES_ORIGIN:
                if row is not None and _replaces(row, item):
                    return _save_replacement(
                        conn, row, item, values, wanted, now, self.update_interval
                    )
                # The file says its own thing now (a new url, or an update after all): a
                # replacement it made before and nobody released is gone.
                conn.execute(
                    delete(advisories).where(
                        advisories.c.hold == Hold.REPLACEMENT.value,
                        advisories.c.hold_source == item.source,
                    )
                )
            if row is None:
                first = stored_elsewhere(conn, item)
                if first is not None:
                    note_duplicate(conn, first, item, now)
                    return IngestResult(Outcome.DUPLICATE, first["id"], first["revision"])
                return _insert_advisory(conn, item, values, wanted, now)
            return _update_advisory(conn, row, item, values, wanted, now, self.update_interval)

    def release_held_updates(self, now: datetime) -> list[int]:
        """Make a new revision of every advisory whose held change may now be mailed
        (its last update was :attr:`update_interval` ago, or it is urgent). Returns their ids."""
        due = advisories.c.held_since.is_not(None) & (
            (advisories.c.changed_at <= now - self.update_interval)
            | (advisories.c.priority == Priority.URGENT.value)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(advisories.c.id, advisories.c.content_hash).where(due).with_for_update()
            ).all()
            for advisory_id, content_hash in rows:
                conn.execute(
                    update(advisories)
                    .where(advisories.c.id == advisory_id)
                    .values(
                        revision=advisories.c.revision + 1,
                        changed_at=now,
                        updated_at=now,
                        revision_hash=content_hash,
                        held_since=None,
                    )
                )
        return [advisory_id for advisory_id, _ in rows]

    def duplicates_of(self, advisory_id: int) -> list[dict[str, Any]]:
        """What other sources sent of this advisory (origin, key, url, title, first and
        last seen), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(advisory_duplicates)
                .where(advisory_duplicates.c.advisory_id == advisory_id)
                .order_by(advisory_duplicates.c.first_seen_at, advisory_duplicates.c.origin)
            ).mappings()
            return [dict(row) for row in rows]

    def get(self, ref: int | str) -> Advisory:
        """One advisory by numeric id, by key (its URL or GUID) or by its URL."""
        if isinstance(ref, int) or str(ref).isdigit():
            # Beyond a 32-bit id, PostgreSQL would refuse the query rather than find nothing.
            number = int(ref) if int(ref) < 2**31 else -1
            query = select(advisories).where(advisories.c.id == number)
        else:
            # The key first: a GUID-keyed advisory may share its URL with another.
            query = (
                select(advisories)
                .where((advisories.c.key == ref) | (advisories.c.url == ref))
                .order_by((advisories.c.key == ref).desc(), advisories.c.id)
                .limit(1)
            )
        found = self._load(query)
        if not found:
            raise NotFound(
                f"no advisory {ref!r}", hint="run 'alerts advisories list' to see the ids"
            )
        return found[0]

    def find(
        self,
        *,
        areas: Iterable[str] | None = None,
        since: datetime | None = None,
        changed_since: datetime | None = None,
        live_at: datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include_outside: bool = False,
    ) -> list[Advisory]:
        """Advisories, newest published first.

        ``areas``: only those concerning one of these areas (pass the set that
        :meth:`alerts.areas.Gazetteer.matching_areas` gives for a subscription).
        ``since``: published at or after. ``changed_since``: changed after (a watermark).
        ``live_at``: leave out the withdrawn and those expired at that instant.
        ``limit``/``offset``: one page of that order (the id breaks ties, so pages never overlap).
        ``include_outside``: also those outside coverage (for the operator; never published).
        """
        query = select(advisories)
        if not include_outside:
            query = query.where(advisories.c.outside_coverage.is_(False)).where(
                advisories.c.hold.is_(None) | (advisories.c.hold == Hold.BASELINE.value)
            )
        if areas is not None:
            query = query.where(
                advisories.c.id.in_(
                    select(advisory_areas.c.advisory_id).where(
                        advisory_areas.c.area.in_(sorted(set(areas)))
                    )
                )
            )
        if since is not None:
            query = query.where(advisories.c.published_at >= since)
        if changed_since is not None:
            query = query.where(advisories.c.changed_at > changed_since)
        if live_at is not None:
            query = query.where(advisories.c.status == Status.ACTIVE.value).where(
                (advisories.c.expires_at.is_(None)) | (advisories.c.expires_at > live_at)
            )
        query = query.order_by(advisories.c.published_at.desc(), advisories.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return self._load(query)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(advisories)).scalar_one())

    def _load(self, query: Any) -> list[Advisory]:
        with self.engine.connect() as conn:
            return load_advisory_rows(conn, conn.execute(query).mappings().all())

    def candidates(
        self,
        *,
        after: datetime,
        until: datetime,
        max_age: timedelta,
        urgent_only: bool = False,
    ) -> list[Candidate]:
        """Live advisories that changed in (``after``, ``until``], newest published first,
        leaving out those published more than ``max_age`` before they were first ingested."""
        query = select(
            advisories.c.id,
            advisories.c.revision,
            advisories.c.changed_at,
            advisories.c.published_at,
            advisories.c.first_seen_at,
            advisories.c.priority,
        ).where(
            advisories.c.changed_at > after,
            advisories.c.changed_at <= until,
            advisories.c.status == Status.ACTIVE.value,
            advisories.c.expires_at.is_(None) | (advisories.c.expires_at > until),
            advisories.c.outside_coverage.is_(False),
            advisories.c.hold.is_(None),
        )
        if urgent_only:
            query = query.where(advisories.c.priority == Priority.URGENT.value)
        with self.engine.connect() as conn:
            rows = [
                row
                for row in conn.execute(query)
                # A backlog (published long before we first saw it) is for feeds and the archive.
                if row.published_at >= row.first_seen_at - max_age
            ]
            areas: dict[int, set[str]] = {row.id: set() for row in rows}
            for chunk in chunks(list(areas)):
                for advisory_id, area in conn.execute(
                    select(advisory_areas.c.advisory_id, advisory_areas.c.area).where(
                        advisory_areas.c.advisory_id.in_(chunk)
                    )
                ):
                    areas[advisory_id].add(area)
        candidates = [
            Candidate(
                id=row.id,
                revision=row.revision,
                changed_at=row.changed_at,
                published_at=row.published_at,
                areas=frozenset(areas[row.id]),
                urgent=row.priority == Priority.URGENT.value,
            )
            for row in rows
        ]
        candidates.sort(key=lambda c: (c.published_at, c.id), reverse=True)
        return candidates

    def load(self, ids: Iterable[int]) -> dict[int, Advisory]:
        """Full advisories by id (for rendering)."""
        found: dict[int, Advisory] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                rows = (
                    conn.execute(select(advisories).where(advisories.c.id.in_(chunk)))
                    .mappings()
                    .all()
                )
                found.update((item.id, item) for item in load_advisory_rows(conn, rows))
        return found

    def last_changes(self, now: datetime) -> tuple[datetime | None, dict[str, datetime]]:
        """The newest update or past expiry of any advisory (None: there are none), and of
        the advisories of each area."""
        expired = case((advisories.c.expires_at <= now, advisories.c.expires_at), else_=None)
        with self.engine.connect() as conn:
            overall = conn.execute(
                select(func.max(advisories.c.updated_at), func.max(expired))
            ).one()
            rows = conn.execute(
                select(advisory_areas.c.area, func.max(advisories.c.updated_at), func.max(expired))
                .join(advisories, advisories.c.id == advisory_areas.c.advisory_id)
                .group_by(advisory_areas.c.area)
            ).all()
        by_area: dict[str, datetime] = {}
        for area, *values in rows:
            latest = _latest(values)
            if latest is not None:
                by_area[area] = latest
        return _latest(overall), by_area

    def retag(self, advisory_id: int, areas: Iterable[str] | None, now: datetime) -> None:
        """An operator's retag: the advisory reaches ``areas`` (none: outside coverage)
        whatever the area rule says, through re-ingest and changes of its source; ``None``
        hands it back to the rule's stored decision. ``changed_at`` moves, so subscribers it
        newly concerns get it; those sent its revision already do not get it twice."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    select(advisories.c.id, advisories.c.area_decision)
                    .where(advisories.c.id == advisory_id)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound(
                    f"no advisory {advisory_id!r}",
                    hint="run 'alerts advisories list' to see the ids",
                )
            if areas is None:
                decision = (
                    AreaDecision.from_json(row["area_decision"]) if row["area_decision"] else None
                )
                current = conn.execute(
                    select(advisory_areas.c.area).where(advisory_areas.c.advisory_id == advisory_id)
                )
                wanted = sorted(decision.areas) if decision else sorted(current.scalars())
                outside, override, at = bool(decision and decision.outside_coverage), None, None
            else:
                wanted = sorted(set(areas))
                outside, override, at = not wanted, wanted, now
            conn.execute(
                update(advisories)
                .where(advisories.c.id == advisory_id)
                .values(
                    area_override=override,
                    area_override_at=at,
                    outside_coverage=outside,
                    updated_at=now,
                    changed_at=now,
                )
            )
            _set_areas(conn, advisory_id, wanted)


def _latest(values: Iterable[datetime | str | None]) -> datetime | None:
    return max((_aware(value) for value in values if value is not None), default=None)


def _aware(value: datetime | str) -> datetime:
    # max() over a UtcDateTime column comes back untyped on SQLite (a string) and naive.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def load_advisory_rows(conn: Connection, rows: Iterable[Any]) -> list[Advisory]:
    """Advisories from ``advisories`` rows, with their areas read in a few queries."""
    rows = list(rows)
    areas: dict[int, list[str]] = {row["id"]: [] for row in rows}
    for chunk in chunks(list(areas)):
        for advisory_id, area in conn.execute(
            select(advisory_areas.c.advisory_id, advisory_areas.c.area)
            .where(advisory_areas.c.advisory_id.in_(chunk))
            .order_by(advisory_areas.c.area)
        ):
            areas[advisory_id].append(area)
    return [row_to_advisory(row, areas[row["id"]]) for row in rows]


def row_to_advisory(row: Any, areas: Iterable[str]) -> Advisory:
    return Advisory(
        id=row["id"],
        key=row["key"],
        url=row["url"],
        title=row["title"],
        summary=row["summary"],
        body_html=row["body_html"],
        body_text=row["body_text"],
        published_at=row["published_at"],
        first_seen_at=row["first_seen_at"],
        changed_at=row["changed_at"],
        updated_at=row["updated_at"],
        revision=row["revision"],
        source=row["source"],
        areas=tuple(areas),
        tags=tuple(row["tags"] or ()),
        force_area=row["force_area"],
        image_url=row["image_url"],
        status=Status(row["status"]),
        priority=Priority(row["priority"]),
        expires_at=row["expires_at"],
        extra=dict(row["extra"] or {}),
        decision=AreaDecision.from_json(row["area_decision"]) if row["area_decision"] else None,
        outside_coverage=bool(row["outside_coverage"]),
        area_override=None if row["area_override"] is None else tuple(row["area_override"]),
        area_override_at=row["area_override_at"],
        origin=row["origin"],
        hold=Hold(row["hold"]) if row["hold"] else None,
        hold_source=row["hold_source"],
        hold_at=row["hold_at"],
        hold_detail=row["hold_detail"],
        update_held_since=row["held_since"],
    )


def _row_values(item: AdvisoryInput) -> dict[str, Any]:
    """The ``advisories`` columns an ingest sets, from ``item``."""
    return {
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "body_html": item.body_html,
        "body_text": item.body_text,
        "content_hash": material_hash(item),
        "published_at": item.published_at,
        "date_assumed": item.date_assumed,
        "source": item.source,
        "force_area": item.force_area,
        "image_url": item.image_url,
        "status": item.status.value,
        "priority": item.priority.value,
        "expires_at": item.expires_at,
        "tags": sorted(item.areas),
        "extra": _jsonable(item.extra),
        "area_decision": item.decision.as_json() if item.decision else None,
        "outside_coverage": bool(item.decision and item.decision.outside_coverage),
    }


def _replaces(row: RowMapping, item: AdvisoryInput) -> bool:
    return row["hold"] != Hold.REPLACEMENT.value and looks_like_replacement(
        row["title"],
        row["body_text"],
        row["published_at"],
        item.title,
        item.body_text,
        item.published_at,
    )


def _save_replacement(
    conn: Connection,
    replaced: RowMapping,
    item: AdvisoryInput,
    values: dict[str, Any],
    areas: list[str],
    now: datetime,
    interval: timedelta,
) -> IngestResult:
    """Store ``item``, which names ``replaced``'s URL but is another advisory, as one of
    its own, keyed by its file (so later edits of that file update it), held until an
    operator releases it; ``replaced`` is left as it was."""
    own = dataclasses.replace(item, key=f"{item.key}#file:{item.source}")
    about = (replaced["id"], replaced["title"], replaced["published_at"])
    row = (
        conn.execute(
            select(advisories).where(advisories.c.origin == own.origin, advisories.c.key == own.key)
        )
        .mappings()
        .first()
    )
    if row is not None:
        result = _update_advisory(conn, row, own, values, areas, now, interval)
        return dataclasses.replace(result, replaces=about) if row["hold"] else result
    result = _insert_advisory(conn, own, values, areas, now)
    detail = {
        "replaces": replaced["id"],
        "title": replaced["title"],
        "published_at": replaced["published_at"].isoformat(),
    }
    conn.execute(
        update(advisories)
        .where(advisories.c.id == result.advisory_id)
        .values(
            hold=Hold.REPLACEMENT.value, hold_source=item.source, hold_at=now, hold_detail=detail
        )
    )
    return IngestResult(Outcome.HELD, result.advisory_id, result.revision, about)


def _insert_advisory(
    conn: Connection, item: AdvisoryInput, values: dict[str, Any], areas: list[str], now: datetime
) -> IngestResult:
    advisory_id = conn.execute(
        insert(advisories)
        .values(
            origin=item.origin,
            key=item.key,
            first_seen_at=now,
            changed_at=now,
            updated_at=now,
            revision=1,
            revision_hash=values["content_hash"],
            **values,
        )
        .returning(advisories.c.id)
    ).scalar_one()
    _set_areas(conn, advisory_id, areas)
    return IngestResult(Outcome.NEW, advisory_id, 1)


def _update_advisory(
    conn: Connection,
    row: RowMapping,
    item: AdvisoryInput,
    values: dict[str, Any],
    areas: list[str],
    now: datetime,
    interval: timedelta,
) -> IngestResult:
    """Update the stored ``row`` where something changed: a material change (title,
    summary, body) is a new revision (or held: see :func:`next_revision`); any other
    only moves ``updated_at``."""
    if item.date_assumed:
        # No date in the source: it was published when first seen, not now.
        values["published_at"] = row["published_at"]
        values["date_assumed"] = True
    if row["area_override"] is not None:
        # An operator's retag stands through re-ingest and source changes; the rule's
        # new decision is kept beside it, for 'alerts advisories show'.
        areas = sorted(row["area_override"])
        values["outside_coverage"] = not areas
    old_areas = sorted(
        conn.execute(
            select(advisory_areas.c.area).where(advisory_areas.c.advisory_id == row["id"])
        ).scalars()
    )
    content_hash = values["content_hash"]
    urgent = item.priority is Priority.URGENT
    step = next_revision(row, content_hash, urgent=urgent, now=now, interval=interval)
    values |= {
        "revision": step.revision,
        "changed_at": step.changed_at,
        "revision_hash": step.revision_hash,
        "held_since": step.held_since,
    }
    if step.flapped:
        values["flaps"] = row["flaps"] + 1
    log_revision(row, step, item.origin, values.get("flaps", row["flaps"]), interval)
    # The content hash of an advisory stored before it meant the normalised words.
    ignored = {"source", "body_text"} | (
        {"content_hash"} if content_hash == material_hash(row) else set()
    )
    changed = {k for k, v in values.items() if row[k] != v} - ignored
    if not changed and old_areas == areas:
        return IngestResult(Outcome.UNCHANGED, row["id"], row["revision"])
    conn.execute(
        update(advisories).where(advisories.c.id == row["id"]).values(updated_at=now, **values)
    )
    if old_areas != areas:
        _set_areas(conn, row["id"], areas)
    return IngestResult(Outcome.UPDATED, row["id"], step.revision)


def _set_areas(conn: Connection, advisory_id: int, areas: list[str]) -> None:
    conn.execute(delete(advisory_areas).where(advisory_areas.c.advisory_id == advisory_id))
    if areas:
        conn.execute(
            insert(advisory_areas), [{"advisory_id": advisory_id, "area": a} for a in areas]
        )


def _jsonable(value: Any) -> Any:
    """Front matter may hold dates and other YAML types; keep them as JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity; PostgreSQL refuses them
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
