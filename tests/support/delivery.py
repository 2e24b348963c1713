"""Helpers for the delivery tests: an outbox filled through the store, sent with the
plain builder, and read back by Message-ID (the fixtures are in tests/delivery/conftest.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.app import App
from alerts.delivery import send_pending
from alerts.delivery.workers import SendReport
from tests.support import NOW
from tests.support.sections import Stages
from tests.support.seeding import PlainMessageFactory, seed_messages, seed_outbox
from tests.support.tables import outbox_rows

#: Short timeouts and retries so that faults show quickly; the numbers are asserted on.
DELIVERY = {"retry_base": 60.0, "retry_max": 3600.0, "max_attempts": 3, "max_bounces": 3}


def queue(app: App | Stages, count: int, *, now: datetime = NOW, **kwargs: Any) -> list[str]:
    """Queue ``count`` messages; returns their Message-IDs (bare, as the sink reports them)."""
    return seed_outbox(app.store, count=count, now=now, **kwargs)


def send(app: App | Stages, *, now: datetime = NOW, **kwargs: Any) -> SendReport:
    """``send_pending`` with the plain builder (the digests' own is tested end to end elsewhere)."""
    kwargs.setdefault("builder", PlainMessageFactory(app.store, date=now))
    stages = Stages.of(app)
    return send_pending(stages.delivery, stages.mail, stages.store, stages.clock, now=now, **kwargs)


def rows(app: App | Stages) -> dict[str, dict[str, Any]]:
    """Outbox rows by bare Message-ID."""
    return {row["message_id"].strip("<>"): row for row in outbox_rows(app.store.engine)}


def statuses(app: App | Stages) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows(app).values():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def queue_more(
    app: App | Stages, subscriber_id: int, due: list[datetime], *, size: int = 0
) -> list[str]:
    """More messages for one subscriber: a digest each, due at the instants given;
    ``size``: characters of filler in each, for a message bigger than the rest."""
    return seed_messages(app.store, subscriber_id, due, size=size)
