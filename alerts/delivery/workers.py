"""The dispatcher: worker threads (:mod:`alerts.delivery.worker`) that drain the outbox: claim a batch, build, sign, send each message,
and write the outcomes back.

A message the relay accepted is marked sent at once, in a commit of its own that does
not wait for the disk (:class:`~alerts.store.outbox.SentMarks`), before the
connection carries the next: a sender killed at any instant repeats at most one message
per connection. Nothing is written as sent before the relay accepted it. The other
outcomes (deferred, bounced, failed) are written in batches (up to ``batch`` rows, or
whatever finished in ``flush_every`` seconds): losing them to a crash sends nothing
twice, the message is only tried again.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from alerts.clock import Clock
from alerts.delivery.base import (
    MessageBuilder,
    RelayError,
    Sender,
)
from alerts.delivery.dkim import DkimSigner
from alerts.delivery.queue import SendQueue
from alerts.delivery.returns import ReturnPaths
from alerts.delivery.worker import Progress, Worker, crlf
from alerts.store import StoreError
from alerts.store.relay import RelayPause
from alerts.store.senders import sender_name, worker_name
from alerts.types import SendReport

log = logging.getLogger(__name__)


#: How much lower (nice) the build threads run than the sending threads.
BUILD_NICENESS = 10


def lower_priority() -> None:
    """Lower this thread's scheduling priority by :data:`BUILD_NICENESS` (Linux, where
    niceness is per thread; elsewhere ``setpriority`` would take the thread id for a
    process id, so nothing is done). With DKIM on one busy core, signing at the same
    priority as the sending threads left the relay waiting for the next command: the
    signed time went from 1.32x to 1.17x the unsigned one, alternating both in the same
    rounds (median of 5, 2026-12-07), and ``benchmarks/fanout.py --runs 5 --dkim`` gives
    1.22x (it was 1.35-1.41x that morning)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(
            os.PRIO_PROCESS,
            threading.get_native_id(),
            min(os.getpriority(os.PRIO_PROCESS, 0) + BUILD_NICENESS, 19),
        )
    except OSError as exc:  # a sandbox that forbids it: the builds run as they are
        log.debug("cannot lower the build thread's priority: %s", exc)


@dataclass
class Dispatcher:
    """Everything a run needs, configured once; :meth:`run` drains the outbox."""

    outbox: SendQueue
    builder: MessageBuilder
    sender: Sender
    envelope_from: str
    signer: DkimSigner | None = None
    #: Each message's own envelope sender (VERP), when configured.
    return_paths: ReturnPaths | None = None
    max_bounces: int = 3
    #: Tries again after a body got no final reply, and the first wait (doubling).
    max_unanswered: int = 2
    unanswered_base: timedelta = timedelta(minutes=10)
    #: Remembers the relay's pauses across runs and processes (None: nothing is).
    pauses: RelayPauses | None = None
    #: Rows claimed (and flushed) at a time per worker; a claim that came back full
    #: doubles the next, up to ``max_batch`` (a large send makes fewer claims: on
    #: PostgreSQL each walks the due index past rows just claimed or sent, tens of ms at
    #: 100,000 queued), and one that did not goes back to ``batch``.
    batch: int = 50
    max_batch: int = 200
    flush_every: float = 0.2
    #: Renew the lease when less than this is left of it.
    renew_margin: timedelta = timedelta(minutes=2)
    record_bounce: Callable[[int], bool] | None = None
    #: Mark each accepted message sent at once (False: with the batch; only for
    #: benchmarks/fanout.py --durability, which measures what the first costs).
    mark_each: bool = True
    _builds: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _paused: RelayPause | None = field(default=None, init=False, repr=False)
    _pausing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _pauses_before: bool = field(default=False, init=False, repr=False)

    def pause(self, reply: str, now: datetime) -> datetime:
        """Record the relay's pause (once per run); when it ends."""
        with self._pausing:
            if self._paused is None:
                if self.pauses is None:
                    return now + self.outbox.retry.delay(1)
                self._paused = self.pauses.pause(reply, now)
                log.warning(
                    "the relay asked to wait, sending paused until %s: %s",
                    self._paused.until.isoformat(),
                    reply,
                )
            return self._paused.until

    def recovered(self) -> None:
        """A message was accepted: a pause in a row ends (once per run, and only when
        one was recorded)."""
        if self._pauses_before and self.pauses is not None:
            with self._pausing:
                if self._pauses_before:
                    self._pauses_before = False
                    self.pauses.recovered()

    def run(
        self,
        *,
        workers: int,
        clock: Clock,
        now: datetime | None = None,
        stop: threading.Event | None = None,
        progress: Callable[[int], Progress] | None = None,
    ) -> SendReport:
        # The workers stop together when this run must end (the relay paused, refused us,
        # a database error); that must not set the caller's event, which may be a
        # long-lived sender's own (alerts serve's drainer would stop for good).
        run_stop = RunStop(stop or threading.Event())
        report = SendReport()
        # ``now`` pins the instant a run sends as of (a run for a given moment); otherwise
        # business time moves on as the run does (retry times, acceptance stamps).
        at: Callable[[], datetime] = (lambda: now) if now is not None else clock.now
        if self.pauses is not None:
            paused = self.pauses.current(at())
            if paused is not None and paused.until > at():
                # The relay asked every sender to wait: nothing is claimed until then.
                report.paused_until = paused.until.isoformat()
                report.relay_reply = paused.reply
                return report
            self._pauses_before = paused is not None
        self._paused = None
        sender = sender_name()
        self.outbox.reclaim_orphans()
        advance = progress(self.outbox.due(at())) if progress else None
        lock = threading.Lock()
        failures: list[BaseException] = []

        def work(index: int) -> None:
            try:
                Worker(
                    self,
                    worker_name(sender, index),
                    at,
                    clock.monotonic,
                    run_stop,
                    report,
                    lock,
                    advance,
                ).run()
            except SQLAlchemyError as exc:
                failures.append(
                    StoreError(
                        f"database error while sending: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
                        where="database",
                        hint="messages that were in flight go again after their lease",
                    )
                )
                run_stop.set()
            except BaseException as exc:  # re-raised in the calling thread below
                failures.append(exc)
                run_stop.set()

        threads = [
            threading.Thread(target=work, args=(i,), name=f"alerts-send-{i}")
            for i in range(max(1, workers))
        ]
        # One build thread per worker: each worker's next message is built and signed
        # while its current one is on the wire (OpenSSL signs without holding the GIL).
        # Build threads run at a lower priority, so that a reply from the relay is
        # answered at once, not after a signature: the connections stay busy.
        with (
            self.outbox.alive(sender),
            ThreadPoolExecutor(
                max_workers=len(threads),
                thread_name_prefix="alerts-build",
                initializer=lower_priority,
            ) as builds,
        ):
            self._builds = builds
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if self._paused is not None:
            report.paused_until = self._paused.until.isoformat()
            report.relay_reply = self._paused.reply
            report.stopped = False
        relay_errors = [f for f in failures if isinstance(f, RelayError)]
        if relay_errors:
            raise relay_errors[0]
        if failures:
            raise failures[0]
        return report


class RunStop:
    """A run's stop: set by the caller's event (SIGTERM) or by the run itself."""

    def __init__(self, outer: threading.Event):
        self.outer = outer
        self.inner = threading.Event()

    def is_set(self) -> bool:
        return self.inner.is_set() or self.outer.is_set()

    def set(self) -> None:
        self.inner.set()


class RelayPauses(Protocol):
    """Where a relay's pause is remembered (:mod:`alerts.store.relay`, bound to a relay)."""

    def current(self, now: datetime) -> RelayPause | None: ...

    def pause(self, reply: str, now: datetime) -> RelayPause: ...

    def recovered(self) -> None: ...


__all__ = ["Dispatcher", "Progress", "RelayPauses", "SendReport", "crlf"]
