"""What delivery needs from its collaborators, and what a relay can answer.

Delivery depends on two small protocols: a :class:`MessageBuilder` (anything with
``build(item) -> bytes``; the real one is ``alerts.message.MessageFactory``) and a
:class:`Sender` whose connections hand one message to the relay or raise one of the
errors below, each of which decides what becomes of the outbox row.
"""

from __future__ import annotations

from typing import Protocol

from alerts.errors import AlertsError
from alerts.types import OutboxItem

__all__ = [
    "Connection",
    "MessageBuilder",
    "MessageRefused",
    "OutboxItem",
    "RecipientRefused",
    "RelayError",
    "RelayUnavailable",
    "Sender",
    "TemporaryFailure",
]


class MessageBuilder(Protocol):
    def build(self, item: OutboxItem) -> bytes:
        """The complete RFC 5322 message for one outbox row."""
        ...


class Connection(Protocol):
    """One worker's channel to the relay (or the Maildir). Not shared between threads."""

    def send(self, envelope_from: str, recipient: str, message: bytes) -> None:
        """Return only once the relay accepted the message (250 after DATA); otherwise
        raise :class:`TemporaryFailure`, :class:`RecipientRefused`,
        :class:`MessageRefused` or :class:`RelayError`."""
        ...

    def close(self) -> None: ...


class Sender(Protocol):
    """A configured backend; ``connection()`` is called once per worker thread."""

    def connection(self) -> Connection: ...


class TemporaryFailure(Exception):
    """Try again later: a 4xx reply, a timeout, a connection refused or dropped mid-DATA.
    The row goes back to pending with backoff."""


class RelayUnavailable(TemporaryFailure):
    """No session could be opened (refused, 421 greeting, timeout). A worker that keeps
    getting this stops for this run rather than burn every message's attempts."""


class RecipientRefused(Exception):
    """A 5xx reply for the recipient: a hard bounce."""


class MessageRefused(Exception):
    """A 5xx reply to the message itself (after DATA): this message fails for good, but
    it says nothing about the address, so it is not counted as a bounce."""


class RelayError(AlertsError):
    """The relay cannot be used as configured (credentials refused, certificate not
    trusted, no STARTTLS offered, sender refused): no message can go until the config
    is fixed, so the run stops and the messages stay queued."""
