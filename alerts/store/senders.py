"""Who is sending: names for sending processes and their workers, the advisory lock a
sender holds on PostgreSQL while it runs, and whether a holder on this machine is dead
(SQLite). :meth:`alerts.store.outbox.Outbox.reclaim_orphans` frees a dead sender's rows
by these.

The long-lived senders (``alerts serve``'s own, each ``alerts send --follow``, among them
serve's sender processes, and ``alerts web``'s) also say that they run, for ``alerts
status`` and ``/metrics`` (:class:`Senders`, ``store.senders``): a row each, its
``seen_at`` renewed every :data:`BEAT_SECONDS`, deleted when the sender stops. A sender
killed outright leaves its row, which then no longer counts as live: on PostgreSQL its
advisory lock (:data:`PROCESS_LOCKS`) is gone with its connection; on SQLite its pid is
gone, or its ``seen_at`` grew older than :data:`FRESH`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from alerts.store.schema import sender_processes

log = logging.getLogger(__name__)

#: First key of the senders' advisory locks (the two-key form, so that it can never be the
#: scheduler's one-key lock in alerts.locking).
SENDER_LOCKS = 0x61_6C_72_74
#: First key of the lock a long-lived sender holds for its whole life (PostgreSQL).
PROCESS_LOCKS = 0x61_6C_72_75
#: Seconds between renewals of a running sender's ``seen_at``.
BEAT_SECONDS = 15.0
#: A sender not seen for this long is not live (where neither lock nor pid can tell).
FRESH = timedelta(seconds=60)
#: How ``alerts status`` names each role.
ROLES = {
    "serve": "alerts serve's sender",
    "send": "alerts send --follow",
    "web": "alerts web's sender",
}


def sender_name() -> str:
    """A new name for one run of a sending process: host, pid and a nonce (pids are
    reused, and one process may run several senders at once)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{random.getrandbits(32):08x}"


def worker_name(sender: str, index: int) -> str:
    """``host:pid:nonce:index``: unique per worker, and says which sender holds a row."""
    return f"{sender}:{index}"


def holder_sender(holder: str) -> str | None:
    """The ``host:pid:nonce`` part of a worker name (None for a name of another form)."""
    parts = holder.split(":")
    return ":".join(parts[:3]) if len(parts) == 4 and parts[1].isdigit() else None


def sender_lock_key(sender: str) -> int:
    """The second key of a sender's advisory lock (a signed 32-bit int)."""
    return int.from_bytes(
        hashlib.blake2b(sender.encode(), digest_size=4).digest(), "big", signed=True
    )


def dead_here(holder: str, host: str) -> bool:
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != host or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class SenderProcess:
    """A long-lived sender that runs: its name (``host:pid:nonce``), role (see
    :data:`ROLES`), host and pid, since when it runs and when it last said so."""

    name: str
    role: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


class Senders:
    """The long-lived senders that run (``store.senders``)."""

    def __init__(self, engine: Engine, held_engine: Callable[[], Engine]) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        #: Connections held for a sender's life (its lock), off the shared pool.
        self.held_engine = held_engine

    @contextlib.contextmanager
    def running(self, role: str, now: Callable[[], datetime]) -> Iterator[SenderProcess]:
        """Say that a sender of ``role`` runs in this process for as long as the block
        runs: a row, renewed every :data:`BEAT_SECONDS` by a thread of its own, deleted
        at the end (and, on PostgreSQL, a lock held on a connection of its own)."""
        started = now()
        me = SenderProcess(
            sender_name(), role, socket.gethostname()[:60], os.getpid(), started, started
        )
        with contextlib.ExitStack() as stack:
            if not self.sqlite:
                conn = stack.enter_context(
                    self.held_engine().connect().execution_options(isolation_level="AUTOCOMMIT")
                )
                _take_lock(conn, me.name)
            self._forget_dead(now())
            with self.engine.begin() as write:
                write.execute(insert(sender_processes).values(**me.__dict__))
            stop = threading.Event()
            beat = threading.Thread(
                target=self._beat, args=(me.name, now, stop), name="alerts-sender-beat", daemon=True
            )
            beat.start()
            try:
                yield me
            finally:
                stop.set()
                beat.join(10)
                try:
                    with self.engine.begin() as write:
                        write.execute(
                            delete(sender_processes).where(sender_processes.c.name == me.name)
                        )
                except SQLAlchemyError as exc:  # the row no longer counts once we are gone
                    log.warning("cannot say that sender %s stopped: %s", me.name, _first(exc))

    def _beat(self, name: str, now: Callable[[], datetime], stop: threading.Event) -> None:
        while not stop.wait(BEAT_SECONDS):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(sender_processes)
                        .where(sender_processes.c.name == name)
                        .values(seen_at=now())
                    )
            except SQLAlchemyError as exc:  # the next beat tries again
                log.warning("cannot say that sender %s runs: %s", name, _first(exc))

    def live(self, now: datetime) -> list[SenderProcess]:
        """The senders that run, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sender_processes).order_by(
                    sender_processes.c.started_at, sender_processes.c.name
                )
            ).mappings()
            found = [SenderProcess(**row) for row in rows]
        if not found:
            return []
        if self.sqlite:
            host = socket.gethostname()[:60]
            return [s for s in found if now - s.seen_at <= FRESH and not dead_here(s.name, host)]
        with self.held_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return [s for s in found if not _lock_free(conn, s.name)]

    def _forget_dead(self, now: datetime) -> None:
        """Delete the rows of senders that no longer run (killed outright)."""
        with self.engine.connect() as conn:
            names = set(conn.execute(select(sender_processes.c.name)).scalars())
        dead = names - {s.name for s in self.live(now)}
        if dead:
            with self.engine.begin() as conn:
                conn.execute(delete(sender_processes).where(sender_processes.c.name.in_(dead)))


def _lock_params(name: str) -> dict[str, int]:
    return {"ns": PROCESS_LOCKS, "key": sender_lock_key(name)}


def _take_lock(conn: Any, name: str, tries: int = 50) -> None:
    """Take ``name``'s lock for the life of ``conn``. :func:`_lock_free` holds it for a
    moment to look, so a miss is tried again; a 32-bit key of a random name is missed for
    good only where another sender's name hashed the same (this one then counts as live
    while that one runs)."""
    params = _lock_params(name)
    for _ in range(tries):
        if conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar_one():
            return
        time.sleep(0.05)
    log.warning(
        "sender lock %s is held by another sender; %s is listed as running only while that"
        " one runs",
        params,
        name,
    )


def _lock_free(conn: Any, name: str) -> bool:
    """Is ``name``'s lock free (its sender gone)? Takes it to see, and lets it go."""
    params = _lock_params(name)
    if conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar_one():
        conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
        return True
    return False


def _first(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
