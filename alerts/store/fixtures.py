"""For tests and benchmarks (``store.fixtures``): states and volumes no stage would
make (thousands of subscribers in one go, a dead worker's claim), and every row of a
table to look at. Stages never call it; :mod:`alerts.testing` and ``benchmarks/`` do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from alerts.store.schema import digests, metadata, outbox, subscriber_areas, subscribers


class Fixtures:
    """Seeding and looking inside the tables, for tests and benchmarks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def table_names(self) -> list[str]:
        """Every table the schema declares."""
        return list(metadata.tables)

    def seed_outbox(
        self,
        *,
        count: int,
        now: datetime,
        areas: Sequence[str] = ("medway",),
        domain: str = "example.org",
        body: str = "A telephone fraudster is posing as a police officer.",
        emails: Callable[[int], str] | None = None,
    ) -> list[str]:
        """Queue ``count`` messages: one digest per area, ``count`` active subscribers spread
        over the areas, one pending outbox row each. Returns the Message-IDs (bare)."""
        address = emails or (lambda i: f"reader{i}@{domain}")
        with self.engine.begin() as conn:
            digest_ids = []
            for area in areas:
                digest_ids.append(
                    conn.execute(
                        insert(digests)
                        .values(
                            key=uuid.uuid4().hex,
                            kind="immediate",
                            subject=f"Alerts for {area}",
                            html=f"<html><body><h1>{area}</h1><p>{body}</p></body></html>",
                            text=f"{area}\n\n{body}\n",
                            areas=[area],
                            advisory_ids=[],
                            created_at=now,
                            meta={},
                        )
                        .returning(digests.c.id)
                    ).scalar_one()
                )
            people = [
                {
                    "email": address(i),
                    "frequency": "immediate",
                    "status": "active",
                    "forwardable": False,
                    "urgent": True,
                    "bounces": 0,
                    "created_at": now,
                    "confirmed_at": now,
                    "watermark": now,
                }
                for i in range(count)
            ]
            message_ids = [f"{uuid.uuid4().hex}@{domain}" for _ in range(count)]
            for rows in chunked(people):
                added = conn.execute(
                    insert(subscribers).returning(subscribers.c.id, sort_by_parameter_order=True),
                    rows,
                ).scalars()
                for row, subscriber_id in zip(rows, added, strict=True):
                    row["id"] = subscriber_id
            for rows in chunked(
                [
                    {"subscriber_id": p["id"], "area": areas[i % len(areas)]}
                    for i, p in enumerate(people)
                ]
            ):
                conn.execute(insert(subscriber_areas), rows)
            for rows in chunked(
                [
                    {
                        "subscriber_id": p["id"],
                        "digest_id": digest_ids[i % len(digest_ids)],
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "message_id": f"<{message_ids[i]}>",
                        "created_at": now,
                        "priority": 10,  # an alert (alerts.types.MailPriority.ALERT)
                        "arrived_at": now,
                    }
                    for i, p in enumerate(people)
                ]
            ):
                conn.execute(insert(outbox), rows)
        return message_ids

    def outbox_rows(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Every outbox row in queue order (or the first ``limit``), with its subscriber's
        ``email`` and ``name`` and its digest's ``kind``, ``subject`` and ``meta`` (as
        ``digest_kind`` etc.)."""
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
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def row_counts(self, *names: str) -> dict[str, int]:
        """How many rows each named table holds."""
        with self.engine.connect() as conn:
            return {
                name: int(
                    conn.execute(
                        select(func.count()).select_from(metadata.tables[name])
                    ).scalar_one()
                )
                for name in names
            }

    def table_rows(self, name: str) -> list[dict[str, Any]]:
        """Every row of the named table, in primary-key order."""
        table = metadata.tables[name]
        with self.engine.connect() as conn:
            return [
                dict(row)
                for row in conn.execute(select(table).order_by(*table.primary_key)).mappings()
            ]

    def insert_rows(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk-insert ``rows`` into the named table in one transaction (for volumes the
        stages would take seconds to write one by one)."""
        table = metadata.tables[name]
        with self.engine.begin() as conn:
            for chunk in chunked(list(rows)):
                conn.execute(insert(table), chunk)
            if conn.dialect.name == "postgresql" and rows and "id" in rows[0]:
                # Explicit ids leave the sequence behind: the next plain INSERT would collide.
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), max(id)) FROM {table.name}"
                )

    def set_columns(self, name: str, values: dict[str, Any], **where: Any) -> int:
        """Force ``values`` into the rows of the named table matching ``where`` (column ==
        value; none: every row): a state no stage would make, such as a dead worker's claim.
        Returns the number of rows changed."""
        table = metadata.tables[name]
        statement = update(table).values(**values)
        for column, value in where.items():
            statement = statement.where(table.c[column] == value)
        with self.engine.begin() as conn:
            return int(conn.execute(statement).rowcount)


def chunked(rows: list[dict[str, Any]], size: int = 1000) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
