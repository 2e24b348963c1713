"""Helpers for the digest and message tests: advisories and subscribers put in a real
store through the real code paths, and the queued messages built and parsed back."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from email.message import EmailMessage

from alerts.app import App
from alerts.ingest import store_advisory
from alerts.message import MessageFactory, OutboxItem
from alerts.subscribers import make_subscription
from alerts.types import AdvisoryInput, Frequency, Priority, Status, Subscriber, SubscriberStatus
from tests.support import NOW
from tests.support.sections import Stages
from tests.support.tables import outbox_rows, row_counts

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: A title that tries to smuggle a header into the message.
HOSTILE_TITLE = "Scam warning\r\nBcc: victim@example.org\r\n\r\n<script>alert('t')</script>"
HOSTILE_BODY_HTML = (
    "<p>Residents of Medway should be careful.</p>"
    "<script>alert('body')</script>"
    "<p><a href=\"javascript:alert('link')\">Click here</a></p>"
    '<img src="https://tracker.example/pixel.gif" onerror="alert(\'img\')">'
)


def advisory(
    name: str,
    *,
    areas: Iterable[str] = ("medway",),
    published: datetime = NOW - 2 * HOUR,
    title: str | None = None,
    summary: str | None = None,
    body: str = "<p>Advice for residents.</p>",
    priority: Priority = Priority.NORMAL,
    status: Status = Status.ACTIVE,
    url: str | None = None,
) -> AdvisoryInput:
    """An advisory as a source would give it (body already sanitised, as ingest does)."""
    return AdvisoryInput(
        key=url or f"https://www.kent.police.uk/news/{name}/",
        url=url or f"https://www.kent.police.uk/news/{name}/",
        title=title or f"Advisory {name}",
        summary=summary if summary is not None else f"Summary of {name}.",
        body_html=body,
        body_text=body.replace("<p>", "").replace("</p>", "\n\n"),
        published_at=published,
        source="test",
        areas=frozenset(areas),
        force_area="kent",
        priority=priority,
        status=status,
    )


def save(app: App | Stages, item: AdvisoryInput, *, at: datetime = NOW - HOUR) -> int:
    """Ingest one advisory at ``at`` (its first_seen_at / changed_at)."""
    return store_advisory(item, app.store, app.gazetteer, at).advisory_id


def subscribe(
    app: App | Stages,
    address: str,
    areas: Iterable[str],
    *,
    frequency: Frequency | str = Frequency.DAILY,
    at: datetime = NOW - DAY,
    name: str | None = None,
    forwardable: bool = False,
    urgent: bool = True,
    status: SubscriberStatus = SubscriberStatus.ACTIVE,
) -> Subscriber:
    """An active (confirmed at ``at``) subscriber, through the subscribers module."""
    subscription = make_subscription(
        app.gazetteer,
        address,
        areas,
        frequency=frequency,
        name=name,
        forwardable=forwardable,
        urgent=urgent,
    )
    return app.store.subscribers.add(subscription, now=at, status=status)


def subscribe_many(
    app: App | Stages,
    count: int,
    areas: Callable[[int], list[str]],
    frequency: Callable[[int], str],
    *,
    at: datetime,
) -> None:
    """``count`` active subscribers in one transaction (fast enough for 1,000 in a test)."""
    rows = [
        (
            make_subscription(
                app.gazetteer, f"reader{i}@example.org", areas(i), frequency=frequency(i)
            ),
            SubscriberStatus.ACTIVE,
        )
        for i in range(count)
    ]
    assert app.store.subscribers.insert_new(rows, now=at) is not None


def outbox_items(app: App | Stages) -> list[OutboxItem]:
    """The queued messages, in the order they were queued."""
    return [
        OutboxItem(
            r["id"], r["subscriber_id"], r["digest_id"], r["message_id"], r["email"], r["name"]
        )
        for r in outbox_rows(app.store.engine)
    ]


def built(
    app: App | Stages, factory: MessageFactory | None = None
) -> list[tuple[OutboxItem, bytes, EmailMessage]]:
    """Every queued message built by the real factory and parsed back by the email package."""
    factory = factory or MessageFactory(Stages.of(app).mail, app.store, app.now)
    found = []
    for item in outbox_items(app):
        data = factory.build(item)
        found.append((item, data, parse(data)))
    return found


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message, decoded."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def counts(app: App | Stages) -> dict[str, int]:
    return row_counts(app.store.engine, "digests", "outbox", "subscriber_advisories")


def watermarks(app: App | Stages) -> dict[str, datetime | None]:
    return {
        subscriber.email: subscriber.watermark
        for subscriber in app.store.subscribers.iterate(status=None)
    }


def subjects(app: App | Stages) -> dict[str, list[str]]:
    """Address -> subjects of the messages queued for it."""
    found: dict[str, list[str]] = {}
    for row in outbox_rows(app.store.engine):
        found.setdefault(row["email"], []).append(row["digest_subject"])
    return found
