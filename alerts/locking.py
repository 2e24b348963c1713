"""One scheduler per database.

``alerts serve`` (and ``alerts run --once``) hold an instance lock for as long as they
run, so a second one against the same database says who holds it and stops instead of
queueing and sending the same digests twice:

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a dedicated
  connection kept for the life of the process; keyed by the schema, so two
  installations sharing a server do not block each other.
* SQLite: an ``flock`` on ``<database>.lock`` next to the database file.

Both are released by the operating system or the server when the holder dies, however
it dies, so another instance may take over (``alerts serve --standby`` waits for that).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from alerts.clock import SYSTEM, Clock
from alerts.errors import AlertsError
from alerts.store import create_db_engine

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
TAKE_OVER_HINT = "stop it first, or start this one with --standby to take over when it stops"


def take_over_hint(purpose: str) -> str:
    """What to do about the holder: only 'alerts serve' has --standby."""
    if purpose == "serve":
        return TAKE_OVER_HINT
    return f"try 'alerts {purpose}' again when it has finished; a running 'alerts serve' does this itself"


class AlreadyRunning(AlertsError):
    """Another scheduler holds the instance lock of this database."""


class WaitStopped(Exception):
    """``stop`` was set while waiting for the lock."""


class LockLost(AlertsError):
    """The instance lock was lost (the database connection dropped and another took it)."""


class InstanceLock(Protocol):
    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None) -> None: ...
    def check(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> InstanceLock: ...
    def __exit__(self, *exc: object) -> None: ...


def holder_name(purpose: str = "serve") -> str:
    return f"alerts {purpose} pid {os.getpid()} on {socket.gethostname()}"[:63]


def instance_lock(
    database_url: str, purpose: str = "serve", *, clock: Clock = SYSTEM
) -> InstanceLock:
    """The lock for the database at ``database_url`` (not yet acquired). ``clock`` times
    the wait for it and stamps when it was taken; processes wait for each other in real
    time, so the system clock unless the caller has the process's own."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresLock(database_url, purpose, clock=clock)
    if not url.database or url.database == ":memory:":
        return NoLock()
    return FileLock(
        Path(url.database).with_name(Path(url.database).name + ".lock"), purpose, clock=clock
    )


def _pause(stop: threading.Event | None) -> bool:
    """Wait a moment before trying again; True when ``stop`` was set."""
    if stop is None:
        time.sleep(POLL_SECONDS)
        return False
    return stop.wait(POLL_SECONDS)


class _Context:
    def __enter__(self) -> Any:
        self.acquire()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()  # type: ignore[attr-defined]


class NoLock(_Context):
    """An in-memory database is private to its process: nothing to share, nothing to lock."""

    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None) -> None:
        pass

    def check(self) -> bool:
        return True

    def release(self) -> None:
        pass


class FileLock(_Context):
    """An exclusive ``flock`` on a file beside the SQLite database, which names its holder."""

    def __init__(self, path: Path, purpose: str = "serve", *, clock: Clock = SYSTEM):
        self.path = path
        self.purpose = purpose
        self.clock = clock
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds for it; raises
        :class:`AlreadyRunning`, or :class:`WaitStopped` when ``stop`` is set meanwhile."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = self.clock.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self.clock.monotonic() >= deadline:
                    holder = (
                        os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
                    )
                    os.close(fd)
                    raise AlreadyRunning(
                        f"another Area Alerts scheduler is running against this database: {holder}",
                        where=str(self.path),
                        hint=take_over_hint(self.purpose),
                    ) from None
                if _pause(stop):
                    os.close(fd)
                    raise WaitStopped from None
        os.ftruncate(fd, 0)
        since = self.clock.now().isoformat(timespec="seconds")
        os.pwrite(fd, f"{holder_name(self.purpose)} since {since}\n".encode(), 0)
        self._fd = fd

    def check(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


class PostgresLock(_Context):
    """A session advisory lock on a connection of its own, held until released or the
    process (or its connection) ends."""

    def __init__(self, database_url: str, purpose: str = "serve", *, clock: Clock = SYSTEM):
        self.purpose = purpose
        self.clock = clock
        self.name = holder_name(purpose)
        self.engine = create_db_engine(
            database_url,
            poolclass=NullPool,
            # Keepalives: a holder that vanishes from the network loses the lock in
            # minutes rather than when TCP finally gives up.
            connect_args={
                "application_name": self.name,
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
        self._conn: Connection | None = None
        self.key: int | None = None

    def _connect(self) -> Connection:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        schema = conn.execute(text("SELECT current_schema()")).scalar_one() or "public"
        digest = hashlib.sha256(f"area-alerts scheduler {schema}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        return conn

    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None) -> None:
        conn = self._connect()
        deadline = self.clock.monotonic() + wait
        while not conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
        ).scalar_one():
            if self.clock.monotonic() >= deadline:
                holder = self._holder(conn)
                conn.close()
                raise AlreadyRunning(
                    f"another Area Alerts scheduler is running against this database: {holder}",
                    where="database",
                    hint=take_over_hint(self.purpose),
                )
            if _pause(stop):
                conn.close()
                raise WaitStopped
        self._conn = conn

    def _holder(self, conn: Connection) -> str:
        assert self.key is not None
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(
            text(
                "SELECT a.application_name, a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :hi "
                "AND l.objid::bigint = :lo AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
        ).first()
        if row is None:
            return "another process (it may just have stopped)"
        name, pid, addr, since = row
        where = f" from {addr}" if addr else ""
        return (
            f"{name or 'a session'} (server pid {pid}{where}, since {since:%Y-%m-%d %H:%M:%S %Z})"
        )

    def check(self) -> bool:
        """Still held? A dropped connection lost the lock: take it again if nobody else has."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            log.warning("the instance-lock connection dropped; taking the lock again")
        with contextlib.suppress(SQLAlchemyError):
            self._conn.close()
        self._conn = None
        try:
            self.acquire()
        except (AlreadyRunning, SQLAlchemyError) as exc:
            log.error("instance lock lost: %s", exc)
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._conn.close()
            self._conn = None
        self.engine.dispose()
