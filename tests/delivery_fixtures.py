"""Fixtures shared by the delivery tests: a real SMTP sink on loopback, an app whose
config points at it, and an outbox filled with real rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.app import App
from alerts.delivery import send_pending
from alerts.delivery.workers import SendReport
from alerts.testing import PlainMessageFactory, SmtpSink, outbox_rows, seed_messages, seed_outbox
from tests.conftest import NOW

# Test modules take the fixtures with ``from tests.delivery_fixtures import *``.
__all__ = ["make_app", "sink", "smtp_app"]

#: Short timeouts and retries so that faults show quickly; the numbers are asserted on.
DELIVERY = {"retry_base": 60.0, "retry_max": 3600.0, "max_attempts": 3, "max_bounces": 3}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def make_app(write_config: Callable[..., Path]) -> Iterator[Callable[..., App]]:
    """``make_app(database=..., smtp={...}, **delivery)``: an App on a config written for it."""
    apps: list[App] = []

    def make(*, database: str, smtp: dict[str, Any] | None = None, **delivery: Any) -> App:
        settings: dict[str, Any] = {**DELIVERY, **delivery}
        if smtp is not None:
            settings.update(backend="smtp", smtp={"security": "none", "timeout": 5, "connections": 2, **smtp})
        app = App(
            write_config(
                database=database,
                delivery=settings,
                email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
            )
        )
        assert app.config  # read now: the next make_app rewrites the file
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def smtp_app(make_app: Callable[..., App], sink: SmtpSink, db_url: str) -> App:
    """An app (SQLite, and PostgreSQL when configured) that delivers to ``sink``."""
    return make_app(database=db_url, smtp={"host": sink.host, "port": sink.port})


def queue(app: App, count: int, *, now: datetime = NOW, **kwargs: Any) -> list[str]:
    """Queue ``count`` messages; returns their Message-IDs (bare, as the sink reports them)."""
    return seed_outbox(app.store.engine, count=count, now=now, **kwargs)


def send(app: App, *, now: datetime = NOW, **kwargs: Any) -> SendReport:
    """``send_pending`` with the plain builder (the digests' own is tested end to end elsewhere)."""
    kwargs.setdefault("builder", PlainMessageFactory(app.store.engine))
    return send_pending(app.config, app.store, app.clock, now=now, **kwargs)


def rows(app: App) -> dict[str, dict[str, Any]]:
    """Outbox rows by bare Message-ID."""
    return {row["message_id"].strip("<>"): row for row in outbox_rows(app.store.engine)}


def statuses(app: App) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows(app).values():
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def queue_more(app: App, subscriber_id: int, due: list[datetime], *, size: int = 0) -> list[str]:
    """More messages for one subscriber: a digest each, due at the instants given;
    ``size``: characters of filler in each, for a message bigger than the rest."""
    return seed_messages(app.store.engine, subscriber_id, due, size=size)
