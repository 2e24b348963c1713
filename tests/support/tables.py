"""Looking inside the tables, and forcing states no stage would make (a dead worker's
claim, a message that arrived long ago): tests and benchmarks only. They go through
``Store(engine).fixtures`` (alerts/store/fixtures.py), so that no module outside
alerts/store touches the tables; seeding through the stages' own API is
:mod:`tests.support.seeding`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from alerts.store import Store


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every outbox row in queue order, with its subscriber's ``email`` and ``name`` and
    its digest's ``kind``, ``subject`` and ``meta`` (as ``digest_kind`` etc.)."""
    return Store(engine).fixtures.outbox_rows()


def row_counts(engine: Engine, *names: str) -> dict[str, int]:
    """How many rows each named table holds."""
    return Store(engine).fixtures.row_counts(*names)


def table_rows(engine: Engine, name: str) -> list[dict[str, Any]]:
    """Every row of the named table, in primary-key order."""
    return Store(engine).fixtures.table_rows(name)


def insert_rows(engine: Engine, name: str, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-insert ``rows`` into the named table in one transaction (for volumes the
    stages would take seconds to write one by one)."""
    Store(engine).fixtures.insert_rows(name, rows)


def set_columns(engine: Engine, name: str, values: dict[str, Any], **where: Any) -> int:
    """Force ``values`` into the rows of the named table matching ``where`` (column ==
    value; none: every row): a state no stage would make. Returns the rows changed."""
    return Store(engine).fixtures.set_columns(name, values, **where)
