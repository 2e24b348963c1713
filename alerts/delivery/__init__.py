"""Delivery: drain the outbox through the configured backend (an SMTP relay, or a Maildir).

A message the outbox holds reaches the relay once, whatever fails on the way: a row is
marked sent only after the relay accepted it. Every reply is read for the stage it came
at and the message it concerns: 4xx (and 552 at RCPT TO), timeouts and dropped
connections leave that message pending with backoff; a 5xx at RCPT TO is a hard bounce
(``delivery.max_bounces`` of them suppress the address), unless recipient after recipient
is refused alike for relaying or authentication, which stops the run naming
``delivery.smtp`` and bounces nobody (:mod:`alerts.delivery.refusals`); a 5xx at MAIL FROM, DATA or
after the body fails that message. Only what condemns the relay (refused, TLS, AUTH,
421, the sender refused for message after message) pauses a worker or stops the run,
naming the cause; what the relay suffers (down, 421, sessions dropped) defers the
messages it met with the relay's backoff and counts no attempt against them, so an
outage of any length fails no mail. After any error the session is reset or replaced, so the next message
goes through in the same run. A crash leaves claimed rows to be sent again after their
lease, with the same Message-ID.

Entry point: :func:`send_pending`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parseaddr

from alerts.clock import Clock
from alerts.config import DeliveryConfig, EmailConfig, MailSettings
from alerts.delivery.base import MessageBuilder, RelayError, Sender
from alerts.delivery.dkim import DkimSigner
from alerts.delivery.drain import OutboxDrainer
from alerts.delivery.maildir import MaildirSender
from alerts.delivery.queue import RetryPolicy, SendQueue
from alerts.delivery.returns import ReturnPaths
from alerts.delivery.smtp import SmtpSender
from alerts.delivery.workers import Dispatcher, Progress
from alerts.errors import ConfigError
from alerts.message import MessageFactory
from alerts.store import Store
from alerts.store.outbox import OutboxStatus
from alerts.store.relay import RelayPause
from alerts.store.wakeup import channel_for
from alerts.tokens import load_secret_keys
from alerts.types import MailPriority, SendReport

#: The sender's one line per drain (alerts serve shows it; alerts.delivery is for detail).
sender_log = logging.getLogger("alerts.sender")

__all__ = [
    "Dispatcher",
    "MessageBuilder",
    "OutboxDrainer",
    "OutboxStatus",
    "RelayError",
    "RetryPolicy",
    "SendQueue",
    "SendReport",
    "make_sender",
    "outbox_drainer",
    "send_pending",
]


def send_pending(
    delivery: DeliveryConfig,
    mail: MailSettings,
    store: Store,
    clock: Clock,
    *,
    now: datetime | None = None,
    workers: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int], Progress] | None = None,
    builder: MessageBuilder | None = None,
    transactional_only: bool = False,
    up_to: MailPriority | None = None,
) -> SendReport:
    """Send every outbox message that is due, then return what happened.

    ``workers``: threads, each with its own connection (default: ``delivery.smtp.connections``,
    1 for the Maildir). ``stop``: set it (on SIGTERM) to finish the messages in flight and
    leave the rest pending. ``progress``: called with the number due, returns a function
    called with each number done. ``clock``: business time and deadlines. ``now``: the
    instant to send as of (a run for a given moment); by default the clock moves on. ``builder``: what turns a row into bytes (default: the digests'
    ``alerts.message.MessageFactory``). ``transactional_only``: confirmations and other
    transactional mail only (what ``alerts web`` sends itself); ``up_to``: mail of this
    priority or a more urgent one only (``alerts web`` after a console send: no digests).
    ``mail``: who the mail is from (the envelope sender, the return paths' keys) and what
    the default builder writes with.

    Raises :class:`~alerts.delivery.base.RelayError` when the relay cannot be used as
    configured (credentials, certificate, STARTTLS); the messages then stay queued.
    """
    sender = make_sender(delivery, clock)
    signer = DkimSigner.from_config(delivery.dkim, clock.timestamp) if delivery.dkim else None
    at: Callable[[], datetime] = (lambda: now) if now is not None else clock.now
    if builder is None:
        builder = MessageFactory(mail, store, clock.now)
    if workers is None:
        smtp = delivery.smtp
        workers = smtp.connections if delivery.backend == "smtp" and smtp else 1

    def bounced(subscriber_id: int) -> bool:
        return store.subscribers.record_bounce(subscriber_id, delivery.max_bounces, now=at())

    dispatcher = Dispatcher(
        outbox=make_outbox(delivery, store, transactional_only=transactional_only, up_to=up_to),
        builder=builder,
        sender=sender,
        envelope_from=envelope_from(mail.email),
        signer=signer,
        record_bounce=bounced,
        return_paths=return_paths(delivery, mail),
        max_unanswered=delivery.max_unanswered,
        unanswered_base=timedelta(seconds=delivery.unanswered_base),
        pauses=StoredPauses(store, f"smtp {sender.label}", make_outbox(delivery, store).retry)
        if isinstance(sender, SmtpSender)
        else None,
    )
    return dispatcher.run(workers=workers, clock=clock, now=now, stop=stop, progress=progress)


def outbox_drainer(
    delivery: DeliveryConfig,
    mail: MailSettings,
    store: Store,
    stop: threading.Event,
    *,
    clock: Clock,
    name: str = "sender",
    transactional_only: bool = False,
    alerts_too: Callable[[], bool] | None = None,
    workers: int | None = None,
    role: str = "serve",
) -> OutboxDrainer:
    """A sender that drains the outbox whenever mail is queued (any process) or a retry
    falls due, until ``stop``; each drain that did something is logged and recorded as a
    run of kind ``name`` (``sender``, ``web-sender``). ``alerts_too``: with
    ``transactional_only``, while it answers True alerts are sent as well (never
    digests): ``alerts web`` after the console queued some. ``workers``: as for
    :func:`send_pending`. ``role`` is what runs it, listed while it runs by ``alerts
    status`` and ``/metrics`` (``serve``, ``send``, ``web``: alerts.store.senders.ROLES).
    Call ``start()`` on it."""

    def ceiling() -> tuple[bool, MailPriority | None]:
        if transactional_only and alerts_too is not None and alerts_too():
            return False, MailPriority.ALERT
        return transactional_only, None

    def send(stop_event: threading.Event) -> SendReport:
        only, up_to = ceiling()
        return send_pending(
            delivery,
            mail,
            store,
            clock,
            stop=stop_event,
            transactional_only=only,
            up_to=up_to,
            workers=workers,
        )

    def next_due() -> datetime | None:
        only, up_to = ceiling()
        return make_outbox(delivery, store, transactional_only=only, up_to=up_to).next_due()

    def record(result: SendReport, started: datetime) -> None:
        ok = not (result.failed or result.errors)
        store.runs.add(name, started, clock.now(), ok=ok, summary=result.as_dict())
        line = (
            f"{name}: {result.sent} sent, {result.deferred} deferred, {result.bounced} bounced, "
            f"{result.failed} failed"
        )
        if result.stopped:
            line += "; stopped early, the rest stays queued"
        fields = {f"ctx_{k}": v for k, v in result.as_dict().items()}
        sender_log.log(logging.INFO if ok else logging.WARNING, "%s", line, extra=fields)
        for error in result.errors:
            sender_log.warning("%s: %s", name, error)

    return OutboxDrainer(
        send=send,
        channel=channel_for(store.engine.url.render_as_string(hide_password=False)),
        next_due=next_due,
        clock=clock.now,
        stop=stop,
        report=record,
        name=name,
        presence=lambda: store.senders.running(role, clock.now),
    )


def make_sender(delivery: DeliveryConfig, clock: Clock) -> Sender:
    """The configured backend, checked (password variable, CA file, Maildir folder)."""
    if delivery.backend == "smtp" and delivery.smtp is not None:
        return SmtpSender.from_config(delivery.smtp, clock)
    return MaildirSender(delivery.maildir)


def make_outbox(
    delivery: DeliveryConfig,
    store: Store,
    *,
    transactional_only: bool = False,
    up_to: MailPriority | None = None,
) -> SendQueue:
    """``store.outbox`` with the configured retry policy and lease."""
    retry = RetryPolicy(delivery.retry_base, delivery.retry_max, delivery.max_attempts)
    return SendQueue(
        store.outbox,
        retry,
        lease=timedelta(seconds=delivery.lease_seconds),
        transactional_only=transactional_only,
        up_to=up_to,
    )


class StoredPauses:
    """The relay's pauses as the store keeps them, for one relay; the backoff doubles
    with each pause in a row (``retry_base`` to ``retry_max``)."""

    def __init__(self, store: Store, relay: str, retry: RetryPolicy):
        self.store = store
        self.relay = relay
        self.retry = retry

    def current(self, now: datetime) -> RelayPause | None:
        return self.store.relays.get(self.relay)

    def pause(self, reply: str, now: datetime) -> RelayPause:
        return self.store.relays.pause(self.relay, reply, now, self.retry.delay)

    def recovered(self) -> None:
        self.store.relays.recovered(self.relay)


def return_paths(delivery: DeliveryConfig, mail: MailSettings) -> ReturnPaths | None:
    """The per-message return paths, when ``delivery.return_path.enabled`` (signed with
    ``mail.security``'s keys, under ``mail.email``'s domain unless one is given)."""
    settings = delivery.return_path
    if not settings.enabled:
        return None
    domain = settings.domain or envelope_from(mail.email).rpartition("@")[2]
    return ReturnPaths(load_secret_keys(mail.security), domain=domain, prefix=settings.prefix)


def envelope_from(email: EmailConfig) -> str:
    """The bare address of ``email.from``: the envelope sender (where bounces go)."""
    address = parseaddr(email.from_address)[1]
    if not address or "@" not in address or any(c.isspace() for c in address):
        raise ConfigError(
            f"not an email address: {email.from_address!r}",
            where="email.from",
            hint='write it as "Name <alerts@example.org>"',
        )
    return address
