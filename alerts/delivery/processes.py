"""Sender processes that ``alerts serve`` runs beside its own sender
(``delivery.sender_processes``).

One Python process's threads share one core (the GIL), and on PostgreSQL a large urgent
alert is queued and sent at once: the queueing, building and sending then contend for
that core while the other stands idle. So ``alerts serve`` starts ``alerts send
--follow`` children, each a process of its own with its own connections, woken whenever
mail is queued; the outbox's claims keep every message to one of them, and each marks
what the relay accepted as it goes, so a child killed outright repeats at most one
message per connection, as any sender does.

The children belong to this ``alerts serve``:

* each reads its standard input, a pipe from this process, and stops (finishing the
  message in flight) when it reaches the end: this process ended, even by kill -9;
* ``stop()`` sends each SIGTERM and waits for it to finish its message in flight;
* one that ends by itself is logged with its exit status and started again, after a
  backoff that doubles from 1 s to a minute while they keep ending quickly.

On SQLite (one writer at a time) and with the Maildir the default is none: more
processes would only wait for each other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from alerts.config import DeliveryConfig

# Serve's own logger: its lines are serve's, shown at INFO as serve's are (serve quiets
# alerts.delivery's own lines to warnings).
log = logging.getLogger("alerts.scheduler")

#: ``auto`` on PostgreSQL: one process per core beside serve's own, at most this many.
AUTO_MAX = 3
#: A child that ran this long before ending resets the backoff.
STEADY_SECONDS = 60.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: Seconds a child is given to finish its message in flight after SIGTERM.
STOP_GRACE = 60.0


def sender_process_count(
    delivery: DeliveryConfig, database_url: str, cpus: int | None = None
) -> int:
    """How many ``alerts send --follow`` children serve runs: the setting, or for
    ``auto`` one per core beyond the first (at most :data:`AUTO_MAX`) on PostgreSQL with
    a relay, and none otherwise."""
    setting = delivery.sender_processes
    if setting != "auto":
        return setting
    if delivery.backend != "smtp" or make_url(database_url).get_backend_name() != "postgresql":
        return 0
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(0, min(cores - 1, AUTO_MAX))


def connection_shares(delivery: DeliveryConfig, children: int) -> list[int | None]:
    """Connections for serve's own sender, then for each child: each process opens up to
    ``delivery.smtp.connections``, as every sender process does (``alerts send
    --follow`` too), so the relay may get that many times the processes at once. A
    sender's connections wait on the relay and the database more than on the CPU: at
    100,000 messages 4 + 4 reached the relay in 100 s where 2 + 2 took 121 s
    (benchmarks/latency.py). ``None``: the sender's default (the Maildir's one writer)."""
    if delivery.backend != "smtp" or delivery.smtp is None:
        return [None] + [1] * children
    return [delivery.smtp.connections] * (1 + children)


def child_command(
    config_file: Path, log_format: str, verbosity: Sequence[str], workers: int
) -> list[str]:
    """The command line of one child: this interpreter, the same config file and log
    format, ``send --follow --workers N --until-stdin-closes``."""
    return [
        sys.executable,
        "-m",
        "alerts",
        "--log-format",
        log_format,
        *verbosity,
        "--config",
        str(config_file.resolve()),
        "send",
        "--follow",
        "--workers",
        str(workers),
        "--until-stdin-closes",
    ]


class SenderProcesses:
    """A child for each of ``commands``, kept running until :meth:`stop`."""

    def __init__(
        self,
        commands: list[list[str]],
        stopping: threading.Event,
        *,
        monotonic: Callable[[], float],
        poll_seconds: float = 1.0,
    ):
        """``stopping``: serve's stop, set as soon as a signal comes, so a child that a
        service manager stopped beside serve (systemd signals the whole group) is not
        started again while serve finishes."""
        self.commands = commands
        self.count = count = len(commands)  # slots, fixed for the process's life
        self.serve_stopping = stopping
        self.monotonic = monotonic
        self.poll_seconds = poll_seconds
        self.children: list[subprocess.Popen[bytes] | None] = [None] * count
        self._started_at = [0.0] * count
        self._backoff = [BACKOFF_FIRST] * count
        self._next_start = [0.0] * count
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> SenderProcesses:
        if not self.count:
            return self
        with self._lock:
            for slot in range(self.count):
                self._spawn(slot)
        self._watcher = threading.Thread(target=self._watch, name="sender-processes", daemon=True)
        self._watcher.start()
        return self

    def _spawn(self, slot: int) -> None:
        # stdin: the pipe whose end tells the child this process is gone; stdout and
        # stderr: this process's, so its lines go where serve's go (the journal). A
        # session of its own: Ctrl-C at a terminal reaches serve alone, which stops it.
        child = subprocess.Popen(self.commands[slot], stdin=subprocess.PIPE, start_new_session=True)
        self.children[slot] = child
        self._started_at[slot] = self.monotonic()
        log.info("sender process %d started (pid %d)", slot + 1, child.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            with self._lock:
                if self._stopping.is_set() or self.serve_stopping.is_set():
                    return
                now = self.monotonic()
                for slot, child in enumerate(self.children):
                    if child is None:
                        if now >= self._next_start[slot]:
                            self._spawn(slot)
                        continue
                    status = child.poll()
                    if status is None:
                        continue
                    ran = now - self._started_at[slot]
                    if ran >= STEADY_SECONDS:
                        self._backoff[slot] = BACKOFF_FIRST
                    wait = self._backoff[slot]
                    self._backoff[slot] = min(wait * 2, BACKOFF_MAX)
                    _close(child)
                    self.children[slot] = None
                    self._next_start[slot] = now + wait
                    log.warning(
                        "sender process %d (pid %d) ended by itself with %s after %.0f s;"
                        " starting another in %g s (its log lines above say why)",
                        slot + 1,
                        child.pid,
                        _status(status),
                        ran,
                        wait,
                    )

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM to each child: it finishes the message in flight and leaves the rest
        queued; one still running after ``grace`` seconds is killed."""
        self._stopping.set()
        with self._lock:
            children = [child for child in self.children if child is not None]
            self.children = [None] * self.count
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = self.monotonic() + grace
        for child in children:
            try:
                child.wait(max(0.0, deadline - self.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "sender process (pid %d) still running %g s after SIGTERM: killed",
                    child.pid,
                    grace,
                )
                child.kill()
                child.wait()
            _close(child)
        if self._watcher is not None:
            self._watcher.join(10)


def _close(child: subprocess.Popen[bytes]) -> None:
    if child.stdin is not None:
        with contextlib.suppress(OSError):  # its end is gone already
            child.stdin.close()


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
