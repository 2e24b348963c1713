"""Accounts in Chromium, keyboard only: an admin sets up two-step sign-in and then signs
in with a code; an admin adds a user who then signs in. Every page on the way passes
axe-core's WCAG 2.2 AA rules, in light and in dark, and fits a phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest

from alerts.clock import ManualClock
from alerts.store.users import Role
from tests.browser.conftest import PHONE, LiveServer, axe_violations
from tests.browser.test_admin_browser import console, keyboard_sign_in, relay, tab_to, tab_to_button
from tests.support.console import PASSWORD, add_user

__all__ = ["console", "relay"]  # the fixtures, shared with the console's other browser tests

NEW_PASSWORD = "sam's own first passphrase"


@pytest.fixture(params=["light", "dark"])
def scheme_page(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    """A phone-sized page in light or dark; axe needs the CSP bypassed (no script runs
    on console pages otherwise)."""
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


def checked(page: Any, axe_source: str, where: str) -> None:
    violations = axe_violations(page, axe_source)
    assert not violations, f"{where}:\n" + "\n".join(violations)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], where


def press_button(page: Any, label: str) -> None:
    tab_to_button(page, label)
    page.keyboard.press("Enter")


def test_an_admin_sets_up_two_step_sign_in_and_then_signs_in_with_a_code_by_keyboard(
    console: LiveServer, scheme_page: Any, axe_source: str, clock: ManualClock
) -> None:
    page, url = scheme_page, console.url
    add_user(console.app, "ada", Role.ADMIN)
    keyboard_sign_in(page, url, "ada")
    tab_to(page, "account-link")
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/admin/account")
    checked(page, axe_source, "account, two-step off")
    press_button(page, "Set up two-step sign-in")
    page.wait_for_selector("#totp-secret")
    checked(page, axe_source, "account, setting up")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    assert page.inner_text("#totp-uri").startswith("otpauth://totp/")
    tab_to(page, "code")
    page.keyboard.type("000000")
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-error")
    checked(page, axe_source, "account, a wrong code")
    tab_to(page, "code")
    page.keyboard.type(pyotp.TOTP(secret).at(clock.now()))
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Two-step sign-in is on")
    checked(page, axe_source, "account, two-step on")
    press_button(page, "Sign out")
    page.wait_for_url(url + "/admin/login")

    clock.advance(timedelta(seconds=30))  # the confirming code's step is used up
    tab_to(page, "username")
    page.keyboard.type("ada")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(url + "/admin/login/code")))
    checked(page, axe_source, "code page")
    tab_to(page, "code")
    page.keyboard.type("123456")
    page.keyboard.press("Enter")
    page.wait_for_selector("#code-error")
    checked(page, axe_source, "code page, a wrong code")
    tab_to(page, "code")
    page.keyboard.type(pyotp.TOTP(secret).at(clock.now()))
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/admin")
    assert "Sign out ada" in page.inner_text("nav")


def test_an_admin_adds_a_user_by_keyboard_who_then_signs_in(
    console: LiveServer, scheme_page: Any, axe_source: str, browser: Any
) -> None:
    page, url = scheme_page, console.url
    add_user(console.app, "ada", Role.ADMIN)
    add_user(console.app, "jo", Role.EDITOR)
    keyboard_sign_in(page, url, "ada")
    tab_to(page, "users-link")
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/admin/users")
    checked(page, axe_source, "users")
    tab_to(page, "add-user")
    page.keyboard.press("Enter")
    page.wait_for_url(url + "/admin/users/new")
    checked(page, axe_source, "add a user")
    tab_to(page, "name")
    page.keyboard.type("sam")
    tab_to(page, "role-editor")
    page.keyboard.press("ArrowRight")  # the radio group: admin
    page.keyboard.press("ArrowLeft")  # and back: editor
    tab_to(page, "password")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type("not the same passphrase")
    page.keyboard.press("Enter")
    page.wait_for_selector(".errors")
    checked(page, axe_source, "add a user, errors")
    tab_to(page, "password")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Added sam")
    checked(page, axe_source, "users, after adding")
    sam = console.app.store.users.get("sam")
    assert sam.role is Role.EDITOR
    page.goto(url + f"/admin/users/{sam.id}")
    checked(page, axe_source, "one user")
    page.goto(url + f"/admin/users/{console.app.store.users.get('ada').id}")
    checked(page, axe_source, "yourself")
    # sam signs in with the first password, in a browser of their own.
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    other = context.new_page()
    other.goto(url + "/admin/login")
    other.fill("#username", "sam")
    other.fill("#password", NEW_PASSWORD)
    other.press("#password", "Enter")
    other.wait_for_url(url + "/admin")
    context.close()
