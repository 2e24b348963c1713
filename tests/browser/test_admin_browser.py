"""The console in Chromium, as its people use it: an editor signs in and sends an
urgent advisory with the keyboard alone, and it reaches a subscriber at the relay;
every console page passes axe-core's WCAG 2.2 AA rules in light and dark; an editor is
refused the erase page."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from alerts.delivery import outbox_drainer
from alerts.store.users import Role
from alerts.testing import SmtpSink
from tests.browser.conftest import PHONE, LiveServer, axe_violations
from tests.conftest import NOW
from tests.support.console import PASSWORD, add_user
from tests.support.seeding import seed_subscribers

#: The issue's bar: at the relay within 10 s of pressing Send.
AT_RELAY = 10.0
SCHEMES = ["light", "dark"]


def tab_to(page: Any, element_id: str, presses: int = 60) -> None:
    """Press Tab until the element with ``element_id`` has the focus."""
    for _ in range(presses):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def tab_to_button(page: Any, label: str, presses: int = 60) -> None:
    for _ in range(presses):
        focused = page.evaluate(
            "document.activeElement.tagName + ' ' + document.activeElement.textContent"
        )
        if focused.startswith("BUTTON") and label in focused:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached the button {label!r}")


def keyboard_sign_in(page: Any, url: str, name: str) -> None:
    page.goto(url + "/admin/login")
    tab_to(page, "username")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/admin")


@pytest.fixture
def relay() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def console(live_server: Callable[..., LiveServer], relay: SmtpSink) -> Iterator[LiveServer]:
    """The web app with a sender for alerts, as 'alerts serve' runs beside 'alerts web'."""
    server = live_server(
        delivery={
            "backend": "smtp",
            "smtp": {"host": relay.host, "port": relay.port, "security": "none"},
        },
        email={"from": "Kent Area Alerts <alerts@example.org>", "domain": "example.org"},
    )
    app = server.app
    stop = threading.Event()
    sender = outbox_drainer(
        app.config.delivery, app.config.mail, app.store, stop, clock=app.clock, name="sender"
    )
    sender.start()
    yield server
    stop.set()
    sender.join(30)


def test_an_editor_sends_an_urgent_advisory_for_chatham_by_keyboard_and_it_is_at_the_relay_within_10_s(
    console: LiveServer, relay: SmtpSink, page: Any
) -> None:
    app = console.app
    add_user(app, "jo", Role.EDITOR)
    chatham = seed_subscribers(
        app.store,
        count=1,
        now=NOW - timedelta(hours=1),
        areas=("chatham",),
        frequencies=("daily",),
    )
    seed_subscribers(
        app.store,
        count=1,
        now=NOW - timedelta(hours=1),
        areas=("dover",),
        domain="dover.example.org",
    )
    keyboard_sign_in(page, console.url, "jo")
    tab_to(page, "compose-link")
    page.keyboard.press("Enter")
    page.wait_for_url(console.url + "/admin/compose")
    tab_to(page, "title")
    page.keyboard.type("Dangerous dog loose in Chatham")
    tab_to(page, "areas")
    page.keyboard.type("Chatham")
    tab_to(page, "priority-normal")
    page.keyboard.press("ArrowRight")  # the radio group: urgent
    assert page.evaluate("document.getElementById('priority-urgent').checked")
    tab_to(page, "body")
    page.keyboard.type("Residents of Chatham: keep children and pets indoors.")
    tab_to_button(page, "Preview")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reach-summary")
    summary = " ".join(page.inner_text("#reach-summary").split())
    assert summary.startswith("It reaches 1 subscriber to Chatham: 1 get it now")
    assert not relay.received
    tab_to_button(page, "Send to 1 subscriber now")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=messages queued")
    assert relay.wait_for(1, timeout=AT_RELAY), "nothing at the relay within 10 s"
    (message,) = relay.received
    assert message.rcpt_tos == tuple(chatham)
    assert "Dangerous dog loose in Chatham" in str(message.message()["Subject"])


def test_an_editor_is_refused_the_subscriber_erase_page(console: LiveServer, page: Any) -> None:
    add_user(console.app, "jo", Role.EDITOR)
    keyboard_sign_in(page, console.url, "jo")
    answer = page.goto(console.url + "/admin/subscribers/erase")
    assert answer.status == 403
    assert "Only an admin may open this page" in page.inner_text("main")


@pytest.fixture(params=SCHEMES)
def checked_page(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE,
        locale="en-GB",
        color_scheme=request.param,
        bypass_csp=True,
        timezone_id="Europe/London",
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_every_console_page_has_no_wcag_22_aa_violation(
    console: LiveServer, checked_page: Any, axe_source: str
) -> None:
    page, url = checked_page, console.url
    add_user(console.app, "ada", Role.ADMIN)
    add_user(console.app, "jo", Role.EDITOR)
    seed_subscribers(console.app.store, count=3, now=NOW - timedelta(hours=1), areas=("chatham",))

    def check(where: str) -> None:
        violations = axe_violations(page, axe_source)
        assert not violations, f"{where}:\n" + "\n".join(violations)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], where

    page.goto(url + "/admin/login")
    check("login")
    page.fill("#username", "ada")
    page.fill("#password", "wrong password!")
    page.click("button[type=submit]")
    check("login with an error")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/admin")
    check("empty inbox")
    page.goto(url + "/admin/compose")
    check("compose")
    page.fill("#title", "  ")  # passes the browser's 'required', not the server's checks
    page.fill("#areas", "Narnia")
    page.fill("#body", "  ")
    page.click("button:has-text('Preview')")
    page.wait_for_selector(".errors")
    check("compose with errors")
    page.fill("#title", "Scam calls in Chatham")
    page.fill("#areas", "Chatham")
    page.fill("#body", "Callers claim to be **police officers**. [Report it](https://example.org).")
    page.fill("#advice", "Hang up, and call 101 from another phone.")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#reach-summary")
    check("preview")
    page.click("button:has-text('Send to')")
    page.wait_for_selector("text=messages queued")
    check("advisory")
    page.fill("#areas", "Narnia")
    page.click("button:has-text('Save whom it reaches')")
    page.wait_for_selector(".errors")
    check("retag with an error")
    for path in (
        "/admin",
        "/admin/outbox",
        "/admin/sources",
        "/admin/users",
        "/admin/audit",
        "/admin/subscribers",
        "/admin/subscribers/erase",
        "/admin/nowhere",
    ):
        page.goto(url + path)
        check(path)
    page.goto(url + "/admin/subscribers")
    page.fill("#email", "someone@example.org")
    page.click("button:has-text('Find')")
    check("subscriber search")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(url + "/admin/login")
    page.fill("#username", "jo")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(url + "/admin/users")
    check("refused")
