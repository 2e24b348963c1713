"""Every page and every email checked with axe-core (the npm package's axe.min.js,
injected into the page) against WCAG 2.2 AA, in Chromium on a phone-sized screen, in
light and dark mode: archive pages, the subscription journey's pages (with and without
errors), the privacy notice, error pages, and the HTML part of each kind of email."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.app import App
from alerts.digest import queue_digests
from alerts.store.subscribers import PENDING
from alerts.subscribers import make_subscription
from alerts.subscribers.mail import send_confirmation
from alerts.subscribers.notices import KINDS, send_notice
from alerts.tokens import Confirmation, LinkSigner
from alerts.types import Frequency, Priority
from tests.browser.conftest import PHONE, LiveServer, axe_violations
from tests.support import NOW
from tests.support.digests import HOSTILE_BODY_HTML, advisory, built, parts, save, subscribe

SCHEMES = ["light", "dark"]


@pytest.fixture
def site(live_server: Callable[..., LiveServer]) -> LiveServer:
    server = live_server()
    app = server.app
    save(
        app,
        advisory("urgent", title="Flooding on the A2", priority=Priority.URGENT, areas=["chatham"]),
    )
    # Its "What to do" box leads the advisory's page.
    save(
        app,
        advisory(
            "advice",
            title="Caller poses as police",
            body="<p>A call.</p><p>If you get such a call, hang up.</p>",
        ),
    )
    save(
        app,
        advisory(
            "hostile",
            title="Scam <b>warning</b>",
            body=HOSTILE_BODY_HTML + "<table><tr><th>A</th></tr></table>",
        ),
    )
    for n in range(31):
        save(
            app,
            advisory(
                f"many{n}",
                areas=["dover"],
                title=f"Dover advice {n}",
                published=NOW - timedelta(hours=3 + n),
            ),
        )
    return server


@pytest.fixture
def people(site: LiveServer) -> dict[str, str]:
    """Personal links for an active and a pending subscriber, as their emails carry them."""
    app = site.app
    signer = LinkSigner(app.config.site.base_url, app.config.security)
    active = subscribe(app, "active@example.org", ["medway", "dover"], frequency="daily")
    pending = app.store.subscribers.add(
        make_subscription(app.gazetteer, "pending@example.org", ["chatham"]),
        now=NOW,
        status=PENDING,
    )
    gone = subscribe(app, "gone@example.org", ["dover"])
    links = signer.links(active.id, NOW)
    return {
        "manage": links.manage_url,
        "unsubscribe": links.unsubscribe_url,
        "one_click": links.one_click_url,
        "confirm": signer.confirm_url(
            Confirmation(pending.id, pending.areas, pending.frequency, pending.urgent), NOW
        ),
        "gone_unsubscribe": signer.links(gone.id, NOW).unsubscribe_url,
    }


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


def assert_accessible(page: Any, axe_source: str, where: str) -> None:
    violations = axe_violations(page, axe_source)
    assert not violations, f"{where}:\n" + "\n".join(violations)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], where


ARCHIVE = ["/", "/areas/medway", "/areas/dover", "/areas/dover?page=2", "/areas/kent", "/privacy",
           "/find?q=Narnia", "/no-such-page", "/advisories/999999", "/feeds/medway.rss", "/feeds/all.atom"]  # fmt: skip


def test_archive_pages_have_no_wcag_22_aa_violation(
    site: LiveServer, checked_page: Any, axe_source: str
) -> None:
    for path in ARCHIVE:
        checked_page.goto(site.url + path)
        assert_accessible(checked_page, axe_source, path)
    for item in site.app.store.advisories.find(areas=["medway", "chatham"]):
        checked_page.goto(f"{site.url}/advisories/{item.id}")
        assert_accessible(checked_page, axe_source, f"/advisories/{item.id}")


def test_the_subscription_journey_has_no_wcag_22_aa_violation(
    site: LiveServer, people: dict[str, str], checked_page: Any, axe_source: str
) -> None:
    page = checked_page
    page.goto(f"{site.url}/subscribe?area=medway")
    assert_accessible(page, axe_source, "subscribe")
    page.locator("summary", has_text="Dover").click()  # a district's list open
    assert_accessible(page, axe_source, "subscribe, Dover open")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_label("Or type towns or postcode districts").fill("Narnia")
    page.get_by_role("button", name="Subscribe").click()
    assert page.title().startswith("Error: ")
    assert_accessible(page, axe_source, "subscribe with errors")
    page.get_by_label("Email address").fill("someone@example.org")
    page.get_by_label("Or type towns or postcode districts").fill("")
    page.get_by_role("button", name="Subscribe").click()
    assert_accessible(page, axe_source, "check your inbox")

    page.goto(people["confirm"])
    assert_accessible(page, axe_source, "confirm")
    page.goto(people["manage"])
    assert_accessible(page, axe_source, "manage")
    page.get_by_role("button", name="Save").click()
    assert_accessible(page, axe_source, "manage saved")
    page.goto(people["one_click"])
    assert_accessible(page, axe_source, "List-Unsubscribe address in a browser")
    page.goto(people["unsubscribe"])
    assert_accessible(page, axe_source, "unsubscribe")
    page.goto(people["gone_unsubscribe"])
    page.get_by_role("button", name="Unsubscribe").click()
    assert_accessible(page, axe_source, "unsubscribed")
    page.goto(f"{site.url}/manage?token=garbage")
    assert_accessible(page, axe_source, "bad link")
    page.goto(f"{site.url}/manage")
    assert_accessible(page, axe_source, "manage: ask for a link")
    page.get_by_label("Email address").fill("active@example.org")
    page.get_by_role("button", name="Email me a link").click()
    assert page.locator("h1").inner_text() == "Check your email"
    assert_accessible(page, axe_source, "manage: check your email")


def test_every_kind_of_email_has_no_wcag_22_aa_violation(
    write_config: Callable[..., Path], browser: Any, axe_source: str, tmp_path: Path
) -> None:
    app = App(write_config(site={"base_url": "https://alerts.example.org"}))
    try:
        pending = app.store.subscribers.add(
            make_subscription(app.gazetteer, "new@example.org", ["medway"]), now=NOW, status=PENDING
        )
        send_confirmation(app.config.mail, app.store, pending, ["Medway"], now=NOW)
        now = subscribe(app, "now@example.org", ["medway"], frequency="immediate")
        for kind in KINDS:  # manage link, "already subscribed", welcome
            send_notice(
                app.config.mail, app.config.digests, app.store, now, kind, ["Medway"], now=NOW
            )
        subscribe(app, "day@example.org", ["medway", "dover"], frequency="daily")
        subscribe(app, "group@example.org", ["medway"], frequency="weekly", forwardable=True)
        save(
            app,
            advisory(
                "flood", title="Flood warning", priority=Priority.URGENT, body=HOSTILE_BODY_HTML
            ),
        )
        save(app, advisory("thefts", title="Catalytic converter <i>thefts</i>"))
        save(app, advisory("dover", areas=["dover"], title="Dover harbour scam"))
        for frequency in (Frequency.IMMEDIATE, Frequency.DAILY, Frequency.WEEKLY):
            queue_digests(
                app.config.mail, app.config.digests, app.store, app.gazetteer, frequency, now=NOW
            )
        messages = built(app)
    finally:
        app.close()
    assert len(messages) >= 8  # confirm, manage, already, welcome, and the alerts
    for scheme in SCHEMES:
        context = browser.new_context(viewport={"width": 320, "height": 640}, color_scheme=scheme)
        try:
            page = context.new_page()
            for index, (_, _, message) in enumerate(messages):
                path = tmp_path / f"message-{index}.html"
                path.write_text(parts(message)[1], encoding="utf-8")
                page.goto(path.as_uri())
                assert_accessible(page, axe_source, f"{message['Subject']} ({scheme})")
        finally:
            context.close()


def test_the_checker_finds_what_it_should(browser: Any, axe_source: str, tmp_path: Path) -> None:
    # Without this, a checker that silently ran no rule would pass every page above.
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><html><head><title>x</title></head><body><img src="x.png">'
        '<p style="color:#ccc;background:#fff">faint</p><input type="text"></body></html>',
        encoding="utf-8",
    )
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(bad.as_uri())
        found = {line.split(" ", 1)[0] for line in axe_violations(page, axe_source)}
    finally:
        context.close()
    assert {"image-alt", "color-contrast", "label", "html-has-lang"} <= found, found
