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
from typing import NoReturn

from sqlalchemy.exc import SQLAlchemyError

from alerts.clock import Clock
from alerts.delivery.base import (
    Connection,
    MessageBuilder,
    MessageRefused,
    RecipientRefused,
    RelayError,
    RelayUnavailable,
    Sender,
    SenderRefused,
    SessionLost,
    Stage,
    TemporaryFailure,
)
from alerts.delivery.dkim import DkimSigner
from alerts.delivery.policy import RcptRefusal, condemns_the_relay, same_words_across_domains
from alerts.delivery.queue import SendQueue
from alerts.errors import AlertsError
from alerts.store import StoreError
from alerts.store.outbox import (
    Claimed,
    Outcomes,
    Recorded,
    SentMarks,
    sender_name,
    worker_name,
)
from alerts.types import SendReport

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
#: Consecutive failures to open a session after which a worker gives up for this run.
UNAVAILABLE_LIMIT = 3
#: Messages in a row refused at MAIL FROM (and none let past it) after which the relay is
#: taken to refuse the sender itself: the run stops, naming ``email.from``.
SENDER_REFUSED_LIMIT = 3
#: Seconds between looks for rows held by senders that died (see Outbox.reclaim_orphans).
RECLAIM_EVERY = 5.0
#: Stages a message reaches only once the relay accepted MAIL FROM.
PAST_MAIL_FROM = frozenset({Stage.RCPT, Stage.DATA, Stage.BODY})
#: Stages a message reaches only once the relay accepted its recipient.
PAST_RCPT = frozenset({Stage.DATA, Stage.BODY})


@dataclass
class Dispatcher:
    """Everything a run needs, configured once; :meth:`run` drains the outbox."""

    outbox: SendQueue
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
    #: Mark each accepted message sent at once (False: with the batch; only for
    #: benchmarks/fanout.py --durability, which measures what the first costs).
    mark_each: bool = True
    _builds: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

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
        #: Messages refused at MAIL FROM whose verdict waits for the next message: if the
        #: relay lets that one past MAIL FROM, they failed for their own sake; if it refuses
        #: it too, the relay may be refusing the sender, and they must not fail for that.
        self.refused_senders: list[tuple[Claimed, SenderRefused]] = []
        #: Messages in whose middle the relay closed the session (421, or no reply):
        #: whether that was the relay's trouble or the message's waits for the next one.
        #: If the relay carries a later message past MAIL FROM, the attempt counts; if
        #: not, it was the relay's, and no attempt is counted.
        self.lost: list[tuple[Claimed, str]] = []
        #: Recipients refused at RCPT TO since a message last got past it, whose verdict
        #: waits for a later message: if the relay takes that one's recipient, they were
        #: refused for their own sake (bounces); if it refuses recipient after recipient
        #: alike, it is the relay refusing to relay, and nobody bounces for that.
        self.refused_rcpts: list[tuple[Claimed, RcptRefusal, str]] = []
        #: Sessions in a row that failed for the relay's sake.
        self.unavailable = 0
        self.marks: SentMarks | None = None
        self.reclaimed_at = self.monotonic()

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
                    self._undecided()
                    self._flush()
                    return
                batch, suppressed = self._flush_and_claim()
            self._undecided()
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
            if self.stop.is_set():
                return self._give_back(batch[position:], stopped=True)
            now = self.clock()
            if lease_until - now < self.d.renew_margin:
                held = self.d.outbox.renew(
                    self.name, [c.item.outbox_id for c in batch[position:]], now
                )
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
                self.unavailable += 1
                self.unreachable = str(exc)
                if isinstance(exc, SessionLost):
                    self.lost.append((claimed, str(exc)))
                else:
                    self.outcomes.relay_deferred.append((claimed, str(exc)))
                if self.unavailable >= UNAVAILABLE_LIMIT:
                    return self._give_back(batch[position + 1 :], stopped=False)
            except TemporaryFailure as exc:
                self._past_mail_from(exc.stage)
                self.outcomes.deferred.append((claimed, str(exc)))
            except RecipientRefused as exc:
                self._past_mail_from(exc.stage)
                self._refused_recipient(claimed, exc, batch[position + 1 :])
            except SenderRefused as exc:
                self.refused_senders.append((claimed, exc))
                if len(self.refused_senders) >= SENDER_REFUSED_LIMIT:
                    self._refuses_the_sender(exc, batch[position + 1 :])
            except MessageRefused as exc:
                self._past_mail_from(exc.stage)
                self.outcomes.failed.append((claimed, str(exc)))
            except _BuildError as exc:
                self.outcomes.deferred.append((claimed, str(exc)))
            else:
                self._past_mail_from(Stage.BODY)
                self._sent(claimed)
            if self.monotonic() - self.unflushed_since >= self.d.flush_every:
                self._flush()
        return True  # the caller records the rest together with the next claim

    def _sent(self, claimed: Claimed) -> None:
        """The relay accepted it: marked sent before the next message goes."""
        row_id, accepted = claimed.item.outbox_id, self.clock()  # the relay's 250, this moment
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

    def _past_mail_from(self, stage: Stage | None) -> None:
        """A message got past MAIL FROM: the relay works and accepts the sender, so the
        messages refused at MAIL FROM before it were refused for their own sake, and
        fail; and those in whose middle the session was lost may have caused it, and
        count the attempt."""
        if stage not in PAST_MAIL_FROM:
            return
        self.unavailable = 0
        self.unreachable = None
        if self.refused_senders:
            self.outcomes.failed.extend(
                (claimed, str(exc)) for claimed, exc in self.refused_senders
            )
            self.refused_senders = []
        if self.lost:
            self.outcomes.deferred.extend(self.lost)
            self.lost = []
        if stage in PAST_RCPT and self.refused_rcpts:
            # The relay takes recipients: those refused before were refused for their own
            # sake. A refusal for relaying says nothing about the address, though: the
            # message fails (this relay will not carry it) but nobody bounces.
            for claimed, refusal, error in self.refused_rcpts:
                if refusal.about_relaying:
                    self.outcomes.failed.append(
                        (claimed, f"{error} (refused for relaying, not for the address)")
                    )
                else:
                    self.outcomes.bounced.append((claimed, error))
            self.refused_rcpts = []

    def _refused_recipient(
        self, claimed: Claimed, exc: RecipientRefused, rest: list[Claimed]
    ) -> None:
        self.refused_rcpts.append(
            (claimed, RcptRefusal(claimed.item.email, exc.code, exc.detail), str(exc))
        )
        refusals = [refusal for _, refusal, _ in self.refused_rcpts]
        if not condemns_the_relay(refusals):
            return
        held = [c for c, _, _ in self.refused_rcpts]
        self.refused_rcpts = []
        self._give_back(held + rest, stopped=False)
        domains = sorted({r.domain for r in refusals})
        raise RelayError(
            f'the relay refused {len(held)} recipients in a row at RCPT TO with "{exc.code} {exc.detail}"'
            f" (at {', '.join(domains)}): it will not relay for this account, which says nothing of the"
            " addresses; the messages stay queued and no address was counted as a bounce",
            where="delivery.smtp",
            hint="check delivery.smtp.username and the password: the relay must let this account send to other"
            " domains; and delivery.smtp.host: the relay for sending, not a domain's own mail server",
        )

    def _undecided(self) -> None:
        """Messages whose verdict waited for a later one that never came (end of the run,
        a stop, the relay given up on).

        Refused at MAIL FROM: deferred, an attempt counted, so that they neither fail
        for the sender's sake nor hold the head of the queue. Session lost in their
        middle with no later message getting through: the relay's trouble, deferred with
        no attempt counted."""
        why = "deferred: no other message has shown yet whether the relay refuses this message or the sender"
        self.outcomes.deferred.extend(
            (claimed, f"{exc} ({why})") for claimed, exc in self.refused_senders
        )
        self.refused_senders = []
        self.outcomes.relay_deferred.extend(self.lost)
        self.lost = []
        # Refused at RCPT TO with nothing after to tell: a refusal for relaying, or the
        # same words for several domains, may be the relay's, so it is deferred (an
        # attempt counted, never a bounce); any other is this recipient's bounce.
        # When the run stops (another worker found the relay refusing every recipient, or
        # SIGTERM) nothing was learnt about these messages: no attempt is counted.
        blanket = same_words_across_domains([refusal for _, refusal, _ in self.refused_rcpts])
        undecided = self.outcomes.relay_deferred if self.stop.is_set() else self.outcomes.deferred
        for claimed, refusal, error in self.refused_rcpts:
            if refusal.about_relaying or blanket:
                why = "deferred, not bounced: no message since has shown whether the relay refuses every recipient"
                undecided.append((claimed, f"{error} ({why})"))
            else:
                self.outcomes.bounced.append((claimed, error))
        self.refused_rcpts = []

    def _refuses_the_sender(self, exc: SenderRefused, rest: list[Claimed]) -> NoReturn:
        """Several messages in a row refused at MAIL FROM: the relay refuses the sender.
        Those messages and the rest of the batch stay queued (no attempt counted)."""
        refused = [claimed for claimed, _ in self.refused_senders]
        self.refused_senders = []
        self._give_back(refused + rest, stopped=False)
        raise RelayError(
            f"the relay refused the sender {exc.sender} for {len(refused)} messages in a row ({exc});"
            " the messages stay queued",
            where="email.from",
            hint="check email.from: the relay must accept it as a sender for this account",
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
        )
        if self.advance:
            self.advance(len(outcomes))

    def _give_back(self, rest: list[Claimed], *, stopped: bool) -> bool:
        self._undecided()
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
