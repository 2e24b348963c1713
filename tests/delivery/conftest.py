"""The delivery tests' fixtures: a real SMTP sink on loopback, and the delivery stage's
inputs built in memory around it (helpers to fill and read the outbox are in
:mod:`tests.support.delivery`; the sections in :mod:`tests.support.sections`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.areas import Gazetteer
from alerts.clock import ManualClock
from alerts.testing import SmtpSink
from tests.support.delivery import DELIVERY
from tests.support.sections import Stages, maildir_delivery, make_stages, smtp_delivery


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def make_mailer(
    tmp_path: Path, clock: ManualClock, gazetteer: Gazetteer
) -> Iterator[Callable[..., Stages]]:
    """``make_mailer(database=..., smtp={...}, **delivery)``: a store on ``database`` and
    the ``delivery`` section (Maildir, or the relay ``smtp`` names) to send it with."""
    mailers: list[Stages] = []

    def make(*, database: str, smtp: dict[str, Any] | None = None, **delivery: Any) -> Stages:
        settings: dict[str, Any] = {**DELIVERY, **delivery}
        if smtp is not None:
            relay = dict(smtp)
            host, port = relay.pop("host"), relay.pop("port")
            section = smtp_delivery(tmp_path, host, port, smtp=relay, **settings)
        else:
            section = maildir_delivery(tmp_path, **settings)
        mailer = make_stages(tmp_path, database, clock, gazetteer, delivery=section)
        mailers.append(mailer)
        return mailer

    yield make
    for mailer in mailers:
        mailer.close()


@pytest.fixture
def smtp_mailer(make_mailer: Callable[..., Stages], sink: SmtpSink, db_url: str) -> Stages:
    """The delivery stage (SQLite, and PostgreSQL when configured) sending to ``sink``."""
    return make_mailer(database=db_url, smtp={"host": sink.host, "port": sink.port})
