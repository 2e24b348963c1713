"""Personal links as an attacker and a mail provider use them: the List-Unsubscribe
address opened in a browser, one-click that needs its RFC 8058 body, bodies capped at
the door (over a real socket), HEAD that never acts, links and redirects from
``site.base_url`` whatever the Host header, tokens kept out of the access log, and
manage links that expire while unsubscribe links keep working."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient
from starlette.types import Message

from alerts.app import App
from alerts.clock import ManualClock
from alerts.store.subscribers import ACTIVE, PENDING, UNSUBSCRIBED
from alerts.subscribers import make_subscription
from alerts.tokens import MANAGE, MANAGE_MAX_AGE, Confirmation, LinkSigner
from alerts.types import Subscriber
from alerts.web import create_app
from alerts.web.guards import MAX_BODY, RedactTokens, redact_tokens
from alerts.web.testing import serve_in_thread
from tests.support import NOW

BASE = "https://alerts.example.org"


@pytest.fixture
def app(write_config: Callable[..., Path], sqlite_url: str) -> Iterator[App]:
    app = App(write_config(database=sqlite_url, site={"base_url": BASE}))
    yield app
    app.close()


@pytest.fixture
def client(app: App) -> TestClient:
    return TestClient(create_app(app), base_url=BASE, follow_redirects=False)


@pytest.fixture
def subscriber(app: App) -> Subscriber:
    subscription = make_subscription(app.gazetteer, "jo@example.org", ["medway"], frequency="daily")
    return app.store.subscribers.add(subscription, now=NOW)


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# -- the List-Unsubscribe address -------------------------------------------------


def test_the_list_unsubscribe_address_opened_in_a_browser_shows_the_page_with_its_button(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    response = client.get(local(links.one_click_url))
    assert response.status_code == 200
    assert "<h1>Unsubscribe from" in response.text
    form = re.search(r'<form method="post" action="/unsubscribe">(.*?)</form>', response.text, re.S)
    assert form and '<button class="danger" type="submit">Unsubscribe</button>' in form.group(1)
    assert response.headers["cache-control"] == "no-store"
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE  # opening it changed nothing


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=No", "application/x-www-form-urlencoded"),
        (b"anything at all", "text/plain"),
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
    ],
)
def test_one_click_without_the_rfc_8058_body_changes_nothing(
    app: App, client: TestClient, subscriber: Subscriber, body: bytes, content_type: str
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    response = client.post(
        local(links.one_click_url), content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    assert "List-Unsubscribe=One-Click" in response.text
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE


def test_one_click_takes_the_body_as_multipart_or_without_a_content_type(
    app: App, client: TestClient
) -> None:
    signer = LinkSigner(app.config.site.base_url, app.config.security)
    first = app.store.subscribers.add(
        make_subscription(app.gazetteer, "a@example.org", ["medway"]), now=NOW
    )
    second = app.store.subscribers.add(
        make_subscription(app.gazetteer, "b@example.org", ["medway"]), now=NOW
    )
    response = client.post(
        local(signer.links(first.id, NOW).one_click_url),
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert response.status_code == 200, response.text
    response = client.post(
        local(signer.links(second.id, NOW).one_click_url), content=b"List-Unsubscribe=One-Click"
    )
    assert response.status_code == 200, response.text
    assert {app.store.subscribers.get(s.id).status for s in (first, second)} == {UNSUBSCRIBED}


# -- HEAD -----------------------------------------------------------------------


def test_head_on_every_personal_link_changes_nothing(app: App, client: TestClient) -> None:
    signer = LinkSigner(app.config.site.base_url, app.config.security)
    active = app.store.subscribers.add(
        make_subscription(app.gazetteer, "on@example.org", ["medway"]), now=NOW
    )
    pending = app.store.subscribers.add(
        make_subscription(app.gazetteer, "new@example.org", ["dover"]), now=NOW, status=PENDING
    )
    links = signer.links(active.id, NOW)
    for url in (
        links.one_click_url,
        links.unsubscribe_url,
        links.manage_url + "&areas=dover&frequency=weekly",
    ):
        assert client.head(local(url)).status_code == 200, url
    assert (
        client.head(
            local(
                signer.confirm_url(
                    Confirmation(pending.id, pending.areas, pending.frequency, pending.urgent), NOW
                )
            )
        ).status_code
        == 200
    )
    assert (
        client.head("/subscribe?email=x@example.org&areas=medway&frequency=daily").status_code
        == 200
    )
    assert app.store.subscribers.get(active.id) == active
    assert app.store.subscribers.get(pending.id) == pending


# -- bodies -----------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_before_it_is_read(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    body = b"List-Unsubscribe=One-Click&" + b"x" * MAX_BODY
    response = client.post(
        local(links.one_click_url),
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE


def test_a_chunked_body_is_cut_off_when_it_passes_the_limit(
    app: App, subscriber: Subscriber
) -> None:
    # Driven through the ASGI interface itself: TestClient reads a streamed body whole
    # before the app sees it, which would hide whether the app stops reading.
    asgi = create_app(app)
    pulled = 0
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {
            "type": "http.request",
            "body": b"x" * 16384,
            "more_body": pulled < 1000,
        }  # 16 MB in all

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/subscribe",
        "raw_path": b"/subscribe",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"alerts.example.org"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("alerts.example.org", 443),
    }
    # In a thread of its own: a test run that drives a browser has an event loop here already.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, asgi(scope, receive, send)).result()
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert pulled == MAX_BODY // 16384 + 1  # read no further than the limit


def raw_request(url: str, head: bytes, body_size: int) -> tuple[int | None, int]:
    """Send ``head`` then up to ``body_size`` bytes over a real socket, as curl does;
    returns the status line's code (None when the server cut the connection and the reset
    took its answer with it) and how many body bytes were sent before it refused more."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        chunk = b"x" * 65536
        try:
            while sent < body_size:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        try:
            while b"\r\n" not in reply:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
    return (int(reply.split(b" ", 2)[1]) if reply else None), sent


def test_a_20_mb_post_to_the_list_unsubscribe_address_gets_413_from_the_server(
    app: App, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    with serve_in_thread(create_app(app)) as url:
        size = 20 * 1024 * 1024
        path = local(links.one_click_url)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: alerts.example.org\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {size}\r\nExpect: 100-continue\r\n\r\n"
        ).encode()
        # curl waits for 100 Continue: it gets the answer instead, before sending a byte.
        status, _ = raw_request(url, head, 0)
        assert status == 413
        # A client that sends the body at once is answered 413 and cut off long before
        # 20 MB. Whether the 413 reaches it is TCP's race, not the server's: closing with
        # unread bytes resets the connection, which may discard the answer in flight. So
        # either it read the 413, or it was refused before it could send the body.
        blunt = head.replace(b"Expect: 100-continue\r\n", b"")
        status, sent = raw_request(url, blunt, size)
        assert status == 413 or (status is None and sent < size), (status, sent)
    assert app.store.subscribers.get(subscriber.id).status is ACTIVE


# -- hosts and redirects -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/find?q=ME4", "/areas/chatham/", "/areas/ME4", "/feeds/me4.rss"])
def test_redirects_go_to_the_configured_site_whatever_the_host_header(
    client: TestClient, path: str
) -> None:
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code in (301, 303, 307), response.text
    assert response.headers["location"].startswith(BASE + "/"), response.headers["location"]


def test_pages_and_forms_name_the_configured_site_whatever_the_host_header(
    app: App, client: TestClient, subscriber: Subscriber
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    page = client.get(
        local(links.unsubscribe_url),
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert "evil.example" not in page.text
    # A form posted from the configured site is accepted whatever Host the proxy passed on.
    response = client.post(
        "/unsubscribe",
        data={"token": local(links.unsubscribe_url).split("token=")[1]},
        headers={"Host": "internal:8000", "Origin": BASE},
    )
    assert response.status_code == 200
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED


# -- access logs ---------------------------------------------------------------------


def test_the_access_log_never_carries_a_token(
    app: App, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    token = links.manage_url.split("token=")[1]
    create_app(app)  # installs the filter on uvicorn's access logger
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("uvicorn.access").filters)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # The record uvicorn's access logger makes for each request.
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", local(links.manage_url), "1.1", 200
        )
    assert caplog.records and token not in caplog.text
    assert '"GET /manage?token=… HTTP/1.1" 200' in caplog.text
    assert redact_tokens("/confirm?a=1&token=abc.def&b=2") == "/confirm?a=1&token=…&b=2"


# -- expiry ---------------------------------------------------------------------------


def test_manage_links_expire_and_unsubscribe_links_keep_working(
    app: App, client: TestClient, subscriber: Subscriber, clock: ManualClock
) -> None:
    links = LinkSigner(app.config.site.base_url, app.config.security).links(subscriber.id, NOW)
    assert client.get(local(links.manage_url)).status_code == 200
    clock.set(NOW + timedelta(seconds=MANAGE_MAX_AGE + 60))
    response = client.get(local(links.manage_url))
    assert response.status_code == 400
    assert "<h1>This link has expired</h1>" in response.text
    assert 'href="/manage"' in response.text  # the way to a new link
    # The manage page's own forms carry a fresh token.
    fresh = LinkSigner(app.config.site.base_url, app.config.security).token(
        subscriber.id, MANAGE, clock.now()
    )
    assert client.get(f"/manage?token={fresh}").status_code == 200
    clock.set(NOW + timedelta(days=3650))
    assert client.get(local(links.unsubscribe_url)).status_code == 200
    response = client.post(local(links.one_click_url), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert app.store.subscribers.get(subscriber.id).status is UNSUBSCRIBED
