"""Advisories: the ``advisories`` and ``advisory_areas`` tables.

:class:`Store` is the handle every stage is given (``open_store`` in
:mod:`alerts.store.database` makes it); its methods read and write advisories, and the
other aggregates' modules take it as their first parameter.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, RowMapping, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from alerts.errors import NotFound
from alerts.schema import advisories, advisory_areas
from alerts.store.ids import chunks
from alerts.types import Advisory, AdvisoryInput, Candidate, Priority, Status


class Outcome(enum.StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    advisory_id: int
    revision: int


def material_hash(item: AdvisoryInput) -> str:
    """What makes an update material (worth mailing again): title, summary and body."""
    payload = json.dumps([item.title, item.summary, item.body_html], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class Store:
    """Reads and writes advisories. One per process; cheap to share."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()

    # -- advisories ---------------------------------------------------------------

    def save_advisory(self, item: AdvisoryInput, areas: Iterable[str], now: datetime) -> IngestResult:
        """Insert a new advisory or update the stored one with the same key.

        ``areas`` are the most specific areas it concerns. A changed title, summary or
        body bumps ``revision`` and ``changed_at``; other changes (status, expiry, areas,
        ...) only ``updated_at``; nothing changed leaves the row alone.
        """
        wanted = sorted(set(areas))
        values = _row_values(item)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(advisories).where(advisories.c.key == item.key).with_for_update()
            ).mappings().first()
            if row is None:
                return _insert_advisory(conn, item.key, values, wanted, now)
            return _update_advisory(conn, row, item, values, wanted, now)

    def advisory(self, ref: int | str) -> Advisory:
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
            raise NotFound(f"no advisory {ref!r}", hint="run 'alerts advisories list' to see the ids")
        return found[0]

    def advisories(
        self,
        *,
        areas: Iterable[str] | None = None,
        since: datetime | None = None,
        changed_since: datetime | None = None,
        live_at: datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Advisory]:
        """Advisories, newest published first.

        ``areas``: only those concerning one of these areas (pass the set that
        :meth:`alerts.areas.Gazetteer.matching_areas` gives for a subscription).
        ``since``: published at or after. ``changed_since``: changed after (a watermark).
        ``live_at``: leave out the withdrawn and those expired at that instant.
        ``limit``/``offset``: one page of that order (the id breaks ties, so pages never overlap).
        """
        query = select(advisories)
        if areas is not None:
            query = query.where(
                advisories.c.id.in_(
                    select(advisory_areas.c.advisory_id).where(advisory_areas.c.area.in_(sorted(set(areas))))
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

    def count_advisories(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(advisories)).scalar_one())

    def _load(self, query: Any) -> list[Advisory]:
        with self.engine.connect() as conn:
            return load_advisory_rows(conn, conn.execute(query).mappings().all())


def load_candidates(
    store: Store,
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
    )
    if urgent_only:
        query = query.where(advisories.c.priority == Priority.URGENT.value)
    with store.engine.connect() as conn:
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


def load_advisories(store: Store, ids: Iterable[int]) -> dict[int, Advisory]:
    """Full advisories by id (for rendering)."""
    found: dict[int, Advisory] = {}
    with store.engine.connect() as conn:
        for chunk in chunks(sorted(set(ids))):
            rows = conn.execute(select(advisories).where(advisories.c.id.in_(chunk))).mappings().all()
            found.update((item.id, item) for item in load_advisory_rows(conn, rows))
    return found


def last_changes(store: Store, now: datetime) -> tuple[datetime | None, dict[str, datetime]]:
    """The newest update or past expiry of any advisory (None: there are none), and of
    the advisories of each area."""
    expired = case((advisories.c.expires_at <= now, advisories.c.expires_at), else_=None)
    with store.engine.connect() as conn:
        overall = conn.execute(select(func.max(advisories.c.updated_at), func.max(expired))).one()
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
    }


def _insert_advisory(
    conn: Connection, key: str, values: dict[str, Any], areas: list[str], now: datetime
) -> IngestResult:
    advisory_id = conn.execute(
        insert(advisories)
        .values(key=key, first_seen_at=now, changed_at=now, updated_at=now, revision=1, **values)
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
) -> IngestResult:
    """Update the stored ``row`` where something changed: a material change (title,
    summary, body) is a new revision; any other only moves ``updated_at``."""
    if item.date_assumed:
        # No date in the source: it was published when first seen, not now.
        values["published_at"] = row["published_at"]
        values["date_assumed"] = True
    old_areas = sorted(
        conn.execute(select(advisory_areas.c.area).where(advisory_areas.c.advisory_id == row["id"])).scalars()
    )
    changed = {k for k, v in values.items() if row[k] != v} - {"source", "body_text"}
    if not changed and old_areas == areas:
        return IngestResult(Outcome.UNCHANGED, row["id"], row["revision"])
    revision = row["revision"]
    if values["content_hash"] != row["content_hash"]:
        revision += 1
        values["changed_at"] = now
    conn.execute(
        update(advisories).where(advisories.c.id == row["id"]).values(updated_at=now, revision=revision, **values)
    )
    if old_areas != areas:
        _set_areas(conn, row["id"], areas)
    return IngestResult(Outcome.UPDATED, row["id"], revision)


def _set_areas(conn: Connection, advisory_id: int, areas: list[str]) -> None:
    conn.execute(delete(advisory_areas).where(advisory_areas.c.advisory_id == advisory_id))
    if areas:
        conn.execute(insert(advisory_areas), [{"advisory_id": advisory_id, "area": a} for a in areas])


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


def utcnow() -> datetime:
    return datetime.now(UTC)
