"""Worker threads that drain the outbox: claim a batch, build, sign, send each message,
and write the outcomes back in one transaction per batch.

Bookkeeping is batched (one UPDATE for up to ``batch`` sent rows, or whatever finished
in ``flush_every`` seconds) because one commit per message would cost more than the
SMTP exchange itself. Nothing is written as sent before the relay accepted it: a crash
between acceptance and the flush leaves those rows claimed, and they go again after
the lease, with the same Message-ID.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from alerts.delivery.base import (
    Connection,
    MessageBuilder,
    MessageRefused,
    RecipientRefused,
    RelayError,
    RelayUnavailable,
    Sender,
    TemporaryFailure,
)
from alerts.delivery.dkim import DkimSigner
from alerts.errors import AlertsError
from alerts.store import StoreError
from alerts.store.outbox import Claimed, Outbox, Outcomes, Recorded, worker_name
from alerts.types import SendReport

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
#: Consecutive failures to open a session after which a worker gives up for this run.
UNAVAILABLE_LIMIT = 3


@dataclass
class Dispatcher:
    """Everything a run needs, configured once; :meth:`run` drains the outbox."""

    outbox: Outbox
    builder: MessageBuilder
    sender: Sender
    envelope_from: str
    signer: DkimSigner | None = None
    max_bounces: int = 3
    #: Rows claimed (and flushed) at a time per worker.
    batch: int = 50
    flush_every: float = 0.2
    #: Renew the lease when less than this is left of it.
    renew_margin: timedelta = timedelta(minutes=2)
    record_bounce: Callable[[int], bool] | None = None
    _builds: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def run(
        self,
        *,
        workers: int,
        clock: Callable[[], datetime],
        stop: threading.Event | None = None,
        progress: Callable[[int], Progress] | None = None,
    ) -> SendReport:
        stop = stop or threading.Event()
        report = SendReport()
        self.outbox.reclaim_orphans()
        advance = progress(self.outbox.due(clock())) if progress else None
        lock = threading.Lock()
        failures: list[BaseException] = []

        def work(index: int) -> None:
            try:
                _Worker(self, worker_name(index), clock, stop, report, lock, advance).run()
            except SQLAlchemyError as exc:
                failures.append(
                    StoreError(
                        f"database error while sending: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
                        where="database",
                        hint="messages that were in flight go again after their lease",
                    )
                )
                stop.set()
            except BaseException as exc:  # re-raised in the calling thread below
                failures.append(exc)
                stop.set()

        threads = [threading.Thread(target=work, args=(i,), name=f"alerts-send-{i}") for i in range(max(1, workers))]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-build") as builds:
            self._builds = builds
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        relay_errors = [f for f in failures if isinstance(f, RelayError)]
        if relay_errors:
            raise relay_errors[0]
        if failures:
            raise failures[0]
        return report


class _Worker:
    def __init__(
        self,
        dispatcher: Dispatcher,
        name: str,
        clock: Callable[[], datetime],
        stop: threading.Event,
        report: SendReport,
        lock: threading.Lock,
        advance: Progress | None,
    ):
        self.d = dispatcher
        self.name = name
        self.clock = clock
        self.stop = stop
        self.report = report
        self.lock = lock
        self.advance = advance
        self.outcomes = Outcomes()
        self.unflushed_since = time.monotonic()
        #: Why the last session could not be opened, until one is.
        self.unreachable: str | None = None

    def run(self) -> None:
        connection = self.d.sender.connection()
        try:
            if self.stop.is_set():
                return
            batch, suppressed = self.d.outbox.claim(self.name, self.d.batch, self.clock())
            self._count(suppressed=suppressed)
            while batch or suppressed:
                if batch and not self._send_batch(connection, batch):
                    return
                if self.stop.is_set():
                    self._flush()
                    return
                batch, suppressed = self._flush_and_claim()
        finally:
            connection.close()
            if self.unreachable:
                # The run ends with the relay out of reach: say so, or the messages it
                # deferred would look like an ordinary retry.
                self._error(
                    f"relay unavailable: {self.unreachable} (the messages stay queued and are retried;"
                    " check that the relay is up and delivery.smtp.host and port)"
                )

    def _send_batch(self, connection: Connection, batch: list[Claimed]) -> bool:
        """Send a claimed batch; False when this worker should stop."""
        lease_until = self.clock() + self.d.outbox.lease
        unavailable = 0
        # Each message is built (and signed) by the build thread while the one before it
        # is on the wire, so this connection spends its time in SMTP, not in templates.
        upcoming: Future[bytes] | None = self._build(batch[0])
        for position, claimed in enumerate(batch):
            built = upcoming
            assert built is not None  # one is always submitted for the current position
            upcoming = self._build(batch[position + 1]) if position + 1 < len(batch) else None
            if self.stop.is_set():
                return self._give_back(batch[position:], stopped=True)
            now = self.clock()
            if lease_until - now < self.d.renew_margin:
                held = self.d.outbox.renew(self.name, [c.item.outbox_id for c in batch[position:]], now)
                lease_until = now + self.d.outbox.lease
                if claimed.item.outbox_id not in held:
                    continue  # another worker took it over; it is theirs to send
            try:
                message = built.result()
                connection.send(self.d.envelope_from, claimed.item.email, message)
            except RelayError:
                self._flush()
                self._give_back(batch[position:], stopped=False)
                raise
            except RelayUnavailable as exc:
                unavailable += 1
                self.unreachable = str(exc)
                self.outcomes.deferred.append((claimed, str(exc)))
                if unavailable >= UNAVAILABLE_LIMIT:
                    self._flush()
                    return self._give_back(batch[position + 1 :], stopped=False)
            except TemporaryFailure as exc:
                self.outcomes.deferred.append((claimed, str(exc)))
            except RecipientRefused as exc:
                self.outcomes.bounced.append((claimed, str(exc)))
            except MessageRefused as exc:
                self.outcomes.failed.append((claimed, str(exc)))
            except _BuildError as exc:
                self.outcomes.deferred.append((claimed, str(exc)))
            else:
                unavailable = 0
                self.unreachable = None
                self.outcomes.sent.append(claimed.item.outbox_id)
            if time.monotonic() - self.unflushed_since >= self.d.flush_every:
                self._flush()
        return True  # the caller records the rest together with the next claim

    def _build(self, claimed: Claimed) -> Future[bytes]:
        assert self.d._builds is not None
        return self.d._builds.submit(self._message, claimed)

    def _message(self, claimed: Claimed) -> bytes:
        try:
            message = crlf(self.d.builder.build(claimed.item))
            if self.d.signer is not None:
                message = self.d.signer.sign(message)
        except AlertsError as exc:
            # The row itself is bad (an address, a Message-ID, a digest gone): for good.
            raise MessageRefused(f"cannot build the message: {exc}") from None
        except Exception as exc:
            # Anything else may pass (a locked database...): retried with backoff, and
            # failed after max_attempts.
            log.exception("cannot build message %s", claimed.item.message_id)
            raise _BuildError(f"cannot build the message: {exc.__class__.__name__}: {exc}") from None
        return message

    def _flush(self) -> None:
        self.unflushed_since = time.monotonic()
        if not self.outcomes:
            return
        outcomes, self.outcomes = self.outcomes, Outcomes()
        self._counted(outcomes, self.d.outbox.record(self.name, outcomes, self.clock()))

    def _flush_and_claim(self) -> tuple[list[Claimed], int]:
        self.unflushed_since = time.monotonic()
        outcomes, self.outcomes = self.outcomes, Outcomes()
        if not outcomes:
            batch, suppressed = self.d.outbox.claim(self.name, self.d.batch, self.clock())
        else:
            recorded, batch, suppressed = self.d.outbox.record_and_claim(
                self.name, outcomes, self.d.batch, self.clock()
            )
            self._counted(outcomes, recorded)
        self._count(suppressed=suppressed)
        return batch, suppressed

    def _counted(self, outcomes: Outcomes, recorded: Recorded) -> None:
        newly_suppressed = 0
        for subscriber_id in recorded.bounced_subscribers:
            if self.d.record_bounce and self.d.record_bounce(subscriber_id):
                newly_suppressed += 1
                self._count(suppressed=self.d.outbox.suppress_queued(subscriber_id))
        self._count(
            sent=recorded.sent,
            deferred=recorded.deferred,
            failed=recorded.failed,
            bounced=len(recorded.bounced_subscribers),
            suppressed_addresses=newly_suppressed,
        )
        if self.advance:
            self.advance(len(outcomes))

    def _give_back(self, rest: list[Claimed], *, stopped: bool) -> bool:
        self._flush()
        if rest:
            self.d.outbox.release(self.name, [c.item.outbox_id for c in rest])
        if stopped:
            with self.lock:
                self.report.stopped = True
        return False

    def _error(self, text: str) -> None:
        with self.lock:
            if text not in self.report.errors:  # workers on one relay meet the same trouble
                self.report.errors.append(text)

    def _count(self, **counts: int) -> None:
        if not any(counts.values()):
            return
        with self.lock:
            for key, value in counts.items():
                setattr(self.report, key, getattr(self.report, key) + value)


class _BuildError(Exception):
    pass


def crlf(message: bytes) -> bytes:
    """SMTP wants CRLF line ends (and DKIM signs them); builders may give bare LF."""
    if message.count(b"\n") == message.count(b"\r\n"):
        return message
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
