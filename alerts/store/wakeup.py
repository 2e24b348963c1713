"""Waking senders when mail is queued, across processes.

Whoever queues mail (the pipeline after an ingest, the web app after a sign-up) calls
:func:`notify`; a sender (``alerts serve``, ``alerts web``, ``alerts send --follow``)
blocks in :meth:`Listener.wait` and starts on it at once instead of at its next poll.

* PostgreSQL: ``NOTIFY alerts_outbox``; listeners hold a connection that ``LISTEN``\\ s.
* SQLite: each listener binds a Unix datagram socket in a folder beside the database
  (``alerts.db.wake/``); a notifier sends one byte to every socket there. A socket left
  by a process that died refuses the byte and is removed. Sending costs a directory
  listing and a syscall per listener; with no listener, nothing waits on it.
* An in-memory SQLite database lives in one process: a condition variable.

A wake-up is a hint, never the only trigger: a sender also looks at the outbox on a
timer, so a lost wake-up (a listener reconnecting) delays mail, never loses it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import select
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "alerts_outbox"
#: Longest path a Unix socket address may have (Linux: 108 bytes with the NUL).
MAX_SOCKET_PATH = 100


class Listener(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block until woken (True) or ``timeout`` seconds passed (False)."""

    def close(self) -> None: ...


class Channel(Protocol):
    def notify(self) -> None:
        """Wake every listener (no error if there is none)."""

    def listen(self) -> Listener:
        """A listener, subscribed from now on."""


def channel_for(database_url: str) -> Channel:
    """The wake-up channel of the database at ``database_url``."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresChannel(database_url)
    database = url.database
    if not database or database == ":memory:":
        return _LOCAL.setdefault(database_url, LocalChannel())
    return SocketChannel(socket_folder(Path(database)))


def notify(database: str | Engine) -> None:
    """Wake the senders of this database (its URL or engine). Never raises: mail queued
    without a wake-up still goes at the senders' next look."""
    if isinstance(database, Engine):
        database = database.url.render_as_string(hide_password=False)
    try:
        channel_for(database).notify()
    except Exception as exc:  # a hint only; the mail is safely queued
        log.warning(
            "could not wake the senders (%s); they pick the mail up at their next look", exc
        )


# -- SQLite: datagram sockets in a folder --------------------------------------------


def socket_folder(database: Path) -> Path:
    """``<database>.wake/`` beside the database file; where that path is too long for a
    socket address, a folder named after it in the temporary directory."""
    folder = Path(f"{database.resolve()}.wake")
    if len(str(folder)) + 24 <= MAX_SOCKET_PATH:
        return folder
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"alerts-wake-{digest}"


class SocketChannel:
    def __init__(self, folder: Path):
        self.folder = folder

    def notify(self) -> None:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return  # no listener has ever been here
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            for name in names:
                if not name.endswith(".sock"):
                    continue
                path = str(self.folder / name)
                try:
                    sender.sendto(b"!", path)
                except BlockingIOError:
                    pass  # its queue is full: it has wake-ups waiting already
                except (ConnectionRefusedError, FileNotFoundError):
                    with contextlib.suppress(OSError):
                        os.unlink(path)  # left by a process that died
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EPERM):
                        raise

    def listen(self) -> SocketListener:
        return SocketListener(self.folder)


class SocketListener:
    def __init__(self, folder: Path):
        folder.mkdir(mode=0o770, parents=True, exist_ok=True)
        self.path = (
            folder / f"{os.getpid()}-{threading.get_ident() % 100000}-{secrets.token_hex(3)}.sock"
        )
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o660)  # the web app and the scheduler may run as different users
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        readable, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        if not readable:
            return False
        with contextlib.suppress(BlockingIOError):
            while self.sock.recv(64):  # every wake-up waiting counts as one
                pass
        return True

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


# -- PostgreSQL: LISTEN / NOTIFY -----------------------------------------------------


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresChannel:
    def __init__(self, database_url: str):
        self.url = _libpq_url(database_url)

    def notify(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"NOTIFY {CHANNEL}")

    def listen(self) -> PostgresListener:
        return PostgresListener(self.url)


class PostgresListener:
    """A connection that LISTENs; reconnects after the server went away (and then
    reports a wake-up, since notifications may have been missed meanwhile)."""

    def __init__(self, url: str):
        self.url = url
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._connect()

    def _connect(self) -> None:
        self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        self.conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self._connect()
                return True
            assert self.conn is not None
            woken = any(True for _ in self.conn.notifies(timeout=max(timeout, 0.0), stop_after=1))
            if woken:
                for _ in self.conn.notifies(timeout=0):  # the rest that came together
                    pass
            return woken
        except psycopg.OperationalError as exc:
            log.warning("lost the wake-up connection to PostgreSQL (%s); reconnecting", exc)
            self.close()
            time.sleep(min(timeout, 1.0))
            return True

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None


# -- one process -----------------------------------------------------------------------


class LocalChannel:
    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()

    def listen(self) -> LocalListener:
        return LocalListener(self)


class LocalListener:
    def __init__(self, channel: LocalChannel):
        self.channel = channel
        self.seen = channel.generation

    def wait(self, timeout: float) -> bool:
        with self.channel.condition:
            woken = self.channel.condition.wait_for(
                lambda: self.channel.generation != self.seen, max(timeout, 0.0)
            )
            self.seen = self.channel.generation
        return woken

    def close(self) -> None:
        pass


_LOCAL: dict[str, LocalChannel] = {}
