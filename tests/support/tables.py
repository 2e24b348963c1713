"""Looking inside the tables, and forcing states no stage would make (a dead worker's
claim, a message that arrived long ago): tests only. Stages, and the seeding in
:mod:`tests.support.seeding`, go through :mod:`alerts.store`; these read and write the
tables directly on purpose, to check what the store wrote or to set up what it never would."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from alerts.schema import digests, metadata, outbox, subscribers


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every outbox row in queue order, with its subscriber's ``email`` and ``name`` and
    its digest's ``kind``, ``subject`` and ``meta`` (as ``digest_kind`` etc.)."""
    query = (
        select(
            outbox,
            subscribers.c.email,
            subscribers.c.name,
            digests.c.kind.label("digest_kind"),
            digests.c.subject.label("digest_subject"),
            digests.c.meta.label("digest_meta"),
        )
        .select_from(outbox.join(subscribers).join(digests))
        .order_by(outbox.c.id)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def row_counts(engine: Engine, *names: str) -> dict[str, int]:
    """How many rows each named table holds."""
    with engine.connect() as conn:
        return {
            name: int(
                conn.execute(select(func.count()).select_from(metadata.tables[name])).scalar_one()
            )
            for name in names
        }


def table_rows(engine: Engine, name: str) -> list[dict[str, Any]]:
    """Every row of the named table, in primary-key order."""
    table = metadata.tables[name]
    with engine.connect() as conn:
        return [
            dict(row) for row in conn.execute(select(table).order_by(*table.primary_key)).mappings()
        ]


def insert_rows(engine: Engine, name: str, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-insert ``rows`` into the named table in one transaction (for volumes the
    stages would take seconds to write one by one)."""
    table = metadata.tables[name]
    with engine.begin() as conn:
        for chunk in _chunked(list(rows)):
            conn.execute(insert(table), chunk)
        if conn.dialect.name == "postgresql" and rows and "id" in rows[0]:
            # Explicit ids leave the sequence behind: the next plain INSERT would collide.
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), max(id)) FROM {table.name}"
            )


def set_columns(engine: Engine, name: str, values: dict[str, Any], **where: Any) -> int:
    """Force ``values`` into the rows of the named table matching ``where`` (column ==
    value; none: every row): a state no stage would make, such as a dead worker's claim.
    Returns the number of rows changed."""
    table = metadata.tables[name]
    statement = update(table).values(**values)
    for column, value in where.items():
        statement = statement.where(table.c[column] == value)
    with engine.begin() as conn:
        return int(conn.execute(statement).rowcount)


def _chunked(rows: list[dict[str, Any]], size: int = 1000) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
