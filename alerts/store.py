"""The store: SQLAlchemy over SQLite (the default) or PostgreSQL (by URL).

``open_store`` connects and brings the schema up to date through the Alembic
migrations shipped in ``alerts/migrations``. Advisory reads and writes live here;
later stages keep their own queries next to their own logic, on the same tables.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from alerts.errors import AlertsError, ConfigError, NotFound
from alerts.schema import advisories, advisory_areas
from alerts.types import Advisory, AdvisoryInput, Priority, Status

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreError(AlertsError):
    """The database cannot be reached or is not in a usable state."""


class DatabaseConfigError(StoreError, ConfigError):
    """The database refused the URL itself: no such database or user, a wrong password."""


#: What drivers say when the URL, not the moment, is at fault.
CONFIG_CAUSES = ("does not exist", "password authentication failed", "no password supplied", "unable to open database file")


class Outcome(enum.StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def engine_url(url: str) -> str:
    """Plain ``postgresql://`` URLs use psycopg 3, the driver this project installs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings this project relies on (SQLite: WAL, foreign keys,
    a busy timeout so concurrent processes wait instead of failing)."""
    url = engine_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest) with Alembic."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def open_store(url: str, *, upgrade: bool = True, **engine_kwargs: Any) -> Store:
    """Connect to the database at ``url`` and (by default) migrate it to the newest schema."""
    try:
        engine = create_db_engine(url, **engine_kwargs)
        if upgrade:
            migrate(engine)
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise DatabaseConfigError(
            f"cannot create the folder {exc.filename or url}: {exc.strerror or exc}",
            where="database",
            hint="check the 'database:' URL in config.yaml",
        ) from None
    except SQLAlchemyError as exc:
        # The driver's own words (psycopg's name the host, port and database), not SQLAlchemy's wrapping.
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        shown = make_url(url).render_as_string(hide_password=True)
        # The server answered and refused (no such database or user, wrong password) or
        # the file cannot be: the URL is wrong, not the moment (exit status 2, not 1).
        refused = any(words in cause for words in CONFIG_CAUSES)
        raise (DatabaseConfigError if refused else StoreError)(
            f"cannot open {shown}: {cause}",
            where="database",
            hint="check the 'database:' URL in config.yaml"
            + ("" if refused else " and that the server is running"),
        ) from None
    return Store(engine)


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
        areas = sorted(set(areas))
        content_hash = material_hash(item)
        values: dict[str, Any] = {
            "url": item.url,
            "title": item.title,
            "summary": item.summary,
            "body_html": item.body_html,
            "body_text": item.body_text,
            "content_hash": content_hash,
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
        with self.engine.begin() as conn:
            row = conn.execute(
                select(advisories).where(advisories.c.key == item.key).with_for_update()
            ).mappings().first()
            if row is None:
                inserted = conn.execute(
                    insert(advisories).values(
                        key=item.key, first_seen_at=now, changed_at=now, updated_at=now, revision=1, **values
                    )
                ).inserted_primary_key
                assert inserted is not None  # an INSERT always has a key
                advisory_id = inserted[0]
                _set_areas(conn, advisory_id, areas)
                return IngestResult(Outcome.NEW, advisory_id, 1)
            if item.date_assumed:
                # No date in the source: it was published when first seen, not now.
                values["published_at"] = row["published_at"]
                values["date_assumed"] = True
            old_areas = sorted(
                conn.execute(
                    select(advisory_areas.c.area).where(advisory_areas.c.advisory_id == row["id"])
                ).scalars()
            )
            changed = {k for k, v in values.items() if row[k] != v} - {"source", "body_text"}
            if not changed and old_areas == areas:
                return IngestResult(Outcome.UNCHANGED, row["id"], row["revision"])
            revision = row["revision"]
            if content_hash != row["content_hash"]:
                revision += 1
                values["changed_at"] = now
            conn.execute(
                update(advisories)
                .where(advisories.c.id == row["id"])
                .values(updated_at=now, revision=revision, **values)
            )
            if old_areas != areas:
                _set_areas(conn, row["id"], areas)
            return IngestResult(Outcome.UPDATED, row["id"], revision)

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


def load_advisory_rows(conn: Connection, rows: Iterable[Any]) -> list[Advisory]:
    """Advisories from ``advisories`` rows, with their areas read in a few queries."""
    rows = list(rows)
    areas: dict[int, list[str]] = {row["id"]: [] for row in rows}
    for chunk in _chunks(list(areas), 500):
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


def _set_areas(conn: Connection, advisory_id: int, areas: list[str]) -> None:
    conn.execute(delete(advisory_areas).where(advisory_areas.c.advisory_id == advisory_id))
    if areas:
        conn.execute(insert(advisory_areas), [{"advisory_id": advisory_id, "area": a} for a in areas])


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
