"""Filling a store for tests and benchmarks through the store's own API
(``store.subscribers.insert_new``, ``store.digests.queue_batch``): active subscribers, and
an outbox of pending messages with a plain builder for them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from typing import Any

from alerts.clock import default_clock
from alerts.store import Store
from alerts.store.digests import QueuedMessage
from alerts.subscribers import Subscription
from alerts.types import Frequency, MailPriority, OutboxItem, SubscriberStatus


@dataclass(frozen=True)
class SeedDigest:
    """A digest variant as ``queue_batch`` takes it (the ``DigestContent`` protocol)."""

    subject: str
    html: str
    text: str
    areas: Sequence[str]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = "immediate"
    advisory_ids: Sequence[int] = ()
    meta: dict[str, Any] = field(default_factory=dict)


def add_subscribers(
    store: Store,
    emails: Sequence[str],
    *,
    now: datetime,
    areas: Sequence[str] = ("medway",),
    frequencies: Sequence[str] = ("immediate",),
    urgent: bool = True,
) -> list[int]:
    """Add active subscribers, their areas and frequencies taken in turn from ``areas``
    and ``frequencies``, watermarks at ``now``, in one transaction. Returns their ids."""
    rows = [
        (
            Subscription(
                email=email,
                areas=(areas[i % len(areas)],),
                frequency=Frequency(frequencies[i % len(frequencies)]),
                urgent=urgent,
            ),
            SubscriberStatus.ACTIVE,
        )
        for i, email in enumerate(emails)
    ]
    ids = store.subscribers.insert_new(rows, now=now)
    assert ids is not None, "a seeded address was already stored"
    return ids


def seed_subscribers(
    store: Store,
    *,
    count: int,
    now: datetime,
    areas: Sequence[str] = ("medway",),
    frequencies: Sequence[str] = ("immediate", "daily", "weekly"),
    urgent: bool = True,
    domain: str = "example.org",
) -> list[str]:
    """Add ``count`` active subscribers, their frequencies and areas taken in turn from
    ``frequencies`` and ``areas``, watermarks at ``now``. Returns their addresses."""
    emails = [f"resident{i}@{domain}" for i in range(count)]
    add_subscribers(store, emails, now=now, areas=areas, frequencies=frequencies, urgent=urgent)
    return emails


def seed_outbox(
    store: Store,
    *,
    count: int,
    now: datetime,
    areas: Sequence[str] = ("medway",),
    domain: str = "example.org",
    body: str = "A telephone fraudster is posing as a police officer.",
    emails: Callable[[int], str] | None = None,
) -> list[str]:
    """Queue ``count`` messages: one digest per area, ``count`` active subscribers spread
    over the areas, one pending alert each, due at ``now``. Returns the Message-IDs (bare)."""
    address = emails or (lambda i: f"reader{i}@{domain}")
    subscriber_ids = add_subscribers(
        store, [address(i) for i in range(count)], now=now, areas=areas
    )
    variants = [
        SeedDigest(
            subject=f"Alerts for {area}",
            html=f"<html><body><h1>{area}</h1><p>{body}</p></body></html>",
            text=f"{area}\n\n{body}\n",
            areas=[area],
        )
        for area in areas
    ]
    message_ids = [f"{uuid.uuid4().hex}@{domain}" for _ in range(count)]
    store.digests.queue_batch(
        rendered=variants,
        known={},
        messages=[
            QueuedMessage(
                subscriber_id=subscriber_id,
                digest_key=variants[i % len(variants)].key,
                message_id=f"<{message_ids[i]}>",
                priority=MailPriority.ALERT,
                arrived_at=now,
            )
            for i, subscriber_id in enumerate(subscriber_ids)
        ],
        sent=[],
        watermarks=None,
        now=now,
    )
    return message_ids


def seed_messages(
    store: Store,
    subscriber_id: int,
    due: Sequence[datetime],
    *,
    domain: str = "example.org",
    size: int = 0,
) -> list[str]:
    """More messages for one subscriber: a digest each, pending and due at the instants
    given; ``size``: characters of filler in each (a message bigger than the rest).
    Returns their Message-IDs (bare)."""
    message_ids = []
    for when in due:
        variant = SeedDigest(
            subject="More alerts",
            html="<p>More</p>" + "<p>filler</p>" * (size // 13),
            text="More\n" + "filler\n" * (size // 7),
            areas=["medway"],
        )
        message_id = f"{uuid.uuid4().hex}@{domain}"
        store.digests.queue_batch(
            rendered=[variant],
            known={},
            messages=[
                QueuedMessage(
                    subscriber_id, variant.key, f"<{message_id}>", priority=MailPriority.DIGEST
                )
            ],
            sent=[],
            watermarks=None,
            now=when,
        )
        message_ids.append(message_id)
    return message_ids


class PlainMessageFactory:
    """Builds a real RFC 5322 message (text and HTML parts, RFC 8058 headers) for an
    outbox row from its stored digest: the plain cousin of ``alerts.message.MessageFactory``
    for tests and benchmarks. Each digest is rendered once; per message only the
    recipient, Message-ID and unsubscribe link are put into the finished bytes.
    ``date``: the Date header (the process clock's now when not given)."""

    def __init__(
        self,
        store: Store,
        *,
        from_address: str = "Area Alerts <alerts@example.org>",
        unsubscribe: str = "https://alerts.example.org/unsubscribe/{subscriber_id}",
        date: datetime | None = None,
    ):
        self.store = store
        self.from_address = from_address
        self.unsubscribe = unsubscribe
        self.date = date
        self._rendered: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def build(self, item: OutboxItem) -> bytes:
        template = self._rendered.get(item.digest_id)
        if template is None:
            template = self._render(item.digest_id)
            with self._lock:
                self._rendered[item.digest_id] = template
        message_id = item.message_id if item.message_id.startswith("<") else f"<{item.message_id}>"
        return (
            template.replace(b"@@TO@@", item.email.encode())
            .replace(b"@@MESSAGE_ID@@", message_id.encode())
            .replace(
                b"@@UNSUBSCRIBE@@",
                self.unsubscribe.format(subscriber_id=item.subscriber_id).encode(),
            )
        )

    def _render(self, digest_id: int) -> bytes:
        digest = self.store.digests.get(digest_id)
        assert digest is not None, f"no digest {digest_id}"
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = self.from_address
        message["To"] = "@@TO@@"
        message["Subject"] = digest.subject
        message["Date"] = format_datetime(self.date or default_clock().now())
        message["Message-ID"] = "@@MESSAGE_ID@@"
        message["List-Unsubscribe"] = "<@@UNSUBSCRIBE@@>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(digest.text, cte="quoted-printable")
        message.add_alternative(digest.html, subtype="html", cte="quoted-printable")
        return message.as_bytes()
