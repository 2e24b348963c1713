"""What delivery needs from its collaborators, and what a relay can answer.

Delivery depends on two small protocols: a :class:`MessageBuilder` (anything with
``build(item) -> bytes``; the real one is ``alerts.message.MessageFactory``) and a
:class:`Sender` whose connections hand one message to the relay or raise one of the
errors below, each of which decides what becomes of the outbox row.

Every error a relay's reply causes names the :class:`Stage` it came at, so that the
row's ``last_error`` says where the message stuck ("RCPT TO: 452 4.2.2 mailbox full").
"""

from __future__ import annotations

import enum
from typing import Protocol

from alerts.errors import AlertsError
from alerts.types import OutboxItem

__all__ = [
    "Connection",
    "MessageBuilder",
    "MessageRefused",
    "NoFinalReply",
    "OutboxItem",
    "RecipientRefused",
    "RelayError",
    "RelayUnavailable",
    "Sender",
    "SenderRefused",
    "SessionLost",
    "Stage",
    "TemporaryFailure",
]


class Stage(enum.StrEnum):
    """The steps of an SMTP session, as a reply's place is named in errors."""

    CONNECT = "connect"
    EHLO = "EHLO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    BODY = "end of data"
    RSET = "RSET"
    QUIT = "QUIT"


class MessageBuilder(Protocol):
    def build(self, item: OutboxItem) -> bytes:
        """The complete RFC 5322 message for one outbox row."""
        ...


class Connection(Protocol):
    """One worker's channel to the relay (or the Maildir). Not shared between threads."""

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        """Return only once the relay accepted the message (250 after DATA); otherwise
        raise :class:`TemporaryFailure`, :class:`RecipientRefused`,
        :class:`MessageRefused` or :class:`RelayError`. Whatever it raised, the
        connection is ready for the next message (reset, or replaced on next use)."""
        ...

    def close(self) -> None: ...


class Sender(Protocol):
    """A configured backend; ``connection()`` is called once per worker thread."""

    def connection(self) -> Connection: ...


class DeliveryFailure(Exception):
    """A reply (or the lack of one) that decides this message's fate; the text names the
    stage and the reply. ``stage``: where in the session it came, ``None`` outside SMTP
    (a Maildir, a build)."""

    def __init__(
        self, text: str, stage: Stage | None = None, *, code: int | None = None, detail: str = ""
    ):
        super().__init__(text)
        self.stage = stage
        #: The relay's reply code and text, when a reply (not its absence) decided it.
        self.code = code
        self.detail = detail


class TemporaryFailure(DeliveryFailure):
    """Try again later: a 4xx reply (or 552 at RCPT TO, RFC 5321 4.5.3.1.10), a timeout,
    a connection dropped mid-transaction. The row goes back to pending with backoff."""


class RelayUnavailable(TemporaryFailure):
    """The relay, not the message: no session could be opened (refused, timed out, a
    4xx greeting or EHLO, a temporary TLS or AUTH failure). The row is deferred with
    the relay's backoff and no attempt is counted against it (a long outage must not
    use up ``delivery.max_attempts``); a worker that keeps getting this stops for this
    run."""


class SessionLost(RelayUnavailable):
    """The relay closed the session in the middle of this message (421, or dropped it
    with no reply). That may be the relay's trouble or this message's (one the relay
    chokes on): the dispatcher counts an attempt only once a later message shows the
    relay working; otherwise it is the relay's, like :class:`RelayUnavailable`."""


class NoFinalReply(SessionLost):
    """The body went out and no final reply came: the connection dropped, or the reply
    did not come within the deadline (``timed_out``). The relay may have taken the
    message, so it is tried again only a bounded number of times (then ``unknown``)."""

    def __init__(self, text: str, *, timed_out: bool):
        super().__init__(text, Stage.BODY)
        self.timed_out = timed_out


class RecipientRefused(DeliveryFailure):
    """A 5xx reply at RCPT TO: a hard bounce, unless it turns out to be the relay
    refusing to relay at all (see :mod:`alerts.delivery.refusals`). ``code`` and
    ``detail`` (the reply's text) let the dispatcher compare refusals."""

    code: int

    def __init__(self, text: str, stage: Stage = Stage.RCPT, *, code: int = 550, detail: str = ""):
        super().__init__(text, stage, code=code, detail=detail)


class MessageRefused(DeliveryFailure):
    """A 5xx reply to this message (at MAIL FROM for its size, at DATA or after the
    body): it fails for good, but it says nothing about the address, so it is not
    counted as a bounce."""


class SenderRefused(MessageRefused):
    """A 5xx reply at MAIL FROM that is not about the message's size. The envelope
    sender is the same for every message, so one such reply may be this message's
    (a policy check) or the relay refusing ``email.from`` altogether: the dispatcher
    tells the two apart by what the relay says to the messages after it."""

    def __init__(self, text: str, sender: str, *, code: int = 550, detail: str = ""):
        super().__init__(text, Stage.MAIL, code=code, detail=detail)
        self.sender = sender


class RelayError(AlertsError):
    """The relay cannot be used as configured (credentials refused, certificate not
    trusted, no STARTTLS offered, the sender refused for every message, a 5xx greeting):
    no message can go until the config is fixed, so the run stops and the messages stay
    queued."""
