"""What 'alerts web' sends itself: confirmations, and for a while after the console
queued alerts, those alerts too (never digests); beside 'alerts serve''s sender, each
message still goes once, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import outbox_drainer
from alerts.store.users import Role
from alerts.testing import SmtpSink
from alerts.web import create_app
from alerts.web.sending import ALERTS_WINDOW, ConsoleSends, web_sender
from tests.conftest import NOW
from tests.support.console import BASE, add_user, hidden_fields, signed_in
from tests.support.seeding import seed_messages, seed_subscribers
from tests.support.tables import outbox_rows

EARLIER = NOW - timedelta(hours=1)


@pytest.fixture
def relay() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def app(write_config: Callable[..., Path], db_url: str, relay: SmtpSink) -> Iterator[App]:
    app = App(
        write_config(
            database=db_url,
            site={"base_url": BASE},
            delivery={
                "backend": "smtp",
                "smtp": {"host": relay.host, "port": relay.port, "security": "none"},
            },
            email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
        )
    )
    yield app
    app.close()


def send_urgent(app: App, console: ConsoleSends) -> None:
    """An editor composes and sends an urgent advisory for Chatham."""
    add_user(app, "jo", Role.EDITOR)
    client = signed_in(TestClient(create_app(app, console_sends=console), base_url=BASE), "jo")
    form = {
        **hidden_fields(client.get("/admin/compose").text),
        "title": "Dangerous dog loose in Chatham",
        "areas": "Chatham",
        "priority": "urgent",
        "body": "Residents of Chatham: keep children and pets indoors.",
        "action": "send",
    }
    answer = client.post("/admin/compose", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_the_web_sender_sends_the_consoles_alerts_for_a_while_and_never_digests(
    app: App, relay: SmtpSink, clock: ManualClock
) -> None:
    (reader,) = seed_subscribers(
        app.store, count=1, now=EARLIER, areas=("chatham",), frequencies=("immediate",)
    )
    subscriber = app.store.subscribers.find(reader)
    assert subscriber is not None
    seed_messages(app.store, subscriber.id, [EARLIER])  # a digest, due
    console = ConsoleSends(app.clock.monotonic)
    sender = web_sender(app, console, threading.Event())
    assert not console.wanted()
    send_urgent(app, console)
    assert console.wanted()
    report = sender.send(threading.Event())
    assert report.sent == 1
    (message,) = relay.received
    assert "Dangerous dog" in str(message.message()["Subject"])
    kinds = Counter((row["priority"], row["status"]) for row in outbox_rows(app.store.engine))
    assert kinds == {(10, "sent"): 1, (20, "pending"): 1}  # the digest waits for 'alerts serve'
    clock.advance(timedelta(seconds=ALERTS_WINDOW + 1))
    assert not console.wanted()
    assert sender.send(threading.Event()).sent == 0


def test_beside_serves_sender_each_alert_the_console_queued_goes_once(
    app: App, relay: SmtpSink
) -> None:
    readers = seed_subscribers(
        app.store, count=40, now=EARLIER, areas=("chatham",), frequencies=("immediate",)
    )
    console = ConsoleSends(app.clock.monotonic)
    stop = threading.Event()
    senders = [
        outbox_drainer(
            app.config.delivery, app.config.mail, app.store, stop, clock=app.clock, name="sender"
        ).start(),
        web_sender(app, console, stop).start(),
    ]
    try:
        send_urgent(app, console)
        assert relay.wait_for(40, timeout=60)
        # Long enough for a second copy to arrive, were there to be one.
        threading.Event().wait(1.0)
    finally:
        stop.set()
        for sender in senders:
            sender.join(30)
    to = Counter(address for message in relay.received for address in message.rcpt_tos)
    assert to == Counter(readers)
    ids = [re.sub(r"\s", "", str(m.message()["Message-ID"])) for m in relay.received]
    assert len(set(ids)) == len(ids) == 40
