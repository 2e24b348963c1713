"""Residents' and coordinators' journeys in Chromium, through to a real inbox: every
message is sent over SMTP to an aiosmtpd sink on loopback, read there, and its links
opened in the browser, as the person would. axe-core checks each page reached (WCAG 2.2
AA), in light and in dark mode, on a phone-sized screen. Mail is sent with
``send_pending`` when the test has done what queues it (what ``alerts web``'s sender
thread does when woken), so each step's mail is known to have gone before the next."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from alerts.clock import ManualClock
from alerts.delivery import send_pending
from alerts.digest import queue_digests
from alerts.store.subscribers import ACTIVE, UNSUBSCRIBED
from alerts.testing import SmtpSink
from alerts.types import Frequency
from tests.browser.conftest import PHONE, LiveServer, axe_violations, eventually
from tests.support.digests import advisory, save, subscribe
from tests.support.tables import outbox_rows

SCHEMES = ["light", "dark"]


@dataclass
class Inbox:
    """The SMTP sink the site's mail goes to, and the site."""

    sink: SmtpSink
    site: LiveServer

    def deliver(self, queued: int) -> list[EmailMessage]:
        """Wait for the server's background work to queue ``queued`` messages in all,
        send what is pending over SMTP, and return every message the sink holds."""
        app = self.site.app
        eventually(lambda: len(outbox_rows(app.store.engine)) >= queued)
        report = send_pending(app.config.delivery, app.config.mail, app.store, app.clock)
        rows = [(row["status"], row.get("last_error")) for row in outbox_rows(app.store.engine)]
        assert self.sink.wait_for(queued, timeout=10), (
            f"{self.sink.count} of {queued} arrived: {report}, {rows}"
        )
        return [received.message() for received in self.sink.received]

    def link(self, message: EmailMessage, path: str) -> str:
        """The link to ``path`` in the message's plain-text part."""
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found = re.search(rf"{re.escape(self.site.url)}{re.escape(path)}(?:\?\S+)?", text)
        assert found, f"no {path} link in:\n{text}"
        return found.group(0)


@pytest.fixture
def inbox(live_server: Callable[..., LiveServer]) -> Iterator[Inbox]:
    with SmtpSink() as sink:
        relay = {"host": "127.0.0.1", "port": sink.port, "security": "none", "timeout": 5}
        site = live_server(
            site={"name": "Kent Area Alerts"}, delivery={"backend": "smtp", "smtp": relay}
        )
        yield Inbox(sink, site)


@pytest.fixture(params=SCHEMES)
def checked(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    """A phone-sized page in one colour scheme; the CSP is bypassed only so that axe's
    script can run (the pages themselves allow none)."""
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


def accessible(page: Any, axe_source: str, where: str) -> None:
    violations = axe_violations(page, axe_source)
    assert not violations, f"{where}:\n" + "\n".join(violations)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], where


def show_email(page: Any, message: EmailMessage, tmp_path: Path, axe_source: str) -> None:
    """Open the message's HTML part as a mail client would show it, and check it."""
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    path = tmp_path / f"{re.sub(r'[^a-z]+', '-', message['Subject'].lower())}.html"
    path.write_text(html, encoding="utf-8")
    page.goto(path.as_uri())
    accessible(page, axe_source, f"email: {message['Subject']}")


def test_a_resident_signs_up_confirms_manages_by_email_changes_areas_and_leaves(
    inbox: Inbox, checked: Any, axe_source: str, clock: ManualClock, tmp_path: Path
) -> None:
    page, site, app = checked, inbox.site, inbox.site.app
    address = "resident@example.org"

    # From the home page's call to action to the form.
    page.goto(site.url + "/")
    accessible(page, axe_source, "home")
    page.get_by_role("link", name="Get email alerts").click()
    page.wait_for_url(f"{site.url}/subscribe")
    accessible(page, axe_source, "subscribe")
    page.get_by_label("Email address").fill(address)
    page.get_by_label("Or type towns or postcode districts").fill("ME4")
    page.get_by_role("button", name="Subscribe").click()
    assert page.locator("h1").inner_text() == "Check your email"
    accessible(page, axe_source, "check your email")

    # The confirmation arrives; its link asks, the button confirms.
    [confirmation] = inbox.deliver(1)
    assert confirmation["To"] == address
    show_email(page, confirmation, tmp_path, axe_source)
    page.goto(inbox.link(confirmation, "/confirm"))
    assert page.locator("h1").inner_text() == "Confirm your subscription"
    accessible(page, axe_source, "confirm")
    page.get_by_role("button", name="Confirm my subscription").click()
    assert page.locator("h1").inner_text() == "You are subscribed"
    assert (
        "daily alerts for Chatham, and urgent alerts at once" in page.locator("main").inner_text()
    )
    accessible(page, axe_source, "confirmed")
    subscriber = app.store.subscribers.find(address)
    assert (
        subscriber is not None and subscriber.status is ACTIVE and subscriber.areas == ("chatham",)
    )

    # The welcome says what comes and how to leave.
    welcome = inbox.deliver(2)[1]
    assert welcome["Subject"] == "Welcome to Kent Area Alerts"
    show_email(page, welcome, tmp_path, axe_source)

    # Later, without the email to hand: manage by email, from the site's footer.
    clock.advance(timedelta(minutes=11))  # past the one-email-per-10-minutes limit
    page.goto(site.url + "/areas/chatham")
    page.get_by_role("link", name="Manage your subscription").click()
    accessible(page, axe_source, "manage: ask for a link")
    page.get_by_label("Email address").fill(address)
    page.get_by_role("button", name="Email me a link").click()
    assert page.locator("h1").inner_text() == "Check your email"
    manage = inbox.deliver(3)[2]
    show_email(page, manage, tmp_path, axe_source)
    page.goto(inbox.link(manage, "/manage"))
    assert page.locator("h1").inner_text() == "Your alerts"
    accessible(page, axe_source, "manage")

    # Change areas: add Dover, and save.
    page.locator("summary", has_text="Dover").click()
    page.get_by_label("All of Dover").check()
    page.get_by_role("button", name="Save").click()
    assert (
        "Saved. You will get daily alerts for Chatham and Dover."
        in page.get_by_role("status").inner_text()
    )
    accessible(page, axe_source, "manage saved")
    assert set(app.store.subscribers.find(address).areas) == {"chatham", "dover"}  # type: ignore[union-attr]

    # Leave, from the welcome email's link: it asks first, the button acts.
    page.goto(inbox.link(welcome, "/unsubscribe"))
    assert page.locator("h1").inner_text() == "Unsubscribe from Kent Area Alerts?"
    accessible(page, axe_source, "unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    accessible(page, axe_source, "unsubscribed")
    assert app.store.subscribers.find(address).status is UNSUBSCRIBED  # type: ignore[union-attr]


def test_a_coordinator_s_edition_forwards_cleanly_and_its_links_serve_whoever_reads_it(
    inbox: Inbox, checked: Any, axe_source: str, tmp_path: Path
) -> None:
    page, app = checked, inbox.site.app
    subscribe(app, "watch@example.org", ["medway"], frequency="weekly", forwardable=True)
    save(
        app,
        advisory(
            "fraud", title="Caller poses as police", body="<p>If you get such a call, hang up.</p>"
        ),
    )
    queue_digests(
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        Frequency.WEEKLY,
        now=app.now(),
    )
    [edition] = inbox.deliver(1)
    assert edition["To"] == "watch@example.org"
    body = edition.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = edition.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # Forwarded, it lets nobody act on the coordinator's subscription.
    assert "token=" not in body and "token=" not in html
    assert "What to do" in html and "If you get such a call, hang up." in html
    show_email(page, edition, tmp_path, axe_source)

    # Whoever it is forwarded to can subscribe themselves, to the same areas.
    page.goto(inbox.link(edition, "/subscribe"))
    assert page.get_by_label("All of Medway").is_checked()
    accessible(page, axe_source, "subscribe from a forwarded edition")
    # The coordinator manages theirs by email, from the link every edition carries.
    page.goto(inbox.link(edition, "/manage"))
    assert page.locator("h1").inner_text() == "Manage your subscription"
    page.get_by_label("Email address").fill("watch@example.org")
    page.get_by_role("button", name="Email me a link").click()
    link_mail = inbox.deliver(2)[1]
    page.goto(inbox.link(link_mail, "/manage"))
    assert page.locator("h1").inner_text() == "Your alerts"
    assert page.get_by_label("All of Medway").is_checked()
    accessible(page, axe_source, "coordinator's manage page")


def sign_up_and_confirm(
    page: Any, inbox: Inbox, address: str, queued: int, axe_source: str, where: str
) -> None:
    """The form, the confirmation at the sink, its link and its button."""
    page.goto(inbox.site.url + "/subscribe?area=dover")
    page.get_by_label("Email address").fill(address)
    page.get_by_role("button", name="Subscribe").click()
    assert page.locator("h1").inner_text() == "Check your email"
    confirmation = inbox.deliver(queued)[queued - 1]
    assert confirmation["To"] == address and "Confirm" in confirmation["Subject"]
    page.goto(inbox.link(confirmation, "/confirm"))
    accessible(page, axe_source, f"{where}: confirm")
    page.get_by_role("button", name="Confirm my subscription").click()
    assert page.locator("h1").inner_text() == "You are subscribed"
    accessible(page, axe_source, f"{where}: confirmed")


def test_a_resident_who_left_comes_back_by_signing_up_and_confirming(
    inbox: Inbox, checked: Any, axe_source: str, clock: ManualClock
) -> None:
    app = inbox.site.app
    gone = subscribe(inbox.site.app, "back@example.org", ["medway"])
    app.store.subscribers.unsubscribe(gone.id, now=app.now())
    clock.advance(timedelta(days=1))
    sign_up_and_confirm(checked, inbox, "back@example.org", 1, axe_source, "coming back")
    back = app.store.subscribers.find("back@example.org")
    assert back is not None and back.status is ACTIVE and back.areas == ("dover",)


def test_an_erased_address_can_sign_up_afresh(
    inbox: Inbox, checked: Any, axe_source: str, clock: ManualClock
) -> None:
    app = inbox.site.app
    subscribe(app, "erased@example.org", ["medway"])
    assert app.store.retention.erase(app.config.security, "erased@example.org", app.now())
    assert app.store.subscribers.find("erased@example.org") is None
    clock.advance(timedelta(days=1))
    sign_up_and_confirm(checked, inbox, "erased@example.org", 1, axe_source, "after erasure")
    again = app.store.subscribers.find("erased@example.org")
    assert again is not None and again.status is ACTIVE


def test_a_coordinator_one_clicked_out_from_a_forwarded_copy_is_mailed_an_undo_that_restores_them(
    inbox: Inbox, checked: Any, axe_source: str, clock: ManualClock, tmp_path: Path
) -> None:
    page, site, app = checked, inbox.site, inbox.site.app
    address = "watch.coordinator@example.org"

    # The coordinator signs up for the edition to forward, weekly, and confirms.
    page.goto(site.url + "/subscribe?area=medway")
    page.get_by_label("Email address").fill(address)
    page.get_by_label("A weekly digest").check()
    page.get_by_label("For me to forward to a group").check()
    accessible(page, axe_source, "subscribe: the edition to forward chosen")
    page.get_by_role("button", name="Subscribe").click()
    assert page.locator("h1").inner_text() == "Check your email"
    [confirmation] = inbox.deliver(1)
    page.goto(inbox.link(confirmation, "/confirm"))
    page.get_by_role("button", name="Confirm my subscription").click()
    assert page.locator("h1").inner_text() == "You are subscribed"
    inbox.deliver(2)  # the welcome
    before = app.store.subscribers.find(address)
    assert before is not None and before.status is ACTIVE and before.forwardable

    # A weekly edition goes out; the coordinator forwards it to the group.
    clock.advance(timedelta(days=1))
    save(app, advisory("fraud", title="Caller poses as police"), at=app.now())
    clock.advance(timedelta(hours=1))
    queue_digests(
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        Frequency.WEEKLY,
        now=app.now(),
    )
    edition = inbox.deliver(3)[2]
    assert edition["To"] == address and edition["List-Unsubscribe-Post"]
    before = app.store.subscribers.get(before.id)  # its watermark moved with the edition
    one_click = re.search(
        r"<(http[^>]+/unsubscribe/one-click\?token=[^>]+)>", edition["List-Unsubscribe"]
    )
    assert one_click

    # A member's mail app, holding the forwarded copy, presses its unsubscribe button.
    pressed = urllib.request.Request(
        one_click.group(1),
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(pressed, timeout=10) as answer:
        assert answer.status == 200
    assert app.store.subscribers.get(before.id).status is UNSUBSCRIBED

    # The coordinator is told at once, and one button puts everything back as it was.
    undo_mail = inbox.deliver(4)[3]
    assert undo_mail["To"] == address and "alerts were stopped" in undo_mail["Subject"]
    show_email(page, undo_mail, tmp_path, axe_source)
    page.goto(inbox.link(undo_mail, "/undo"))
    assert page.locator("h1").inner_text() == "Start your alerts again?"
    accessible(page, axe_source, "undo: asks")
    page.get_by_role("button", name="Start my alerts again").click()
    assert page.locator("h1").inner_text() == "Your alerts are back"
    accessible(page, axe_source, "undo: done")
    after = app.store.subscribers.get(before.id)
    assert after.status is ACTIVE
    kept = ("areas", "frequency", "forwardable", "urgent", "confirmed_at", "watermark")
    assert {f: getattr(after, f) for f in kept} == {f: getattr(before, f) for f in kept}

    # Pressed again, it only says they are subscribed.
    page.goto(inbox.link(undo_mail, "/undo"))
    assert page.locator("h1").inner_text() == "Your alerts are on"
    accessible(page, axe_source, "undo: nothing to undo")
