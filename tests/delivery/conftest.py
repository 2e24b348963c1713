"""The delivery tests' fixtures: a real SMTP sink on loopback, and apps whose config
points at it (helpers to fill and read the outbox are in :mod:`tests.support.delivery`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.app import App
from alerts.testing import SmtpSink
from tests.support.delivery import DELIVERY


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
            settings.update(
                backend="smtp", smtp={"security": "none", "timeout": 5, "connections": 2, **smtp}
            )
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
