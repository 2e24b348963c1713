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

The queue turn (:func:`queue_turn`): more than one process queues alerts (``alerts
serve``, the console of ``alerts web``, ``alerts ingest`` or ``alerts run --once`` by
hand), and a queue run at ``now`` covers the changes stamped in (watermark, now] and moves
the watermarks to ``now``. A change stamped earlier but committed after another process's
queue run read would never be mailed. So the rule: **every section that stamps a change
time, commits the change and queues takes the queue turn first, and takes its ``now``
only once it holds it** (``with queue_turn(url).hold("what"): now = clock.now(); ...``).
Sections take turns across processes and threads; a section waits at most
``QUEUE_TURN_WAIT`` seconds and then fails with :class:`QueueTurnBusy` naming the holder.
Keep a section short: sending mail and fetching upstream feeds are never inside it.

* PostgreSQL: ``pg_advisory_lock`` (bounded by ``lock_timeout``) on a key of its own,
  keyed by the schema like the instance lock, on a connection per section.
* SQLite: an ``flock`` on ``<database>.queue.lock`` beside the database file.
* An in-memory database: a lock of the process only (nobody else can see it).
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


def _pg_holder(conn: Connection, key: int) -> str:
    """Who holds the session advisory lock ``key`` in this database, in words."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
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
    return f"{name or 'a session'} (server pid {pid}{where}, since {since:%Y-%m-%d %H:%M:%S %Z})"


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
        return _pg_holder(conn, self.key)

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


# -- the queue turn -----------------------------------------------------------

#: How long a section waits for the queue turn before it gives up and says who holds
#: it. A turn lasts one ingest-and-queue (upstream feeds are fetched before it is taken),
#: never a send.
QUEUE_TURN_WAIT = 120.0
QUEUE_TURN_POLL = 0.02


def _turn_holder(what: str) -> str:
    return f"alerts {what}, pid {os.getpid()} on {socket.gethostname()}"


class QueueTurnBusy(AlertsError):
    """The queue turn was not free within the wait: another section held it too long."""


def _turn_busy(holder: str, waited: float, where: str) -> QueueTurnBusy:
    return QueueTurnBusy(
        f"waited {waited:g}s for the queue turn, held by {holder}",
        where=where,
        hint="a change was not made; try again, and if it stays held, look at that process"
        " (a stuck 'alerts serve' cycle or command)",
    )


class QueueTurn:
    """One process's handle on the queue turn of one database: ``with turn.hold("what")``
    blocks (at most ``wait`` seconds) until no other section, in this process or
    another, holds it. Re-entrant within a thread. Threads of a process take turns on a
    process-local lock; processes on the database's (PostgreSQL advisory lock, or
    ``flock`` on ``<database>.queue.lock``)."""

    def __init__(self, shared: _SharedTurn | None, *, wait: float, clock: Clock):
        self.shared = shared
        self.wait = wait
        self.clock = clock
        self._local = threading.RLock()
        self._depth = 0
        self._holder = "another thread of this process"

    @contextlib.contextmanager
    def hold(self, what: str) -> Any:
        start = self.clock.monotonic()
        if not self._local.acquire(timeout=self.wait):
            raise _turn_busy(self._holder, self.wait, "queue turn")
        try:
            if self._depth == 0 and self.shared is not None:
                left = max(0.0, self.wait - (self.clock.monotonic() - start))
                self.shared.acquire(what, left, self.wait)
            self._depth += 1
            if self._depth == 1:
                self._holder = f"{_turn_holder(what)} (this process)"
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0 and self.shared is not None:
                    self.shared.release()
        finally:
            self._local.release()


class _SharedTurn(Protocol):
    def acquire(self, what: str, wait: float, waited: float) -> None: ...
    def release(self) -> None: ...


class _FileTurn:
    """``flock`` on a file beside the SQLite database, naming its holder."""

    def __init__(self, path: Path, clock: Clock):
        self.path = path
        self.clock = clock
        self._fd: int | None = None

    def acquire(self, what: str, wait: float, waited: float) -> None:
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
                    holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip()
                    os.close(fd)
                    raise _turn_busy(holder or "another process", waited, str(self.path)) from None
                time.sleep(QUEUE_TURN_POLL)
        os.ftruncate(fd, 0)
        since = self.clock.now().isoformat(timespec="seconds")
        os.pwrite(fd, f"{_turn_holder(what)} since {since}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


class _PostgresTurn:
    """``pg_advisory_lock`` (with a ``lock_timeout``) on a connection of its own, on a
    key of its own per schema (not the instance lock's)."""

    def __init__(self, database_url: str):
        self.engine = create_db_engine(database_url, poolclass=NullPool)
        self._conn: Connection | None = None
        self.key: int | None = None

    def acquire(self, what: str, wait: float, waited: float) -> None:
        from sqlalchemy.exc import OperationalError

        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one() or "public"
            digest = hashlib.sha256(f"area-alerts queue turn {schema}".encode()).digest()
            self.key = int.from_bytes(digest[:8], "big", signed=True)
            conn.execute(
                text("SELECT set_config('application_name', :name, false)"),
                {"name": _turn_holder(what)[:63]},
            )
            conn.execute(text(f"SET lock_timeout = {max(1, int(wait * 1000))}"))
            try:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            except OperationalError:
                conn.rollback()
                holder = _pg_holder(conn, self.key)
                raise _turn_busy(holder, waited, "database") from None
            conn.execute(text("SET lock_timeout = 0"))
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        with contextlib.suppress(SQLAlchemyError):
            self._conn.close()
        self._conn = None


_turns: dict[str, QueueTurn] = {}
_turns_lock = threading.Lock()


def queue_turn(database_url: str, *, wait: float = QUEUE_TURN_WAIT) -> QueueTurn:
    """The queue turn of the database at ``database_url``, one per process (so threads
    and nested sections share it). Processes wait for each other in real time: the
    system clock times the wait."""
    with _turns_lock:
        turn = _turns.get(database_url)
        if turn is None:
            url = make_url(database_url)
            shared: _SharedTurn | None
            if url.get_backend_name() == "postgresql":
                shared = _PostgresTurn(database_url)
            elif not url.database or url.database == ":memory:":
                shared = None
            else:
                path = Path(url.database)
                shared = _FileTurn(path.with_name(path.name + ".queue.lock"), SYSTEM)
            turn = _turns[database_url] = QueueTurn(shared, wait=wait, clock=SYSTEM)
        turn.wait = wait
        return turn
