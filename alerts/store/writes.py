"""The one way the outbox writes on SQLite: the write lock taken up front (``BEGIN
IMMEDIATE``), with this process's writers taking turns on a lock of their own first.
Used for every claim and record (:func:`write_transaction`) and for each sent mark on a
worker's own connection (:func:`immediate`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

_writers: dict[str, threading.Lock] = {}
_writers_guard = threading.Lock()


def sqlite_writer(engine: Engine) -> threading.Lock:
    """One lock per SQLite database in this process, taken around each write transaction
    of the outbox: the workers take turns here rather than in SQLite's busy handler,
    which sleeps 1, 2, 5, 10 ms... between tries (other processes still meet that)."""
    with _writers_guard:
        return _writers.setdefault(str(engine.url.database), threading.Lock())


@contextmanager
def immediate(conn: Connection, writer: threading.Lock) -> Iterator[Connection]:
    """One SQLite write transaction on ``conn``: ``writer`` held, ``BEGIN IMMEDIATE``,
    committed at the end or rolled back on any error."""
    with writer:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes. On SQLite it takes the write lock up front (``BEGIN
    IMMEDIATE``), so two claimers queue on the busy timeout instead of both reading the
    same due rows and one failing on upgrade."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        # WAL with synchronous=NORMAL: a commit survives a crash of this process (all
        # the outbox promises) but is not fsynced each time; after a power cut the
        # last marks may be lost, and those messages go again with their Message-ID.
        # Restored afterwards: the connection goes back to the pool for other stages.
        previous = int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        try:
            with immediate(conn, sqlite_writer(engine)):
                yield conn
        finally:
            conn.exec_driver_sql(f"PRAGMA synchronous={previous}")
