"""Limits that cannot be dodged: sub-addresses (``+tags``) and Gmail's dots reach one
mailbox and count as one; an IPv6 client counts by its /64, and an IPv4 client is the
same client whether or not it arrives IPv4-mapped. Past an hourly ceiling on all form mail, it is queued, not refused."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.store.limits import CLIENT, FORM_MAIL, FORM_MAIL_KEY
from alerts.web import create_app
from tests.support.tables import row_counts

BASE = "https://alerts.example.org"


def messages(app: App) -> int:
    return row_counts(app.store.engine, "outbox")["outbox"]


def test_forty_sign_ups_for_sub_addresses_of_one_mailbox_send_it_at_most_three_messages(
    app: App, clock: ManualClock
) -> None:
    web = create_app(app)
    for n in range(1, 41):
        clock.advance(timedelta(minutes=11))  # past the 10-minute gap each time
        # A new client each time, so only the mailbox limit is at work.
        client = TestClient(web, base_url=BASE, client=(f"192.0.2.{n}", 5000))
        client.post(
            "/subscribe",
            data={"email": f"victim+{n}@example.net", "area": "kent", "frequency": "daily"},
        )
    assert messages(app) == 3
    # Each sub-address is still its own subscription (and would be its own opt-out).
    assert row_counts(app.store.engine, "subscribers")["subscribers"] == 40


def test_gmail_dots_and_googlemail_are_one_mailbox(app: App, clock: ManualClock) -> None:
    web = create_app(app)
    for n, address in enumerate(
        [
            "jo.bloggs@gmail.com",
            "j.o.bloggs@googlemail.com",
            "JoBloggs+x@gmail.com",
            "jo.b.loggs@gmail.com",
        ]
    ):
        clock.advance(timedelta(minutes=11))
        TestClient(web, base_url=BASE, client=(f"192.0.2.{n}", 5000)).post(
            "/subscribe", data={"email": address, "area": "kent", "frequency": "daily"}
        )
    assert messages(app) == 3


def test_an_ipv6_slash_64_is_one_client_and_a_mapped_ipv4_address_is_its_ipv4_client(
    app: App, clock: ManualClock
) -> None:
    web = create_app(app)

    def post(host: str, n: int) -> int:
        client = TestClient(web, base_url=BASE, client=(host, 5000))
        data = {"email": f"n{n}@example.org", "area": "kent", "frequency": "daily"}
        return client.post("/subscribe", data=data).status_code

    assert all(post(f"2001:db8:1:2::{n:x}", n) == 200 for n in range(1, CLIENT.per_window + 1))
    assert post("2001:db8:1:2:ffff::1", 100) == 429  # a new address in the same /64
    assert post("2001:db8:1:3::1", 101) == 200  # the next /64 is another client

    assert all(post("192.0.2.9", 200 + n) == 200 for n in range(CLIENT.per_window - 1))
    assert post("::ffff:192.0.2.9", 300) == 200  # the 30th from this client
    assert post("192.0.2.9", 301) == 429


def test_past_the_hourly_ceiling_form_mail_is_queued_for_the_next_hour_logged_and_counted(
    app: App, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(FORM_MAIL.per_window):  # a flood from elsewhere used up this hour
        assert app.store.limits.take(FORM_MAIL_KEY, FORM_MAIL, clock.now())
    client = TestClient(create_app(app), base_url=BASE)
    with caplog.at_level(logging.WARNING, logger="alerts.subscribers.requests"):
        page = client.post(
            "/subscribe", data={"email": "ann@example.org", "area": "kent", "frequency": "daily"}
        )
    assert page.status_code == 200  # the resident is not refused
    assert messages(app) == 1
    assert "form emails this hour: this one is queued for" in caplog.text
    assert "alerts_form_mail_delayed_total 1.0" in client.get("/metrics").text

    assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 0
    clock.advance(FORM_MAIL.window)
    assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 1
