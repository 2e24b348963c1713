"""One sending thread (:class:`Worker`): claims batches, builds and sends each message
on its own connection, reads what the relay said into lifecycle events
(:mod:`alerts.delivery.verdicts`), and writes what the table
(:mod:`alerts.delivery.policy`) says each event does. :class:`~alerts.delivery.workers.Dispatcher`
runs several."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

from alerts.delivery.base import (
    Connection,
    DeliveryFailure,
    MessageRefused,
    NoFinalReply,
    RelayError,
    RelayUnavailable,
    SenderRefused,
    SessionLost,
    Stage,
)
from alerts.delivery.policy import ON_THE_WIRE, Charge, Event, Limits, State, decide
from alerts.delivery.verdicts import PAST_MAIL_FROM, Condemned, Decided, Verdicts
from alerts.errors import AlertsError
from alerts.store.marks import SentMarks
from alerts.store.outbox import Claimed, Outcomes, Recorded
from alerts.types import SendReport

if TYPE_CHECKING:
    from alerts.delivery.workers import Dispatcher, RunStop

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
#: Consecutive failures to open a session after which a worker gives up for this run.
UNAVAILABLE_LIMIT = 3
#: Seconds between looks for rows held by senders that died (see Outbox.reclaim_orphans).
RECLAIM_EVERY = 5.0


class Worker:
    """One thread with one connection: claims batches, sends them, and writes what the
    lifecycle table (:mod:`alerts.delivery.policy`) says each event does."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        name: str,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        stop: RunStop,
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
        #: Rows to ask for at the next claim (see Dispatcher.max_batch).
        self.claim_size = dispatcher.batch
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
            batch, suppressed = self._claimed(
                self.d.outbox.claim(self.name, self.claim_size, self.clock())
            )
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
            return self._claimed(self.d.outbox.claim(self.name, self.claim_size, self.clock()))
        recorded, batch, suppressed = self.d.outbox.record_and_claim(
            self.name, outcomes, self.claim_size, self.clock()
        )
        self._counted(outcomes, recorded)
        return self._claimed((batch, suppressed))

    def _claimed(self, claim: tuple[list[Claimed], int]) -> tuple[list[Claimed], int]:
        """Count a claim's suppressed rows and size the next claim."""
        batch, suppressed = claim
        self._count(suppressed=suppressed)
        if len(batch) + suppressed >= self.claim_size:
            self.claim_size = min(self.claim_size * 2, max(self.d.max_batch, self.d.batch))
        else:
            self.claim_size = self.d.batch
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
