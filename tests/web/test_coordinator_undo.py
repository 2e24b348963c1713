"""Coordinators: the edition to forward is chosen on the form and on the manage page;
every edition keeps RFC 8058 one-click in its headers; and when a one-click (perhaps a
member's mail app holding a forwarded copy) ends a forwardable subscription, the
coordinator is mailed at once a link that restores it exactly as it was, once, for them
only, and never over what happened since. Mail goes to a real SMTP sink."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.testing import SmtpSink
from alerts.tokens import MANAGE, link_signer
from alerts.types import Frequency, Subscriber, SubscriberStatus
from alerts.web import create_app
from tests.support.digests import advisory, save, subscribe

BASE = "https://alerts.example.org"
WATCH = "watch@example.org"
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def app(write_config: Callable[..., Path], sink: SmtpSink, db_url: str) -> Iterator[App]:
    app = App(
        write_config(
            database=db_url,
            site={"base_url": BASE},
            delivery={
                "backend": "smtp",
                "smtp": {"host": sink.host, "port": sink.port, "security": "none", "timeout": 5},
            },
        )
    )
    yield app
    app.close()


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(create_app(app), base_url=BASE)


def delivered(app: App, sink: SmtpSink) -> list[EmailMessage]:
    """Send what is queued to the relay; the messages it took."""
    sink.clear()
    report = send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
    assert sink.wait_for(report.sent, timeout=10)
    return [received.message() for received in sink.received]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def link(message: EmailMessage, path: str) -> str:
    found = re.search(
        rf"{re.escape(BASE)}{re.escape(path)}\?token=[A-Za-z0-9_.\-]+", text_of(message)
    )
    assert found, text_of(message)
    return found.group(0).removeprefix(BASE)


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]


def coordinator(app: App, clock: ManualClock) -> Subscriber:
    """A watch coordinator on the edition to forward, with a weekly digest already sent."""
    subscriber = subscribe(
        app, WATCH, ["medway", "dover"], frequency="weekly", forwardable=True, urgent=False
    )
    save(app, advisory("fraud", title="Caller poses as police"))
    queue_digests(
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        Frequency.WEEKLY,
        now=app.now(),
    )
    return app.store.subscribers.get(subscriber.id)  # its watermark moved with the digest


def forwarded_one_click(app: App, sink: SmtpSink, client: TestClient) -> str:
    """The digest reaches the coordinator; a member's mail app, holding a forwarded copy,
    presses its one-click header. Returns the undo mail's link."""
    [edition] = delivered(app, sink)
    assert "token=" not in text_of(edition)  # nothing personal in the body
    # Every edition keeps RFC 8058 one-click in its headers.
    assert edition["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = re.search(
        r"<([^>]+/unsubscribe/one-click\?token=[^>]+)>", edition["List-Unsubscribe"]
    )
    assert one_click
    response = client.post(
        one_click.group(1).removeprefix(BASE),
        content=b"List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
    )
    assert response.status_code == 200
    found = app.store.subscribers.find(WATCH)
    assert found is not None and found.status is SubscriberStatus.UNSUBSCRIBED

    [undo_mail] = delivered(app, sink)  # at once, although they just left
    assert undo_mail["To"] == WATCH
    assert undo_mail["Subject"] == f"Your {app.config.site.name} alerts were stopped"
    assert "List-Unsubscribe" not in undo_mail
    text = text_of(undo_mail)
    assert "weekly alerts for Dover and Medway" in text
    return link(undo_mail, "/undo")


def test_the_edition_to_forward_is_chosen_on_the_form_and_confirmed(
    app: App, sink: SmtpSink, client: TestClient
) -> None:
    page = client.get("/subscribe")
    assert 'name="edition" value="forwardable"' in page.text
    assert "<legend>Who the emails are for</legend>" in page.text
    client.post(
        "/subscribe",
        data={"email": WATCH, "area": ["medway"], "frequency": "weekly", "edition": "forwardable"},
    )
    [confirmation] = delivered(app, sink)
    assert "weekly alerts for Medway, in the edition to forward" in text_of(confirmation)
    client.post("/confirm", data={"token": token_of(link(confirmation, "/confirm"))})
    found = app.store.subscribers.find(WATCH)
    assert found is not None and found.status is SubscriberStatus.ACTIVE and found.forwardable


def test_someone_who_left_comes_back_on_the_edition_they_choose(
    app: App, sink: SmtpSink, client: TestClient, clock: ManualClock
) -> None:
    gone = subscribe(app, WATCH, ["medway"])
    app.store.subscribers.unsubscribe(gone.id, now=clock.now())
    clock.advance(timedelta(days=1))
    client.post(
        "/subscribe",
        data={"email": WATCH, "area": ["dover"], "frequency": "daily", "edition": "forwardable"},
    )
    [confirmation] = delivered(app, sink)
    client.post("/confirm", data={"token": token_of(link(confirmation, "/confirm"))})
    back = app.store.subscribers.get(gone.id)
    assert back.status is SubscriberStatus.ACTIVE and back.forwardable and back.areas == ("dover",)


def test_the_manage_page_changes_the_edition_and_an_older_page_without_it_keeps_it(
    app: App, client: TestClient
) -> None:
    resident = subscribe(app, WATCH, ["medway"])
    token = link_signer(app.config.site.base_url, app.config.security).token(
        resident.id, MANAGE, app.now(), resident.link_key
    )
    page = client.get(f"/manage?token={token}")
    assert 'value="personal" aria-describedby="edition-personal-hint" checked' in page.text
    form = {"token": token, "area": "medway", "frequency": "daily", "urgent": "yes"}
    saved = client.post("/manage", data={**form, "edition": "forwardable"})
    assert "you can forward them" in saved.text
    assert app.store.subscribers.get(resident.id).forwardable
    client.post("/manage", data=form)  # a page from before the field: the edition stays
    assert app.store.subscribers.get(resident.id).forwardable
    wrong = client.post("/manage", data={**form, "edition": "everyone"})
    assert wrong.status_code == 400 and "Select who the emails are for" in wrong.text


def test_a_one_click_on_a_forwarded_copy_mails_the_coordinator_an_undo_that_restores_it_as_it_was(
    app: App, sink: SmtpSink, client: TestClient, clock: ManualClock
) -> None:
    before = coordinator(app, clock)
    clock.advance(timedelta(minutes=5))
    undo_link = forwarded_one_click(app, sink, client)
    clock.advance(timedelta(hours=2))

    asked = client.get(undo_link)  # a mail scanner opening it changes nothing
    assert asked.status_code == 200 and "Start your alerts again?" in asked.text
    assert app.store.subscribers.get(before.id).status is SubscriberStatus.UNSUBSCRIBED
    done = client.post("/undo", data={"token": token_of(undo_link)})
    assert done.status_code == 200 and "Your alerts are back" in done.text

    after = app.store.subscribers.get(before.id)
    assert after.status is SubscriberStatus.ACTIVE
    same = ("areas", "frequency", "forwardable", "urgent", "confirmed_at", "watermark", "link_key")
    assert {f: getattr(after, f) for f in same} == {f: getattr(before, f) for f in same}

    # Once: pressed again, it says so and changes nothing.
    again = client.post("/undo", data={"token": token_of(undo_link)})
    assert "Your alerts are on" in again.text
    assert app.store.subscribers.get(before.id).status_changed_at == after.status_changed_at
    assert delivered(app, sink) == []  # and no mail came of it


def test_the_undo_link_does_nothing_after_an_erasure(
    app: App, sink: SmtpSink, client: TestClient, clock: ManualClock
) -> None:
    coordinator(app, clock)
    undo_link = forwarded_one_click(app, sink, client)
    assert app.store.retention.erase(app.config.security, WATCH, app.now())
    subscribe(app, "someone.else@example.org", ["medway"])  # a new row, perhaps the same id
    for response in (
        client.get(undo_link),
        client.post("/undo", data={"token": token_of(undo_link)}),
    ):
        assert response.status_code == 400 and "no longer exists" in response.text
    assert app.store.subscribers.find(WATCH) is None


def test_the_undo_link_does_nothing_once_they_asked_to_subscribe_again_differently(
    app: App, sink: SmtpSink, client: TestClient, clock: ManualClock
) -> None:
    before = coordinator(app, clock)
    undo_link = forwarded_one_click(app, sink, client)
    clock.advance(timedelta(minutes=11))
    client.post("/subscribe", data={"email": WATCH, "area": ["dover"], "frequency": "daily"})
    [confirmation] = delivered(app, sink)

    refused = client.post("/undo", data={"token": token_of(undo_link)})
    assert "This link no longer works" in refused.text
    assert app.store.subscribers.get(before.id).status is SubscriberStatus.UNSUBSCRIBED
    # Their newer choice stands, and confirming it still works.
    client.post("/confirm", data={"token": token_of(link(confirmation, "/confirm"))})
    now = app.store.subscribers.get(before.id)
    assert now.status is SubscriberStatus.ACTIVE and now.areas == ("dover",)
    assert not now.forwardable
    assert "Your alerts are on" in client.post("/undo", data={"token": token_of(undo_link)}).text
    assert app.store.subscribers.get(before.id).areas == ("dover",)


def test_a_personal_edition_one_click_sends_nothing_after(
    app: App, sink: SmtpSink, client: TestClient, clock: ManualClock
) -> None:
    subscribe(app, "resident@example.org", ["medway"], frequency="weekly")
    save(app, advisory("fraud", title="Caller poses as police"))
    queue_digests(
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        Frequency.WEEKLY,
        now=app.now(),
    )
    [digest] = delivered(app, sink)
    one_click = re.search(
        r"<([^>]+/unsubscribe/one-click\?token=[^>]+)>", digest["List-Unsubscribe"]
    )
    assert one_click
    client.post(
        one_click.group(1).removeprefix(BASE),
        content=b"List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
    )
    assert delivered(app, sink) == []
