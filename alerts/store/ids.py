"""Lists for ``IN (...)`` clauses, in chunks, and membership in a list of ids: written once
for every aggregate."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from sqlalchemy import ARRAY, Integer, any_, bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

#: Values per ``IN (...)`` list: well under SQLite's variable limit.
CHUNK = 500

T = TypeVar("T")


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def among(column: ColumnElement[int], ids: Sequence[int], conn: Connection) -> ColumnElement[bool]:
    """``column IN (ids)``. On PostgreSQL ``column = ANY(:ids)``: one array parameter, so
    the statement is the same whatever the number of ids and the driver converts it once
    (an ``IN`` of a thousand parameters was compiled, converted and dumped afresh for
    every batch: a third of the queueing run's time on PostgreSQL under py-spy)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(list(ids))
