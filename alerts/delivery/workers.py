"""Worker threads that drain the outbox: claim a batch, build, sign, send each message,
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
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn, Protocol

from sqlalchemy.exc import SQLAlchemyError

from alerts.clock import Clock
from alerts.delivery.base import (
    Connection,
    DeliveryFailure,
    MessageBuilder,
    MessageRefused,
    NoFinalReply,
    RelayError,
    RelayUnavailable,
    Sender,
    SenderRefused,
    SessionLost,
    Stage,
)
from alerts.delivery.dkim import DkimSigner
from alerts.delivery.policy import ON_THE_WIRE, Charge, Event, Limits, State, decide
from alerts.delivery.queue import SendQueue
from alerts.delivery.returns import ReturnPaths
from alerts.delivery.verdicts import PAST_MAIL_FROM, Condemned, Decided, Verdicts
from alerts.errors import AlertsError
from alerts.store import StoreError
from alerts.store.marks import SentMarks
from alerts.store.outbox import (
    Claimed,
    Outcomes,
    Recorded,
)
from alerts.store.relay import RelayPause
from alerts.store.senders import sender_name, worker_name
from alerts.types import SendReport

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
#: Consecutive failures to open a session after which a worker gives up for this run.
UNAVAILABLE_LIMIT = 3
#: Seconds between looks for rows held by senders that died (see Outbox.reclaim_orphans).
RECLAIM_EVERY = 5.0


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
    #: Rows claimed (and flushed) at a time per worker.
    batch: int = 50
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
        stop = stop or threading.Event()
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
                _Worker(
                    self,
                    worker_name(sender, index),
                    at,
                    clock.monotonic,
                    stop,
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
                stop.set()
            except BaseException as exc:  # re-raised in the calling thread below
                failures.append(exc)
                stop.set()

        threads = [
            threading.Thread(target=work, args=(i,), name=f"alerts-send-{i}")
            for i in range(max(1, workers))
        ]
        # One build thread per worker: each worker's next message is built and signed
        # while its current one is on the wire (OpenSSL signs without holding the GIL).
        with (
            self.outbox.alive(sender),
            ThreadPoolExecutor(
                max_workers=len(threads), thread_name_prefix="alerts-build"
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


class RelayPauses(Protocol):
    """Where a relay's pause is remembered (:mod:`alerts.store.relay`, bound to a relay)."""

    def current(self, now: datetime) -> RelayPause | None: ...

    def pause(self, reply: str, now: datetime) -> RelayPause: ...

    def recovered(self) -> None: ...


class _Worker:
    """One thread with one connection: claims batches, sends them, and writes what the
    lifecycle table (:mod:`alerts.delivery.policy`) says each event does."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        name: str,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        stop: threading.Event,
        report: SendReport,
        lock: threading.Lock,
        advance: Progress | None,
    ):
        self.d = dispatcher
        self.name = name
        self.clock = clock
        self.monotonic = monotonic
        self.stop = stop
        self.report = report
        self.lock = lock
        self.advance = advance
        self.outcomes = Outcomes()
        self.unflushed_since = self.monotonic()
        #: Why the last session could not be opened, until one is.
        self.unreachable: str | None = None
        #: What each reply meant, once later messages show it (see verdicts.py).
        self.verdicts: Verdicts[Claimed] = Verdicts()
        #: Sessions in a row that failed for the relay's sake.
        self.unavailable = 0
        #: Claimed rows not tried, to release with the next flush.
        self.given_back: list[Claimed] = []
        self.marks: SentMarks | None = None
        self.reclaimed_at = self.monotonic()
        self.limits = Limits(
            max_attempts=dispatcher.outbox.retry.max_attempts,
            max_unanswered=dispatcher.max_unanswered,
        )

    def run(self) -> None:
        connection = self.d.sender.connection()
        if self.d.mark_each:
            self.marks = self.d.outbox.sent_marks(self.monotonic)
        try:
            if self.stop.is_set():
                return
            batch, suppressed = self.d.outbox.claim(self.name, self.d.batch, self.clock())
            self._count(suppressed=suppressed)
            while batch or suppressed:
                if batch and not self._send_batch(connection, batch):
                    return
                if self.stop.is_set():
                    self._finish()
                    self._flush()
                    return
                batch, suppressed = self._flush_and_claim()
            self._finish()
            self._flush()
        finally:
            connection.close()
            if self.marks is not None:
                self.marks.close()
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
        # Each message is built and DKIM-signed by a build thread while the one before it
        # is on the wire, so this connection spends its time in SMTP, not in templates
        # and RSA.
        upcoming: Future[bytes] | None = self._build(batch[0])
        for position, claimed in enumerate(batch):
            built = upcoming
            assert built is not None  # one is always submitted for the current position
            upcoming = self._build(batch[position + 1]) if position + 1 < len(batch) else None
            rest = batch[position + 1 :]
            if self.stop.is_set():
                self._give_back(batch[position:], stopped=True)
                return False
            now = self.clock()
            if lease_until - now < self.d.renew_margin:
                held = self.d.outbox.renew(
                    self.name, [c.item.outbox_id for c in batch[position:]], now
                )
                lease_until = now + self.d.outbox.lease
                if claimed.item.outbox_id not in held:
                    continue  # another worker took it over; it is theirs to send
            try:
                decided = self._try(connection, claimed, built)
            except Condemned as exc:
                self._condemned(exc, rest)
            except RelayError:
                self._flush()
                self._give_back(batch[position:], stopped=False)
                raise
            if not self._apply(decided):
                self._give_back(rest, stopped=False)
                return False
            if self.unavailable >= UNAVAILABLE_LIMIT:
                self._give_back(rest, stopped=False)
                return False
            if self.monotonic() - self.unflushed_since >= self.d.flush_every:
                self._flush()
        return True  # the caller records the rest together with the next claim

    def _try(
        self, connection: Connection, claimed: Claimed, built: Future[bytes]
    ) -> list[Decided[Claimed]]:
        """Send one message; the events it (and the replies before it) decided."""
        v = self.verdicts
        try:
            message = built.result()
            connection.send(self._envelope_from(claimed), claimed.item.email, message)
        except NoFinalReply as exc:
            self.unavailable = 0
            return v.unanswered(claimed, str(exc), timed_out=exc.timed_out)
        except SessionLost as exc:
            self._unavailable(exc)
            return v.lost_session(claimed, exc.stage or Stage.CONNECT, str(exc))
        except RelayUnavailable as exc:
            self._unavailable(exc)
            return v.unavailable(claimed, str(exc))
        except DeliveryFailure as exc:
            return self._failure(claimed, exc)
        except _BuildError as exc:
            return [Decided(claimed, Event.BUILD_FAILED, str(exc))]
        self._reachable(Stage.BODY)
        return v.accepted(claimed)

    def _envelope_from(self, claimed: Claimed) -> str:
        paths = self.d.return_paths
        if paths is None:
            return self.d.envelope_from
        return paths.address(claimed.item.outbox_id, claimed.item.subscriber_id)

    def _failure(self, claimed: Claimed, exc: DeliveryFailure) -> list[Decided[Claimed]]:
        """A reply that refused this message (or a failure with no reply)."""
        if exc.code is None or exc.stage is None:
            # Not a relay's reply: the build, a Maildir that cannot be written, an address
            # the relay cannot take: this message's own.
            event = Event.BUILD_REFUSED if isinstance(exc, MessageRefused) else Event.BUILD_FAILED
            return [Decided(claimed, event, str(exc))]
        self._reachable(exc.stage)
        if (
            exc.stage is Stage.MAIL
            and isinstance(exc, MessageRefused)
            and not isinstance(exc, SenderRefused)
        ):
            return self.verdicts.too_big(claimed, str(exc))
        return self.verdicts.reply(
            claimed, claimed.item.email, exc.stage, exc.code, exc.detail, str(exc)
        )

    def _sent(self, claimed: Claimed) -> None:
        """The relay accepted it: marked sent before the next message goes."""
        row_id, accepted = claimed.item.outbox_id, self.clock()  # the relay's 250, this moment
        self.d.recovered()
        if self.marks is None:
            self.outcomes.sent.append(row_id)
            self.outcomes.accepted[row_id] = accepted
            if claimed.arrived_at is not None:
                self.outcomes.arrived[row_id] = claimed.arrived_at
            return
        self.marks.mark(row_id, accepted, claimed.arrived_at)
        self._count(sent=1)
        if self.advance:
            self.advance(1)

    def _unavailable(self, exc: RelayUnavailable) -> None:
        self.unavailable += 1
        self.unreachable = str(exc)

    def _reachable(self, stage: Stage | None) -> None:
        if stage in PAST_MAIL_FROM:
            self.unavailable = 0
            self.unreachable = None

    def _apply(self, decided: list[Decided[Claimed]]) -> bool:
        """Write what the table says each event does; False when the relay paused."""
        keep_going = True
        for claimed, event, why in ((d.message, d.event, d.why) for d in decided):
            step = decide(
                State.SENDING,
                event,
                attempts=claimed.attempts,
                unanswered=claimed.unanswered,
                limits=self.limits,
            )
            if step.pause_relay:
                self._pause(why)
                keep_going = False
            if step.to is State.SENT:
                self._sent(claimed)
            elif step.to is State.BOUNCED:
                self.outcomes.bounced.append((claimed, why))
            elif step.to is State.FAILED:
                if ON_THE_WIRE[event].to is State.DEFERRED:  # its attempts used up
                    why = f"gave up after {claimed.attempts + 1} attempts: {why}"
                self.outcomes.failed.append((claimed, why))
            elif step.to is State.UNKNOWN:
                tries = claimed.unanswered + 1
                self.outcomes.unknown.append(
                    (claimed, f"no final reply after the body, {tries} times: {why}")
                )
            elif step.to is State.PENDING:
                self.given_back.append(claimed)
            elif step.charge is Charge.UNANSWERED:
                wait = self.d.unanswered_base * 2**claimed.unanswered
                self.outcomes.unanswered.append((claimed, why, self.clock() + wait))
            elif step.charge is Charge.NOTHING:
                self.outcomes.relay_deferred.append((claimed, why))
            else:
                self.outcomes.deferred.append((claimed, why))
        return keep_going

    def _pause(self, why: str) -> None:
        """The relay asked every sender to wait: remember it (every process honours it),
        and stop this run; the messages it met are due when the pause ends."""
        until = self.d.pause(why, self.clock())
        self.outcomes.relay_until = until
        self._error(
            f"the relay asked every sender to wait: {why}; sending paused until {until.isoformat()}"
        )
        self.stop.set()  # the other workers meet the same relay

    def _finish(self) -> None:
        self._apply(self.verdicts.finish(stopped=self.stop.is_set()))

    def _condemned(self, exc: Condemned, rest: list[Claimed]) -> NoReturn:
        """The relay refuses the sender, or every recipient: those messages and the rest
        of the batch stay queued (no attempt counted), and the run stops naming why."""
        held = [c for c in exc.held if isinstance(c, Claimed)]
        self._give_back(held + rest, stopped=False)
        if exc.kind == "sender":
            raise RelayError(
                f"the relay refused the sender {self.d.envelope_from} for {len(held)} messages in a row ({exc});"
                " the messages stay queued",
                where="email.from",
                hint="check email.from: the relay must accept it as a sender for this account",
            )
        domains = sorted({c.item.email.rpartition("@")[2].lower() for c in held})
        raise RelayError(
            f'the relay refused {len(held)} recipients in a row at RCPT TO with "{exc}"'
            f" (at {', '.join(domains)}): it will not relay for this account, which says nothing of the"
            " addresses; the messages stay queued and no address was counted as a bounce",
            where="delivery.smtp",
            hint="check delivery.smtp.username and the password: the relay must let this account send to other"
            " domains; and delivery.smtp.host: the relay for sending, not a domain's own mail server",
        )

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
            raise _BuildError(
                f"cannot build the message: {exc.__class__.__name__}: {exc}"
            ) from None
        return message

    def _flush(self) -> None:
        self.unflushed_since = self.monotonic()
        if self.given_back:
            back, self.given_back = self.given_back, []
            self.d.outbox.release(self.name, [c.item.outbox_id for c in back])
        if not self.outcomes:
            return
        outcomes, self.outcomes = self.outcomes, Outcomes()
        self._counted(outcomes, self.d.outbox.record(self.name, outcomes, self.clock()))

    def _flush_and_claim(self) -> tuple[list[Claimed], int]:
        self.unflushed_since = self.monotonic()
        if self.unflushed_since - self.reclaimed_at >= RECLAIM_EVERY:
            # A sender that died while this one runs: its rows come back within seconds.
            self.reclaimed_at = self.unflushed_since
            self.d.outbox.reclaim_orphans()
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
            unknown=recorded.unknown,
        )
        if self.advance:
            self.advance(len(outcomes))

    def _give_back(self, rest: list[Claimed], *, stopped: bool) -> None:
        """Settle what waited on later messages and release ``rest`` untried (due as
        before, no attempt counted)."""
        self._finish()
        self.given_back += rest
        self._flush()
        if stopped:
            with self.lock:
                self.report.stopped = True

    def _error(self, text: str) -> None:
        with self.lock:
            if text not in self.report.errors:  # workers on one relay meet the same trouble
                self.report.errors.append(text)

    def _count(
        self,
        *,
        sent: int = 0,
        deferred: int = 0,
        failed: int = 0,
        bounced: int = 0,
        suppressed: int = 0,
        suppressed_addresses: int = 0,
        unknown: int = 0,
    ) -> None:
        if not (
            sent or deferred or failed or bounced or suppressed or suppressed_addresses or unknown
        ):
            return
        with self.lock:
            report = self.report
            report.sent += sent
            report.deferred += deferred
            report.failed += failed
            report.bounced += bounced
            report.suppressed += suppressed
            report.suppressed_addresses += suppressed_addresses
            report.unknown += unknown


class _BuildError(Exception):
    pass


def crlf(message: bytes) -> bytes:
    """SMTP wants CRLF line ends (and DKIM signs them); builders may give bare LF."""
    if message.count(b"\n") == message.count(b"\r\n"):
        return message
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
