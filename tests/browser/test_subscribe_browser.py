"""Subscribing in a real browser on a phone: the form, the confirmation email as the
delivery stage writes it to the Maildir, the link that asks first (mail scanners open
every link), and the button that makes the subscription active."""

from __future__ import annotations

import email
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from alerts.delivery import send_pending
from alerts.store.subscribers import ACTIVE, PENDING
from alerts.types import Frequency
from tests.browser.conftest import eventually
from tests.support.tables import row_counts


def delivered(maildir: Path) -> list[EmailMessage]:
    """The messages delivery wrote to the Maildir, parsed back."""
    messages = []
    for path in sorted((maildir / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)  # policy=default parses to EmailMessage
        messages.append(message)
    return messages


def test_subscribe_then_the_emailed_link_asks_and_the_button_confirms(
    live_server: Callable[..., Any], page: Any
) -> None:
    server = live_server()
    app = server.app
    page.goto(f"{server.url}/subscribe")
    page.get_by_label("Email address").fill("resident@example.org")
    page.get_by_label("Or type towns or postcode districts").fill("ME4 4TR")
    page.get_by_label("A weekly digest").check()
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{server.url}/subscribe")
    assert page.locator("h1").inner_text() == "Check your email"
    eventually(lambda: row_counts(app.store.engine, "outbox")["outbox"] == 1)
    pending = app.store.subscribers.find("resident@example.org")
    assert pending is not None and pending.status is PENDING
    assert pending.areas == ("chatham",) and pending.frequency is Frequency.WEEKLY

    assert send_pending(app.config.delivery, app.config.mail, app.store, app.clock).sent == 1
    [message] = delivered(app.config.delivery.maildir)
    assert message["To"] == "resident@example.org"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(rf"{re.escape(server.url)}/confirm\?token=\S+", text)
    assert match, text

    # Opening the link (as a person, or a mail scanner) asks and changes nothing.
    page.goto(match.group(0))
    assert page.locator("h1").inner_text() == "Confirm your subscription"
    assert "weekly alerts for Chatham" in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert app.store.subscribers.find("resident@example.org").status is PENDING

    button = page.get_by_role("button", name="Confirm my subscription")
    assert button.bounding_box()["height"] >= 44  # big enough for a thumb
    button.click()
    page.wait_for_url(f"{server.url}/confirm")
    assert page.locator("h1").inner_text() == "You are subscribed"
    active = app.store.subscribers.find("resident@example.org")
    assert active is not None and active.status is ACTIVE and active.watermark is not None


def test_a_mistyped_town_is_explained_next_to_its_field_at_320px(
    live_server: Callable[..., Any], page: Any
) -> None:
    server = live_server()
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{server.url}/subscribe")
    page.get_by_label("Email address").fill("resident@example.org")
    page.get_by_label("Or type towns or postcode districts").fill("Chathm")
    page.get_by_role("button", name="Subscribe").click()
    assert page.title().startswith("Error: ")
    areas = page.get_by_label("Or type towns or postcode districts")
    assert areas.get_attribute("aria-invalid") == "true"
    assert areas.input_value() == "Chathm"  # kept, to fix rather than retype
    error = page.locator("#areas-error")
    assert "Did you mean Chatham" in error.inner_text()
    # Next to the field: the message sits right above the box it is about.
    gap = areas.bounding_box()["y"] - (error.bounding_box()["y"] + error.bounding_box()["height"])
    assert 0 <= gap < 40
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert server.app.store.subscribers.find("resident@example.org") is None


def test_areas_are_ticked_by_district_and_town_with_javascript_off(
    live_server: Callable[..., Any], browser: Any
) -> None:
    server = live_server()
    context = browser.new_context(viewport={"width": 375, "height": 812}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/subscribe?area=dover")
        page.get_by_label("Email address").fill("ticks@example.org")
        # The archive's link ticked Dover and opened its list; Medway's list opens on a tap.
        assert page.get_by_label("All of Dover").is_checked()
        page.locator("summary", has_text="Medway").click()
        page.get_by_label("Chatham", exact=True).check()
        page.get_by_label("Gillingham", exact=True).check()
        page.get_by_label("Or type towns or postcode districts").fill("TN23")
        page.get_by_role("button", name="Subscribe").click()
        # TN23 spans several of Ashford's towns: shown back, with focus, before anything is saved.
        check = page.get_by_role("region", name="Check your areas")
        assert "“TN23” covers more than one town, so it means all of Ashford." in check.inner_text()
        assert page.evaluate("document.activeElement.id") == "check-areas"
        assert (
            page.get_by_label("All of Dover").is_checked()
            and page.get_by_label("Chatham", exact=True).is_checked()
        )
        page.get_by_role("button", name="Subscribe").click()
        assert page.locator("h1").inner_text() == "Check your email"
        eventually(lambda: server.app.store.subscribers.find("ticks@example.org") is not None)
        subscriber = server.app.store.subscribers.find("ticks@example.org")
        assert subscriber is not None and set(subscriber.areas) == {
            "dover",
            "chatham",
            "gillingham",
            "ashford",
        }
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
