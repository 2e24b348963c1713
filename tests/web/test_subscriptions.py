"""The subscription pages through Starlette's TestClient, on SQLite and PostgreSQL:
subscribe and confirm, manage, unsubscribe that asks first, RFC 8058 one-click, and
friendly pages for bad links and bad input."""

from __future__ import annotations

import asyncio
import email
import re
import shutil
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.errors import ConfigError
from alerts.store.subscribers import ACTIVE, PENDING, SUPPRESSED, UNSUBSCRIBED
from alerts.subscribers import make_subscription
from alerts.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, Confirmation, LinkSigner
from alerts.types import Frequency, Subscriber
from alerts.web import create_app
from tests.support import NOW, REPO
from tests.support.tables import outbox_rows


@pytest.fixture
def subscriber(app: App) -> Subscriber:
    subscription = make_subscription(
        app.gazetteer, "Jo.Bloggs@example.org", ["medway"], frequency="daily"
    )
    return app.store.subscribers.add(subscription, now=NOW)


def token(app: App, subscriber_id: int, purpose: str) -> str:
    return LinkSigner(app.config.site.base_url, app.config.security).token(
        subscriber_id, purpose, NOW
    )


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def heading(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, html
    return match.group(1).strip()


def errors(html: str) -> list[str]:
    return re.findall(r'<p class="error" id="[a-z]+-error">(.*?)</p>', html)


def ticked_areas(html: str) -> list[str]:
    return re.findall(r'name="area" value="([^"]+)" checked', html)


def queued_messages(app: App, kind: str = "confirm") -> list[EmailMessage]:
    """The transactional messages of ``kind`` queued so far, in order."""
    messages = []
    for row in outbox_rows(app.store.engine):
        if row["digest_kind"] != kind:
            continue
        assert row["status"] == "pending"
        message = email.message_from_string(row["digest_meta"]["raw"], policy=default)
        assert message["Message-ID"] == row["message_id"]
        assert isinstance(message, EmailMessage)  # policy=default parses to EmailMessage
        messages.append(message)
    return messages


def press_confirm(client: TestClient, link: str) -> str:
    """Open a confirmation link as a person does: the page asks, the button confirms."""
    query = parse_qs(urlsplit(link).query)
    response = client.post("/confirm", data={"token": query["token"][0]})
    assert response.status_code == 200, response.text
    return heading(response.text)


def confirm_link(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"https://alerts\.example\.org/confirm\?token=\S+", text)
    assert match, text
    return match.group(0)


# -- unsubscribe ----------------------------------------------------------------


def running_an_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_every_page_does_its_database_work_off_the_event_loop(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    # SQLAlchemy's own hook (no mock) notes, for each statement, whether the thread
    # running it is the event loop's: a blocking call there would stall every request.
    on_the_loop: list[bool] = []

    def note(*_: object) -> None:
        on_the_loop.append(running_an_event_loop())

    event.listen(app.store.engine, "before_cursor_execute", note)
    unsubscribe_token = token(app, subscriber.id, UNSUBSCRIBE)
    manage_token = token(app, subscriber.id, MANAGE)
    requests = [
        client.post(
            "/subscribe", data={"email": "new@example.org", "areas": "Dover", "frequency": "daily"}
        ),
        client.get(f"/confirm?token={token(app, subscriber.id, CONFIRM)}"),
        client.post("/confirm", data={"token": token(app, subscriber.id, CONFIRM)}),
        client.get(f"/manage?token={manage_token}"),
        client.post(
            "/manage", data={"token": manage_token, "areas": "Dover", "frequency": "weekly"}
        ),
        client.get(f"/unsubscribe?token={unsubscribe_token}"),
        client.post("/unsubscribe", data={"token": unsubscribe_token}),
        client.post(
            f"/unsubscribe/one-click?token={unsubscribe_token}",
            data={"List-Unsubscribe": "One-Click"},
        ),
    ]
    assert [r.status_code for r in requests] == [200] * len(requests)
    assert on_the_loop and not any(on_the_loop)


def test_the_unsubscribe_link_asks_first_and_changes_nothing(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    response = client.get(path_of(links.unsubscribe_url))
    assert response.status_code == 200
    assert heading(response.text) == f"Unsubscribe from {app.config.site.name}?"
    assert "J…@example.org" in response.text and "Jo.Bloggs" not in response.text
    assert '<form method="post" action="/unsubscribe">' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE


def test_the_button_unsubscribes(app: App, client: TestClient, subscriber: Subscriber) -> None:
    response = client.post("/unsubscribe", data={"token": token(app, subscriber.id, UNSUBSCRIBE)})
    assert response.status_code == 200
    assert heading(response.text) == "You are unsubscribed"
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED
    again = client.post("/unsubscribe", data={"token": token(app, subscriber.id, UNSUBSCRIBE)})
    assert "it was already unsubscribed" in again.text
    page = client.get(f"/unsubscribe?token={token(app, subscriber.id, UNSUBSCRIBE)}")
    assert heading(page.text) == "You are already unsubscribed"


def test_a_form_posted_from_another_site_is_refused(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    data = {"token": token(app, subscriber.id, UNSUBSCRIBE)}
    response = client.post("/unsubscribe", data=data, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "Nothing was changed" in response.text
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE
    ours = client.post("/unsubscribe", data=data, headers={"Origin": "https://alerts.example.org"})
    assert ours.status_code == 200
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED


def test_a_token_for_another_purpose_does_not_unsubscribe(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    for purpose in (MANAGE, CONFIRM):
        response = client.post("/unsubscribe", data={"token": token(app, subscriber.id, purpose)})
        assert response.status_code == 400
        assert heading(response.text) == "This link is not valid"
    assert client.post("/unsubscribe", data={}).status_code == 400
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE


def test_one_click_unsubscribes_at_once(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    response = client.post(
        path_of(links.one_click_url),
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED
    # Providers may repeat the POST: still fine.
    assert (
        client.post(
            path_of(links.one_click_url), data={"List-Unsubscribe": "One-Click"}
        ).status_code
        == 200
    )


def test_one_click_needs_a_post_and_a_valid_unsubscribe_token(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    assert (
        client.get(path_of(links.one_click_url)).status_code == 200
    )  # a prefetch cannot unsubscribe
    manage = token(app, subscriber.id, MANAGE)
    assert (
        client.post(
            f"/unsubscribe/one-click?token={manage}", data={"List-Unsubscribe": "One-Click"}
        ).status_code
        == 400
    )
    assert (
        client.post("/unsubscribe/one-click", data={"List-Unsubscribe": "One-Click"}).status_code
        == 400
    )
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE


@pytest.mark.parametrize("query", ["", "?token=", "?token=garbage", "?token=eyJhIjoxfQ.abc.def"])
def test_a_bad_link_gets_a_friendly_page_and_400(client: TestClient, query: str) -> None:
    for page in ("/unsubscribe", "/manage", "/confirm"):
        if page == "/manage" and query in ("", "?token="):
            continue  # no link at all: the page that mails one (tests/web/test_manage.py)
        response = client.get(page + query)
        assert response.status_code == 400
        assert heading(response.text) in {"This link is not valid", "This link is incomplete"}
        assert "the links at the foot of the most recent email" in response.text


def test_a_link_for_a_subscriber_that_no_longer_exists_is_a_bad_link(
    app: App, client: TestClient
) -> None:
    response = client.get(f"/unsubscribe?token={token(app, 424242, UNSUBSCRIBE)}")
    assert response.status_code == 400 and "no longer exists" in response.text


# -- manage ---------------------------------------------------------------------


def test_manage_shows_the_current_choices(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    response = client.get(f"/manage?token={token(app, subscriber.id, MANAGE)}")
    assert response.status_code == 200
    assert heading(response.text) == "Your alerts"
    assert ticked_areas(response.text) == ["medway"]
    assert 'value="daily" checked' in response.text
    assert 'name="urgent" value="yes" checked' in response.text


def test_manage_changes_areas_frequency_and_urgent(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    response = client.post(
        "/manage",
        data={
            "token": token(app, subscriber.id, MANAGE),
            "areas": "Chatham, CT1, dover",
            "frequency": "weekly",
            "widening": "ct1:canterbury",
        },
    )
    assert response.status_code == 200
    assert (
        "Saved. You will get weekly alerts for Canterbury, Chatham and Dover. Urgent alerts wait for your digest."
        in response.text
    )
    after = app.store.subscribers.get(subscriber.id)
    assert set(after.areas) == {"chatham", "canterbury", "dover"}
    assert after.frequency is Frequency.WEEKLY and not after.urgent
    assert after.status is ACTIVE and after.watermark == subscriber.watermark


def test_manage_explains_bad_input_and_changes_nothing(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    manage = token(app, subscriber.id, MANAGE)
    response = client.post(
        "/manage", data={"token": manage, "areas": "Medwy", "frequency": "daily", "urgent": "yes"}
    )
    assert response.status_code == 400
    assert errors(response.text) == ["“Medwy” is not a place we know. Did you mean Medway?"]
    assert 'value="Medwy"' in response.text  # what they typed is kept for them to fix
    response = client.post("/manage", data={"token": manage, "areas": "", "frequency": "daily"})
    assert errors(response.text) == [
        "Choose at least one area, or type a town or postcode district"
    ]
    response = client.post(
        "/manage", data={"token": manage, "areas": "kent", "frequency": "hourly"}
    )
    assert errors(response.text) == ["Select how often you want alerts"]
    assert app.store.subscribers.get(subscriber.id) == subscriber


def test_an_unsubscribe_token_cannot_manage(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    response = client.post(
        "/manage",
        data={
            "token": token(app, subscriber.id, UNSUBSCRIBE),
            "areas": "dover",
            "frequency": "weekly",
        },
    )
    assert response.status_code == 400
    assert app.store.subscribers.get(subscriber.id).areas == ("medway",)


def test_manage_cannot_bring_back_an_unsubscribed_address(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    app.store.subscribers.unsubscribe(subscriber.id, now=NOW)
    manage = token(app, subscriber.id, MANAGE)
    assert heading(client.get(f"/manage?token={manage}").text) == "You are not subscribed"
    client.post("/manage", data={"token": manage, "areas": "dover", "frequency": "weekly"})
    after = app.store.subscribers.get(subscriber.id)
    assert after.status is UNSUBSCRIBED and after.areas == ("medway",)


# -- subscribe and confirm ------------------------------------------------------


def test_subscribe_form_is_labelled_and_explains_each_bad_field(client: TestClient) -> None:
    page = client.get("/subscribe")
    assert page.status_code == 200
    for field in ("email", "areas"):
        assert f'<label for="{field}">' in page.text and f'id="{field}"' in page.text
    response = client.post(
        "/subscribe",
        data={"email": "<script>alert(1)</script>", "areas": "Narnia", "frequency": "hourly"},
    )
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.text
    messages = errors(response.text)
    assert len(messages) == 3
    assert messages[0] == "Enter an email address in the correct format, like name@example.com"
    assert messages[1].startswith("“Narnia” is not a place we know")
    assert messages[2] == "Select how often you want alerts"
    assert '<div class="notice" role="alert"' in response.text


def test_subscribing_creates_a_pending_subscriber_and_queues_a_confirmation(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    clock.set(NOW)
    response = client.post(
        "/subscribe",
        data={
            "email": "New@Example.org",
            "areas": "ME4, Chatham",
            "frequency": "weekly",
            "urgent": "yes",
        },
    )
    assert response.status_code == 200
    assert heading(response.text) == "Check your email"
    pending = app.store.subscribers.find("New@example.org")
    assert pending is not None and pending.status is PENDING and pending.watermark is None
    assert (
        set(pending.areas) == {"chatham"}
        and pending.frequency is Frequency.WEEKLY
        and pending.urgent
    )
    [message] = queued_messages(app)
    assert message["To"] == "New@example.org"
    assert message["Subject"] == f"Confirm your {app.config.site.name} subscription"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime.utcoffset() is not None
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'lang="en-GB"' in html and "Confirm my subscription" in html
    assert confirm_link(message) in html.replace("&amp;", "&")


def test_opening_the_confirmation_link_asks_and_changes_nothing(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    """Mail scanners (Outlook Safe Links, corporate gateways) open every link in a
    message: a GET must not subscribe anybody."""
    clock.set(NOW)
    client.post(
        "/subscribe",
        data={"email": "scan@example.org", "areas": "ME4", "frequency": "weekly", "urgent": "yes"},
    )
    link = confirm_link(queued_messages(app)[0])
    for _ in range(3):  # a scanner, then the person, then a reload
        response = client.get(path_of(link))
        assert response.status_code == 200
        assert heading(response.text) == "Confirm your subscription"
    assert (
        "s…@example.org will get weekly alerts for Chatham, and urgent alerts at once."
        in response.text
    )
    assert '<form method="post" action="/confirm">' in response.text
    assert "Confirm my subscription</button>" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert app.store.subscribers.find("scan@example.org").status is PENDING  # type: ignore[union-attr]


def test_the_confirm_button_activates_with_the_watermark_at_that_moment(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    clock.set(NOW)
    client.post(
        "/subscribe", data={"email": "c@example.org", "areas": "kent", "frequency": "daily"}
    )
    link = confirm_link(queued_messages(app)[0])
    later = NOW + timedelta(days=2)
    clock.set(later)
    assert press_confirm(client, link) == "You are subscribed"
    active = app.store.subscribers.find("c@example.org")
    assert active is not None and active.status is ACTIVE and active.watermark == later
    assert not active.urgent  # the box was left unticked
    clock.set(later + timedelta(hours=1))
    assert press_confirm(client, link) == "You were already subscribed"
    assert heading(client.get(path_of(link)).text) == "You were already subscribed"
    assert app.store.subscribers.get(active.id).watermark == later


def test_the_confirm_button_refuses_a_form_from_another_site(app: App, client: TestClient) -> None:
    client.post(
        "/subscribe", data={"email": "x@example.org", "areas": "kent", "frequency": "daily"}
    )
    pending = app.store.subscribers.find("x@example.org")
    assert pending is not None
    data = {"token": token(app, pending.id, CONFIRM)}
    response = client.post("/confirm", data=data, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert app.store.subscribers.get(pending.id).status is PENDING
    for purpose in (MANAGE, UNSUBSCRIBE):  # only a confirm token confirms
        assert (
            client.post("/confirm", data={"token": token(app, pending.id, purpose)}).status_code
            == 400
        )
    assert client.post("/confirm", data={}).status_code == 400
    assert app.store.subscribers.get(pending.id).status is PENDING


def test_an_expired_confirmation_link_says_to_subscribe_again(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    clock.set(NOW)
    client.post(
        "/subscribe", data={"email": "slow@example.org", "areas": "kent", "frequency": "daily"}
    )
    link = confirm_link(queued_messages(app)[0])
    clock.set(NOW + timedelta(days=8))
    response = client.get(path_of(link))
    pressed = client.post("/confirm", data={"token": parse_qs(urlsplit(link).query)["token"][0]})
    assert response.status_code == 400 and pressed.status_code == 400
    assert heading(response.text) == heading(pressed.text) == "This link has expired"
    assert 'href="/subscribe"' in response.text
    assert app.store.subscribers.find("slow@example.org").status is PENDING  # type: ignore[union-attr]


def test_a_confirmation_link_cannot_undo_an_unsubscribe(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    clock.set(NOW)
    client.post(
        "/subscribe", data={"email": "u@example.org", "areas": "kent", "frequency": "daily"}
    )
    link = confirm_link(queued_messages(app)[0])
    pending = app.store.subscribers.find("u@example.org")
    assert pending is not None
    app.store.subscribers.unsubscribe(
        pending.id, now=NOW + timedelta(minutes=1)
    )  # after the link was made
    response = client.get(path_of(link))
    assert response.status_code == 400
    pressed = client.post("/confirm", data={"token": parse_qs(urlsplit(link).query)["token"][0]})
    assert (
        pressed.status_code == 400
        and heading(pressed.text) == "This confirmation link no longer works"
    )
    assert app.store.subscribers.get(pending.id).status is UNSUBSCRIBED


def test_the_form_answers_alike_whoever_the_address_belongs_to(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    bounced = app.store.subscribers.add(
        make_subscription(app.gazetteer, "b@example.org", ["kent"]), now=NOW
    )
    app.store.subscribers.suppress(bounced.id, now=NOW)
    for address in ("Jo.Bloggs@example.org", "b@example.org"):
        response = client.post(
            "/subscribe", data={"email": address, "areas": "dover", "frequency": "weekly"}
        )
        assert response.status_code == 200 and heading(response.text) == "Check your email"
    # Active: told by email that it is subscribed, with a manage link; suppressed: never mailed.
    assert queued_messages(app, "confirm") == []
    assert [m["To"] for m in queued_messages(app, "already")] == ["Jo.Bloggs@example.org"]
    assert app.store.subscribers.get(subscriber.id).areas == ("medway",)
    assert app.store.subscribers.get(bounced.id).status is SUPPRESSED


def test_someone_who_left_can_come_back_by_confirming(
    app: App, client: TestClient, subscriber: Subscriber, clock: ManualClock
) -> None:
    app.store.subscribers.unsubscribe(subscriber.id, now=NOW)
    clock.set(NOW + timedelta(seconds=5))
    client.post(
        "/subscribe",
        data={"email": "Jo.Bloggs@example.org", "areas": "dover", "frequency": "weekly"},
    )
    # Not pending, nor changed: unsubscribed until the owner confirms.
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED
    assert app.store.subscribers.get(subscriber.id).areas == ("medway",)
    link = confirm_link(queued_messages(app)[0])
    assert press_confirm(client, link) == "You are subscribed"
    back = app.store.subscribers.get(subscriber.id)
    assert back.status is ACTIVE and back.areas == ("dover",) and back.frequency is Frequency.WEEKLY


def test_the_form_cannot_flood_an_inbox(app: App, client: TestClient, clock: ManualClock) -> None:
    data = {"email": "target@example.org", "areas": "kent", "frequency": "daily"}
    clock.set(NOW)
    for _ in range(5):
        assert client.post("/subscribe", data=data).status_code == 200
    assert len(queued_messages(app)) == 1
    clock.set(NOW + timedelta(minutes=11))
    client.post("/subscribe", data=data)
    assert len(queued_messages(app)) == 2


def test_no_newline_from_the_form_reaches_a_header(app: App, client: TestClient) -> None:
    response = client.post(
        "/subscribe",
        data={
            "email": "x@example.org\r\nBcc: victim@example.org",
            "areas": "kent",
            "frequency": "daily",
        },
    )
    assert response.status_code == 400
    assert queued_messages(app) == []


def test_a_transactional_message_keeps_newlines_out_of_its_headers(
    app: App, subscriber: Subscriber
) -> None:
    from dataclasses import replace

    from alerts.subscribers.mail import build_transactional_message

    hostile = replace(subscriber, name="Jo\r\nBcc: victim@example.org")
    message = build_transactional_message(
        app.config.mail,
        hostile,
        "Hello\r\nBcc: victim@example.org",
        "text",
        "<p>html</p>",
        now=NOW,
        message_id="<a@b>",
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hello Bcc: victim@example.org"
    assert parsed["To"].addresses[0].addr_spec == "Jo.Bloggs@example.org"
    assert parsed["Date"].datetime.utcoffset() is not None
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_a_web_sign_up_is_delivered_and_its_link_confirms(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    """End to end with the real delivery stage (Maildir backend): the queued confirmation
    is sent as built, and the link in the delivered mail activates the subscriber."""
    from alerts.delivery import send_pending

    clock.set(NOW)
    client.post(
        "/subscribe", data={"email": "e2e@example.org", "areas": "ME4", "frequency": "daily"}
    )
    report = send_pending(app.config.delivery, app.config.mail, app.store, app.clock, now=NOW)
    assert report.sent == 1
    [path] = list((app.config.delivery.maildir / "new").iterdir())
    delivered = email.message_from_bytes(path.read_bytes(), policy=default)
    assert delivered["To"] == "e2e@example.org"
    assert delivered["List-Unsubscribe"] is None  # nothing to leave yet
    assert isinstance(delivered, EmailMessage)
    link = confirm_link(delivered)
    assert heading(client.get(path_of(link)).text) == "Confirm your subscription"
    assert press_confirm(client, link) == "You are subscribed"
    assert app.store.subscribers.find("e2e@example.org").status is ACTIVE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("typed", "areas"),
    [
        ("Chatham and Gillingham", {"chatham", "gillingham"}),
        ("Chatham & Gillingham\nDover", {"chatham", "gillingham", "dover"}),
        ("Tonbridge and Malling", {"tonbridge-and-malling"}),
        ("Dover and Tonbridge and Malling", {"dover", "tonbridge-and-malling"}),
        ("me4 4tr", {"chatham"}),
    ],
)
def test_areas_can_be_typed_as_people_write_them(
    app: App, client: TestClient, typed: str, areas: set[str]
) -> None:
    response = client.post(
        "/subscribe", data={"email": "t@example.org", "areas": typed, "frequency": "daily"}
    )
    assert response.status_code == 200, errors(response.text)
    assert set(app.store.subscribers.find("t@example.org").areas) == areas  # type: ignore[union-attr]


def test_an_unknown_area_is_named_with_what_to_type_instead(client: TestClient) -> None:
    for typed, message in [
        (
            "SE9",
            "“SE9” is not a place we know. Enter a town, district or postcode district in Kent",
        ),
        (
            "Chatham and Narnia",
            "“Narnia” is not a place we know. Enter a town, district or postcode district in Kent",
        ),
        ("St Margret&#39;s at Clife", "Did you mean St Margaret&#39;s at Cliffe?"),
    ]:
        data = {
            "email": "t@example.org",
            "areas": typed.replace("&#39;", "'"),
            "frequency": "daily",
        }
        response = client.post("/subscribe", data=data)
        assert response.status_code == 400
        assert message in errors(response.text)[0], errors(response.text)


def test_the_archive_link_ticks_the_area(client: TestClient) -> None:
    assert ticked_areas(client.get("/subscribe?area=medway").text) == ["medway"]
    assert ticked_areas(client.get("/subscribe?area=ME4").text) == [
        "chatham"
    ]  # ME4 lies in Chatham
    assert ticked_areas(client.get("/subscribe?area=%3Cscript%3E").text) == []
    # A forwarded digest's link names all its areas; one that names nothing is left out.
    page = client.get("/subscribe?area=chatham,medway,narnia,chatham").text
    assert ticked_areas(page) == ["medway", "chatham"]
    assert 'id="areas" name="areas" value=""' in page


def test_a_broken_confirmation_template_stops_the_web_app_at_start_up_naming_it(
    write_config: Callable[..., Path], tmp_path: Path, sqlite_url: str
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    (templates / "email" / "confirm.html").write_text("{% for x in %}", encoding="utf-8")
    app = App(write_config(database=sqlite_url, templates=str(templates)))
    with pytest.raises(ConfigError, match=r"broken email template confirm\.html") as raised:
        create_app(app)
    assert str(raised.value.where).startswith(str(templates / "email" / "confirm.html"))
    app.close()


def test_manage_names_every_bad_field_at_once(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    manage = token(app, subscriber.id, MANAGE)
    response = client.post(
        "/manage", data={"token": manage, "areas": "Medwy", "frequency": "hourly"}
    )
    assert response.status_code == 400
    found = errors(response.text)
    assert (
        len(found) == 2
        and any("Medwy" in e for e in found)
        and "Select how often you want alerts" in found
    )
    assert app.store.subscribers.get(subscriber.id) == subscriber


def test_areas_are_chosen_by_ticking_districts_and_towns_and_typing_more(
    app: App, client: TestClient
) -> None:
    page = client.get("/subscribe").text
    # One box per district and town, grouped by district, no script on the page.
    assert "<script" not in page
    medway = re.search(
        r'<details class="district">\s*<summary>Medway</summary>(.*?)</details>', page, re.S
    )
    assert medway, page
    boxes = re.findall(r'name="area" value="([^"]+)"', medway.group(1))
    assert boxes[0] == "medway" and {"chatham", "gillingham", "rochester"} <= set(boxes)
    response = client.post(
        "/subscribe",
        data={
            "email": "tick@example.org",
            "area": ["chatham", "dover"],
            "areas": "TN23",
            "frequency": "weekly",
            "widening": "tn23:ashford",  # seen, and kept: TN23 spans Ashford's towns
        },
    )
    assert response.status_code == 200, errors(response.text)
    subscriber = app.store.subscribers.find("tick@example.org")
    assert subscriber is not None and set(subscriber.areas) == {"chatham", "dover", "ashford"}
    # Nothing ticked and nothing typed: one clear error, the choices kept.
    response = client.post("/subscribe", data={"email": "none@example.org", "frequency": "daily"})
    assert response.status_code == 400
    assert errors(response.text) == [
        "Choose at least one area, or type a town or postcode district"
    ]
    response = client.post(
        "/subscribe",
        data={"email": "x@example.org", "area": ["dover", "narnia"], "frequency": "daily"},
    )
    assert response.status_code == 400 and "narnia" in errors(response.text)[0].lower()
    assert ticked_areas(response.text) == ["dover"]  # what was ticked stays ticked


def test_manage_ticks_the_current_areas_and_saves_the_new_boxes(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    manage = token(app, subscriber.id, MANAGE)
    response = client.post(
        "/manage",
        data={
            "token": manage,
            "area": ["gillingham", "deal"],
            "frequency": "daily",
            "urgent": "yes",
        },
    )
    assert response.status_code == 200, errors(response.text)
    assert set(app.store.subscribers.get(subscriber.id).areas) == {"gillingham", "deal"}
    assert sorted(ticked_areas(client.get(f"/manage?token={manage}").text)) == [
        "deal",
        "gillingham",
    ]


def test_what_is_confirmed_is_what_the_email_said_whoever_posts_the_form_since(
    app: App, client: TestClient
) -> None:
    client.post(
        "/subscribe", data={"email": "owner@example.org", "area": ["medway"], "frequency": "weekly"}
    )
    # Someone else, within the resend window: no second email, and it cannot change
    # what the owner's link confirms.
    client.post(
        "/subscribe",
        data={
            "email": "owner@example.org",
            "area": ["dover"],
            "frequency": "immediate",
            "urgent": "yes",
        },
    )
    [message] = queued_messages(app)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "weekly alerts for Medway" in text
    link = confirm_link(message)
    page = client.get(path_of(link)).text
    assert "weekly alerts for Medway" in page and "Dover" not in page
    assert press_confirm(client, link) == "You are subscribed"
    subscriber = app.store.subscribers.find("owner@example.org")
    assert subscriber is not None and subscriber.status is ACTIVE
    assert (
        subscriber.areas == ("medway",)
        and subscriber.frequency is Frequency.WEEKLY
        and not subscriber.urgent
    )


def test_a_confirmation_link_whose_preferences_were_changed_is_refused(
    app: App, client: TestClient
) -> None:
    pending = app.store.subscribers.add(
        make_subscription(app.gazetteer, "p@example.org", ["medway"]), now=NOW, status=PENDING
    )
    signer = LinkSigner(app.config.site.base_url, app.config.security)
    good = signer.confirm_token(Confirmation(pending.id, ("medway",), Frequency.DAILY, True), NOW)
    _, timestamp, signature = good.split(".")
    forged = signer.confirm_token(
        Confirmation(pending.id, ("dover",), Frequency.DAILY, True), NOW
    ).split(".")[0]
    response = client.post("/confirm", data={"token": f"{forged}.{timestamp}.{signature}"})
    assert response.status_code == 400 and heading(response.text) == "This link is not valid"
    # A link mailed before preferences travelled in links confirms the stored ones.
    assert (
        press_confirm(client, f"/confirm?token={token(app, pending.id, CONFIRM)}")
        == "You are subscribed"
    )
    assert app.store.subscribers.get(pending.id).areas == ("medway",)


@pytest.mark.parametrize(
    "address", ["josé@example.org", "用户@例子.广告", "Zoë.Bloggs@example.org"]
)
def test_the_form_refuses_an_address_with_non_ascii_before_the_at_in_one_sentence_and_stores_nothing(
    app: App, client: TestClient, address: str
) -> None:
    response = client.post(
        "/subscribe", data={"email": address, "areas": "Medway", "frequency": "daily"}
    )

    assert response.status_code == 400
    [message] = errors(response.text)
    assert message == (
        "Enter an email address with only English letters, numbers and symbols before the @, like name@example.com"
    )
    assert queued_messages(app) == []
    assert app.store.subscribers.find("anyone@example.org") is None
    assert outbox_rows(app.store.engine) == []


def test_the_form_takes_an_internationalised_domain_in_its_ascii_form(
    app: App, client: TestClient
) -> None:
    response = client.post(
        "/subscribe", data={"email": "ann@Bücher.example", "areas": "Medway", "frequency": "daily"}
    )

    assert response.status_code == 200, response.text
    stored = app.store.subscribers.find("ann@xn--bcher-kva.example")
    assert stored is not None and stored.email == "ann@xn--bcher-kva.example"
    [message] = queued_messages(app)
    assert message["To"] == "ann@xn--bcher-kva.example"


def sign_up(client: TestClient) -> str:
    response = client.post(
        "/subscribe", data={"email": "soon@example.org", "areas": "Medway", "frequency": "daily"}
    )
    assert response.status_code == 200
    return " ".join(response.text.split())


def test_the_check_your_email_page_says_how_soon_and_what_to_do_when_this_process_sends(
    app: App,
) -> None:
    text = sign_up(
        TestClient(create_app(app, sends_mail=True), base_url="https://alerts.example.org")
    )
    assert "It usually arrives within a minute." in text
    # What to do, truthfully: a second request within the resend window sends nothing.
    assert "Still nothing after 10 minutes?" in text and "at most one every 10 minutes" in text


def test_the_check_your_email_page_says_mail_waits_when_alerts_serve_is_not_running(
    app: App, client: TestClient
) -> None:
    text = sign_up(client)
    assert "Our email service is paused at the moment" in text and "within a minute" not in text
    app.store.runs.beat(app.now(), {"pid": 1})  # alerts serve is alive: it sends
    text = sign_up(TestClient(create_app(app), base_url="https://alerts.example.org"))
    assert "It usually arrives within a minute." in text
    app.store.runs.beat(app.now() - timedelta(minutes=5), {"pid": 1})  # and then it stopped
    assert "paused" in sign_up(client)
