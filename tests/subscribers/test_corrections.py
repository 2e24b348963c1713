"""Corrections: a pending sign-up changed (past the form's 10-minute gap) gets a fresh
confirmation stating the new choice; the first link then says it was replaced, and the
newest confirms what it states."""

from __future__ import annotations

import email
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.types import SubscriberStatus
from alerts.web import create_app

BASE = "https://alerts.example.org"


@pytest.fixture
def app(write_config: Callable[..., Path], config_path: Path) -> Iterator[App]:
    app = App(write_config(site={"base_url": BASE}))
    yield app
    app.close()


def newest_confirmation(tmp_path: Path) -> str:
    files = sorted(
        (p for p in (tmp_path / "maildir").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_mtime_ns,
    )
    tokens = []
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        tokens += re.findall(r"/confirm\?token=([A-Za-z0-9_.\-]+)", text)
    return tokens[-1]


def test_a_corrected_sign_up_gets_a_fresh_confirmation_and_the_old_link_says_it_was_replaced(
    app: App, clock: ManualClock, tmp_path: Path
) -> None:
    client = TestClient(create_app(app), base_url=BASE)
    client.post(
        "/subscribe", data={"email": "jo@example.org", "area": ["dover"], "frequency": "daily"}
    )
    send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
    first = newest_confirmation(tmp_path)
    clock.advance(timedelta(minutes=11))
    client.post(
        "/subscribe", data={"email": "jo@example.org", "area": ["medway"], "frequency": "weekly"}
    )
    assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 1
    second = newest_confirmation(tmp_path)
    assert second != first

    old = client.get(f"/confirm?token={first}")
    assert old.status_code == 400 and "This confirmation link was replaced" in old.text
    assert client.post("/confirm", data={"token": first}).status_code == 400
    assert client.post("/confirm", data={"token": second}).status_code == 200
    jo = app.store.subscribers.find_mailbox("jo@example.org")
    assert jo is not None and jo.status is SubscriberStatus.ACTIVE
    assert jo.areas == ("medway",) and jo.frequency.value == "weekly"
