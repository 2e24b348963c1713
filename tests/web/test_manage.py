"""Manage by email, as GOV.UK does: "Manage your subscription" asks for the address and
mails a manage link; the answer is the same, and is sent before anything is looked up,
whatever the address; an active address that signs up again is told so by email; a
confirmed sign-up gets a welcome email."""

from __future__ import annotations

import asyncio
import email
import re
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.policy import default
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient
from starlette.types import Message

from alerts.app import App
from alerts.store.subscribers import ACTIVE, PENDING
from alerts.subscribers import make_subscription
from alerts.types import Subscriber
from alerts.web import create_app
from tests.support import NOW
from tests.support.tables import outbox_rows

BASE = "https://alerts.example.org"


@pytest.fixture
def subscriber(app: App) -> Subscriber:
    subscription = make_subscription(
        app.gazetteer, "Jo.Bloggs@example.org", ["medway", "dover"], frequency="weekly"
    )
    return app.store.subscribers.add(subscription, now=NOW)


def mail(app: App) -> list[tuple[str, EmailMessage]]:
    """(kind, message) for each transactional message queued, in order."""
    found = []
    for row in outbox_rows(app.store.engine):
        message = email.message_from_string(row["digest_meta"]["raw"], policy=default)
        assert isinstance(message, EmailMessage)
        found.append((row["digest_kind"], message))
    return found


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def link_in(message: EmailMessage, path: str) -> str:
    match = re.search(rf"{re.escape(BASE)}{path}\?token=\S+", text_of(message))
    assert match, text_of(message)
    parts = urlsplit(match.group(0))
    return f"{parts.path}?{parts.query}"


def body(html: str) -> str:
    return re.sub(r"\s+", " ", re.search(r"<main.*?</main>", html, re.S).group(0))  # type: ignore[union-attr]


def test_the_manage_page_asks_for_the_address(client: TestClient) -> None:
    response = client.get("/manage")
    assert response.status_code == 200
    assert "<h1>Manage your subscription</h1>" in response.text
    assert '<form class="subscription" method="post" action="/manage"' in response.text
    assert 'id="email" name="email"' in response.text
    # Every page's footer leads here.
    assert '<a href="/manage">Manage your subscription</a>' in client.get("/").text


def test_asking_mails_a_manage_link_to_an_active_address_in_any_case(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    response = client.post("/manage", data={"email": "JO.BLOGGS@EXAMPLE.ORG"})
    assert response.status_code == 200 and "<h1>Check your email</h1>" in response.text
    [(kind, message)] = mail(app)
    assert kind == "manage" and message["To"] == "Jo.Bloggs@example.org"
    assert message["Subject"] == f"Manage your {app.config.site.name} subscription"
    page = client.get(link_in(message, "/manage"))
    assert page.status_code == 200 and "<h1>Your alerts</h1>" in page.text
    assert f"{BASE}/privacy" in text_of(message)


def test_the_answer_is_the_same_whatever_the_address(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    gone = app.store.subscribers.add(
        make_subscription(app.gazetteer, "gone@example.org", ["kent"]), now=NOW
    )
    app.store.subscribers.unsubscribe(gone.id, now=NOW)
    bounced = app.store.subscribers.add(
        make_subscription(app.gazetteer, "bounced@example.org", ["kent"]), now=NOW
    )
    app.store.subscribers.suppress(bounced.id, now=NOW)
    answers = set()
    for address in (
        "jo.bloggs@example.org",
        "nobody@example.org",
        "gone@example.org",
        "bounced@example.org",
    ):
        response = client.post("/manage", data={"email": address})
        assert response.status_code == 200
        answers.add(body(response.text).replace(address, "ADDRESS"))
    assert len(answers) == 1
    assert [kind for kind, _ in mail(app)] == ["manage"]  # only the active address is mailed


def test_a_pending_address_asking_is_sent_its_confirmation_again(
    app: App, client: TestClient
) -> None:
    pending = app.store.subscribers.add(
        make_subscription(app.gazetteer, "p@example.org", ["chatham"]), now=NOW, status=PENDING
    )
    client.post("/manage", data={"email": "p@example.org"})
    [(kind, message)] = mail(app)
    assert kind == "confirm" and message["To"] == pending.email


def test_a_bad_address_is_explained_next_to_its_field(app: App, client: TestClient) -> None:
    response = client.post("/manage", data={"email": "not an address"})
    assert response.status_code == 400
    assert (
        '<p class="error" id="email-error">' in response.text
        and 'aria-invalid="true"' in response.text
    )
    assert mail(app) == []


def run_asgi(asgi: Any, path: str, form: dict[str, str]) -> list[Message]:
    """One POST through the ASGI interface; the messages the app sent, in order."""
    body = urlencode(form).encode()
    sent: list[Message] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            await asyncio.sleep(3600)
        done = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"alerts.example.org"), (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("alerts.example.org", 443),
    }  # fmt: skip
    # In a thread of its own: a test run that drives a browser has an event loop here already.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, asgi(scope, receive, send)).result()
    return sent


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/manage", {"email": "jo.bloggs@example.org"}),
        ("/manage", {"email": "nobody@example.org"}),
        ("/subscribe", {"email": "jo.bloggs@example.org", "area": "dover", "frequency": "daily"}),
        ("/subscribe", {"email": "nobody@example.org", "area": "dover", "frequency": "daily"}),
    ],
)
def test_the_answer_goes_back_before_any_address_is_looked_up(
    app: App, subscriber: Subscriber, path: str, form: dict[str, str]
) -> None:
    # So the time of the answer cannot tell whether an address is subscribed: whatever
    # the look-up and the mail cost comes after the last byte of the response. (Before
    # it, only the client address's limit is counted, and the page asks whether a sender
    # is running (the scheduler's heartbeat): the same for every address.)
    asgi = create_app(app)
    order: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        same_for_all = "mail_limits" in sql or ("FROM runs" in sql and "started_at" in sql)
        order.append("limit" if same_for_all else "sql")

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def tap(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                order.append("answered")
            await send(message)

        await asgi(scope, receive, tap)

    event.listen(app.store.engine, "before_cursor_execute", statement)
    try:
        sent = run_asgi(recording, path, form)
    finally:
        event.remove(app.store.engine, "before_cursor_execute", statement)
    assert sent[0]["status"] == 200
    answered = order.index("answered")
    assert "sql" not in order[:answered] and "sql" in order[answered:], order


def test_subscribing_an_active_address_mails_already_subscribed_with_a_manage_link(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    response = client.post(
        "/subscribe",
        data={"email": "jo.bloggs@example.org", "area": "chatham", "frequency": "daily"},
    )
    assert "<h1>Check your email</h1>" in response.text
    [(kind, message)] = mail(app)
    assert kind == "already" and message["Subject"].startswith("You are already subscribed")
    text = text_of(message)
    assert "weekly alerts for Dover, Medway" in text or "weekly alerts for Medway, Dover" in text
    assert client.get(link_in(message, "/manage")).status_code == 200
    after = app.store.subscribers.find("Jo.Bloggs@example.org")
    assert after is not None and set(after.areas) == {"medway", "dover"}  # nothing changed


def test_a_confirmed_sign_up_gets_a_welcome_saying_what_when_and_how_to_leave(
    app: App, client: TestClient
) -> None:
    client.post(
        "/subscribe",
        data={
            "email": "new@example.org",
            "area": ["chatham", "dover"],
            "frequency": "weekly",
            "urgent": "yes",
        },
    )
    [(_, confirmation)] = mail(app)
    token = link_in(confirmation, "/confirm").split("token=")[1]
    assert client.post("/confirm", data={"token": token}).status_code == 200
    kinds = [kind for kind, _ in mail(app)]
    assert kinds == ["confirm", "welcome"]
    welcome = mail(app)[1][1]
    text = " ".join(text_of(welcome).split())
    assert "Areas: Dover, Chatham" in text or "Areas: Chatham, Dover" in text
    assert "How often: weekly" in text
    assert "once a week, on Monday at 07:00" in text and "urgent alerts come at once" in text
    assert "Unsubscribe (this link always works" in text
    assert client.get(link_in(welcome, "/unsubscribe")).status_code == 200
    # Pressing the button again (a double click) sends no second welcome.
    client.post("/confirm", data={"token": token})
    assert [kind for kind, _ in mail(app)] == ["confirm", "welcome"]
    active = app.store.subscribers.find("new@example.org")
    assert active is not None and active.status is ACTIVE
