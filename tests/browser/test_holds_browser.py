"""Holds in the console in Chromium: an editor finds an advisory waiting for review in
the inbox and releases it with the keyboard alone, and it is at the relay within 10 s
with only the web app running; the pages that show holds and surges pass axe-core's
WCAG 2.2 AA rules, light and dark."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.clock import ManualClock
from alerts.pipeline import Plan, run_cycle
from alerts.store.users import Role
from alerts.testing import SmtpSink
from alerts.types import Hold
from tests.browser.conftest import PHONE, LiveServer, axe_violations
from tests.browser.test_admin_browser import (
    AT_RELAY,
    SCHEMES,
    console_server,
    keyboard_sign_in,
    tab_to,
)
from tests.conftest import NOW
from tests.support.advisory_files import write_advisory
from tests.support.console import PASSWORD, add_user
from tests.support.seeding import seed_subscribers

#: Ingest and queue alerts, as a poll of 'alerts serve' does; no feed files, no sending.
POLL = Plan("poll", feeds="never", digests=(), send=False)


@pytest.fixture
def relay() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def tips(tmp_path: Path) -> Path:
    folder = tmp_path / "tips"
    folder.mkdir()
    return folder


@pytest.fixture
def console(write_config: Callable[..., Path], relay: SmtpSink, tips: Path) -> Iterator[LiveServer]:
    """The web app alone, one folder source whose advisories wait for review."""
    with console_server(
        write_config,
        relay,
        sources=[{"path": str(tips), "settle_seconds": 0, "surge_limit": 2}],
        review={"sources": ["tips"]},
    ) as server:
        yield server


def arrive(server: LiveServer, tips: Path, clock: ManualClock, *names: str) -> None:
    """Advisories for Medway land in the folder and 'alerts serve' reads them."""
    app = server.app
    stamp = clock.now().astimezone(app.config.tz).strftime("%H:%M %d/%m/%Y")
    for name in names:
        write_advisory(tips, name, title=f"Van thefts in Chatham ({name})",
                       url=f"https://tips.example/{name}", date=stamp, area="Medway")  # fmt: skip
    run_cycle(app, POLL)


def test_an_editor_releases_an_advisory_waiting_for_review_by_keyboard_and_it_is_at_the_relay_within_10_s(
    console: LiveServer, relay: SmtpSink, page: Any, tips: Path, clock: ManualClock
) -> None:
    app = console.app
    add_user(app, "jo", Role.EDITOR)
    (reader,) = seed_subscribers(
        app.store, count=1, now=NOW - timedelta(hours=1), areas=("chatham",)
    )
    arrive(console, tips, clock, "one")
    (item,) = app.store.holds.waiting(Hold.REVIEW)
    clock.advance(timedelta(seconds=1))
    keyboard_sign_in(page, console.url, "jo")
    assert "Held (review):" in page.inner_text("main")
    assert not relay.received
    tab_to(page, f"advisory-{item.id}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console.url}/admin/advisories/{item.id}")
    tab_to(page, "release-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=messages queued")
    assert "Released: 1 messages queued" in page.inner_text("main")
    assert relay.wait_for(1, timeout=AT_RELAY), "nothing at the relay within 10 s"
    (message,) = relay.received
    assert message.rcpt_tos == (reader,)


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


def test_the_pages_that_show_holds_have_no_wcag_22_aa_violation(
    console: LiveServer, checked_page: Any, axe_source: str, tips: Path, clock: ManualClock
) -> None:
    page, url, app = checked_page, console.url, console.app
    add_user(app, "jo", Role.EDITOR)
    arrive(console, tips, clock, "one")
    clock.advance(timedelta(minutes=2))
    arrive(console, tips, clock, "s1", "s2", "s3")  # more than its surge limit of 2

    def check(where: str) -> None:
        violations = axe_violations(page, axe_source)
        assert not violations, f"{where}:\n" + "\n".join(violations)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], where

    page.goto(url + "/admin/login")
    page.fill("#username", "jo")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/admin")
    assert "Held (review):" in page.inner_text("main")
    assert "Held (surge):" in page.inner_text("main")
    check("inbox with holds")
    page.click("a:has-text('(one)')")
    check("an advisory waiting for review")
    page.click("#release-button")
    page.wait_for_selector("text=messages queued")
    check("released")
    page.click("#hold-button")
    page.wait_for_selector("text=Held: nobody is mailed")
    check("held by an editor")
    page.goto(url + "/admin/sources")
    assert "3 new advisories held" in page.inner_text("main")
    check("sources with a surge")
    page.click("button:has-text('Drop 3')")
    page.wait_for_selector("text=Dropped 3 advisories")
    check("sources after a drop")
