"""Coming back: someone who unsubscribed and asks again (on the form, or through the
operator) gets the confirmation at once, really delivered to a relay, and confirming
makes them active with the choices they just made. A confirmation link made before they
left does nothing; nothing else reaches them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.subscribers import make_subscription
from alerts.testing import SmtpSink
from alerts.types import SubscriberStatus
from alerts.web import create_app

BASE = "https://alerts.example.org"
JO = "jo.bloggs@example.org"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def config(
    write_config: Callable[..., Path], sink: SmtpSink, db_url: str, config_path: Path
) -> Path:
    # After config_path (run_cli's default config, the same file), so this one is what is read.
    return write_config(
        database=db_url,
        site={"base_url": BASE},
        delivery={
            "backend": "smtp",
            "smtp": {"host": sink.host, "port": sink.port, "security": "none", "timeout": 5},
        },
    )


@pytest.fixture
def app(config: Path) -> Iterator[App]:
    app = App(config)
    yield app
    app.close()


def delivered(app: App, sink: SmtpSink) -> list[tuple[str, str, str]]:
    """Send what is queued to the relay; (recipient, subject, plain text) of what it took."""
    sink.clear()
    report = send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
    assert sink.wait_for(report.sent, timeout=10)
    out = []
    for received in sink.received:
        message = received.message()
        body = message.get_body(("plain",))
        out.append(
            (received.rcpt_tos[0], str(message["Subject"]), body.get_content() if body else "")
        )
    return out


def confirm_token(text: str) -> str:
    found = re.search(r"/confirm\?token=([A-Za-z0-9_.\-]+)", text)
    assert found, text
    return found.group(1)


def left(app: App, clock: ManualClock) -> int:
    """Jo subscribed to Medway, confirmed, and later unsubscribed."""
    subscriber = app.store.subscribers.add(
        make_subscription(app.gazetteer, JO, ["medway"], frequency="daily"), now=clock.now()
    )
    clock.advance(timedelta(days=30))
    assert app.store.subscribers.unsubscribe(subscriber.id, now=clock.now())
    clock.advance(timedelta(days=2))
    return subscriber.id


def test_an_unsubscribed_resident_who_asks_again_gets_the_confirmation_and_is_active_with_the_new_choices(
    app: App, sink: SmtpSink, clock: ManualClock
) -> None:
    subscriber_id = left(app, clock)
    client = TestClient(create_app(app), base_url=BASE)
    page = client.post(
        "/subscribe", data={"email": JO, "area": ["dover", "chatham"], "frequency": "weekly"}
    )
    assert page.status_code == 200

    [(to, subject, text)] = delivered(app, sink)
    assert to == JO and subject.startswith("Confirm your")
    assert (
        app.store.subscribers.get(subscriber_id).status is SubscriberStatus.UNSUBSCRIBED
    )  # until they confirm

    clock.advance(timedelta(minutes=5))
    assert client.post("/confirm", data={"token": confirm_token(text)}).status_code == 200
    back = app.store.subscribers.get(subscriber_id)
    assert back.status is SubscriberStatus.ACTIVE
    assert set(back.areas) == {"dover", "chatham"} and back.frequency.value == "weekly"
    [(to, subject, _)] = delivered(app, sink)
    assert to == JO and subject.startswith("Welcome")


def test_a_confirmation_asked_for_before_leaving_is_not_sent_after(
    app: App, sink: SmtpSink, clock: ManualClock
) -> None:
    client = TestClient(create_app(app), base_url=BASE)
    client.post("/subscribe", data={"email": JO, "area": ["medway"], "frequency": "daily"})
    clock.advance(timedelta(minutes=1))
    found = app.store.subscribers.find_mailbox(JO)
    assert found is not None and app.store.subscribers.unsubscribe(found.id, now=clock.now())

    assert delivered(app, sink) == []  # queued before they left: they asked for nothing since


def test_an_old_confirmation_link_does_not_bring_back_someone_who_left_after_it(
    app: App, sink: SmtpSink, clock: ManualClock
) -> None:
    client = TestClient(create_app(app), base_url=BASE)
    client.post("/subscribe", data={"email": JO, "area": ["medway"], "frequency": "daily"})
    [(_, _, text)] = delivered(app, sink)
    clock.advance(timedelta(minutes=1))
    found = app.store.subscribers.find_mailbox(JO)
    assert found is not None and app.store.subscribers.unsubscribe(found.id, now=clock.now())
    clock.advance(timedelta(minutes=1))

    client.post("/confirm", data={"token": confirm_token(text)})
    assert app.store.subscribers.get(found.id).status is SubscriberStatus.UNSUBSCRIBED
    assert delivered(app, sink) == []


def test_the_operator_adding_someone_who_left_sends_them_a_confirmation_only_they_can_act_on(
    app: App, sink: SmtpSink, clock: ManualClock, config: Path, run_cli: Callable[..., Result]
) -> None:
    subscriber_id = left(app, clock)
    result = run_cli("subscribers", "add", JO, "--area", "dover", config=config)
    assert result.exit_code == 0, result.output
    assert "unsubscribed" in result.output and "confirmation" in result.output
    assert app.store.subscribers.get(subscriber_id).status is SubscriberStatus.UNSUBSCRIBED

    [(to, subject, text)] = delivered(app, sink)
    assert to == JO and subject.startswith("Confirm your")
    clock.advance(timedelta(minutes=3))
    TestClient(create_app(app), base_url=BASE).post("/confirm", data={"token": confirm_token(text)})
    back = app.store.subscribers.get(subscriber_id)
    assert back.status is SubscriberStatus.ACTIVE and back.areas == ("dover",)
