"""Two-step sign-in (TOTP): set up from Your account and confirmed by a code; then a
code after the password, limited and locked as passwords are, never accepted twice,
one step of drift either side, time from the one clock; reset by an admin or the CLI;
required of admins when the config says so; secrets never in a list, log or the audit."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from pathlib import Path

import pyotp
import pytest
from click.testing import Result
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.store.users import Role
from alerts.tokens import load_secret_keys
from alerts.web import create_app
from alerts.web.admin import totp
from alerts.web.admin.auth import ACCOUNT_FAILURES, CODE_COOKIE, CODE_WAIT, COOKIE
from alerts.web.admin.totp import matching_step
from tests.support.console import (
    BASE,
    PASSWORD,
    add_user,
    csrf_of,
    hidden_fields,
    post_login,
    signed_in,
)


def code_at(secret: str, clock: ManualClock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now() + timedelta(seconds=30 * steps))


def enrol(client: TestClient, clock: ManualClock) -> str:
    """Set up two-step sign-in from Your account as its owner would; returns the secret."""
    started = client.post("/admin/account", data={"csrf": csrf_of(client), "action": "start"})
    assert started.status_code == 200
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', started.text)
    assert secret, started.text
    key = secret.group(1).replace(" ", "")
    uri = unescape(re.search(r'id="totp-uri">([^<]+)<', started.text).group(1))  # type: ignore[union-attr]
    assert uri.startswith("otpauth://totp/") and f"secret={key}" in uri
    assert "<svg" in started.text  # the QR code, inline
    confirmed = client.post(
        "/admin/account",
        data={"csrf": csrf_of(client), "action": "confirm", "code": code_at(key, clock)},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303, confirmed.text
    return key


def password_step(
    client: TestClient, name: str, password: str = PASSWORD
) -> tuple[int, dict[str, str]]:
    status, _, headers = post_login(client, name, password)
    return status, headers


def code_step(client: TestClient, code: str) -> tuple[int, str, dict[str, str]]:
    page = client.get("/admin/login/code")
    fields = hidden_fields(page.text) if page.status_code == 200 else {}
    answer = client.post("/admin/login/code", data={**fields, "code": code}, follow_redirects=False)
    return answer.status_code, answer.text, dict(answer.headers)


@pytest.fixture
def enrolled(app: App, client: TestClient, clock: ManualClock) -> str:
    """ada, an admin with two-step sign-in on; signed out again."""
    add_user(app, "ada", Role.ADMIN)
    signed_in(client, "ada")
    secret = enrol(client, clock)
    client.post("/admin/logout", data={"csrf": csrf_of(client)})
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    return secret


def test_setup_takes_effect_only_once_a_code_confirms_it(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    add_user(app, "ada", Role.ADMIN)
    signed_in(client, "ada")
    client.post("/admin/account", data={"csrf": csrf_of(client), "action": "start"})
    assert not app.store.users.get("ada").totp_on
    wrong = client.post(
        "/admin/account", data={"csrf": csrf_of(client), "action": "confirm", "code": "000000"}
    )
    assert wrong.status_code == 400 and "not right" in wrong.text
    assert not app.store.users.get("ada").totp_on
    client.cookies.clear()
    assert (
        password_step(TestClient(create_app(app), base_url=BASE), "ada")[1]["location"] == "/admin"
    )


def test_after_setup_sign_in_asks_for_the_code_and_the_code_opens_the_console(
    app: App, client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    status, headers = password_step(client, "ada")
    assert status == 303 and headers["location"].startswith("/admin/login/code")
    assert f"{CODE_COOKIE}=" in headers["set-cookie"] and f"{COOKIE}=" not in headers["set-cookie"]
    # The password alone opens nothing.
    assert client.get("/admin", follow_redirects=False).status_code == 303
    status, _, headers = code_step(client, code_at(enrolled, clock))
    assert status == 303 and headers["location"] == "/admin"
    assert f"{COOKIE}=" in headers["set-cookie"]
    assert client.get("/admin").status_code == 200
    assert app.store.users.get("ada").last_sign_in_at == clock.now()


def test_the_password_step_answers_the_same_for_unknown_names_and_wrong_passwords(
    client: TestClient, enrolled: str
) -> None:
    known = post_login(client, "ada", "not the password at all")
    unknown = post_login(client, "nobody-here", "not the password at all")
    assert known[0] == unknown[0] == 401
    assert "do not match" in known[1] and "do not match" in unknown[1]
    assert CODE_COOKIE not in known[2].get("set-cookie", "")


def test_a_code_is_never_accepted_twice(
    app: App, client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    code = code_at(enrolled, clock)
    password_step(client, "ada")
    assert code_step(client, code)[0] == 303
    other = TestClient(create_app(app), base_url=BASE)
    password_step(other, "ada")
    status, text, _ = code_step(other, code)
    assert status == 401 and "used already" in text
    # An earlier step's code is no good either once a later one was used.
    assert code_step(other, code_at(enrolled, clock, -1))[0] == 401


def test_one_step_of_clock_drift_either_side_is_accepted_and_no_more(
    client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    password_step(client, "ada")
    assert code_step(client, code_at(enrolled, clock, 2))[0] == 401
    assert code_step(client, code_at(enrolled, clock, -2))[0] == 401
    assert code_step(client, code_at(enrolled, clock, 1))[0] == 303


def test_codes_are_checked_against_the_one_clock_not_the_system_time(
    clock: ManualClock,
) -> None:
    secret = pyotp.random_base32()
    clock.set(clock.now() - timedelta(days=400))  # far from the real time
    step = matching_step(secret, code_at(secret, clock), clock.now())
    assert step == int(clock.now().timestamp()) // 30
    assert matching_step(secret, pyotp.TOTP(secret).now(), clock.now()) is None


def test_wrong_codes_count_towards_the_password_lock(
    app: App, client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    password_step(client, "ada")
    for _ in range(ACCOUNT_FAILURES.limit - 2):
        assert code_step(client, "123456")[0] == 401
    assert post_login(client, "ada", "wrong password here")[0] == 401
    status, text, _ = code_step(client, "654321")
    assert status == 401 and "locked here for 15 minutes" in text
    # Locked: the right password and then the right code are refused alike.
    assert post_login(client, "ada", PASSWORD)[0] == 401
    assert code_step(client, code_at(enrolled, clock))[0] != 303
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_a_right_password_does_not_reset_the_count_of_wrong_codes(
    app: App, client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    for _ in range(ACCOUNT_FAILURES.limit - 1):
        password_step(client, "ada")
        assert code_step(client, "000000")[0] == 401
        clock.advance(timedelta(seconds=20))  # under the attempts-a-minute limit
    password_step(client, "ada")
    assert "locked here" in code_step(client, "111111")[1]


def test_the_code_page_waits_only_a_few_minutes(
    client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    password_step(client, "ada")
    clock.advance(CODE_WAIT + timedelta(seconds=1))
    status, text, _ = code_step(client, code_at(enrolled, clock))
    assert status in (303, 400, 401) and "/admin/login/code" not in text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_the_code_form_without_its_token_is_refused(
    client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    password_step(client, "ada")
    answer = client.post(
        "/admin/login/code", data={"code": code_at(enrolled, clock)}, follow_redirects=False
    )
    assert answer.status_code == 400 and f"{COOKIE}=" not in answer.headers.get("set-cookie", "")


def test_turning_it_off_needs_a_code(
    app: App, client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    password_step(client, "ada")
    code_step(client, code_at(enrolled, clock))
    refused = client.post(
        "/admin/account", data={"csrf": csrf_of(client), "action": "off", "code": "1"}
    )
    assert refused.status_code == 400 and app.store.users.get("ada").totp_on
    clock.advance(timedelta(seconds=30))
    client.post(
        "/admin/account",
        data={"csrf": csrf_of(client), "action": "off", "code": code_at(enrolled, clock)},
    )
    assert not app.store.users.get("ada").totp_on


def test_alerts_users_totp_reset_turns_it_off(
    app: App,
    client: TestClient,
    enrolled: str,
    run_cli: Callable[..., Result],
    write_config: Callable[..., Path],
    db_url: str,
) -> None:
    config = write_config(database=db_url, site={"base_url": BASE})
    assert '"two_step": true' in run_cli("users", "list", "--json", config=config).output
    result = run_cli("users", "totp-reset", "ada", config=config)
    assert result.exit_code == 0 and "Two-step sign-in is off for ada" in result.output
    assert password_step(client, "ada")[1]["location"] == "/admin"
    entry = app.store.audit.recent()[1]
    assert (entry.actor, entry.action, entry.after) == (
        "cli",
        "user-totp-reset",
        {"two_step": False},
    )


def test_an_admin_resets_another_users_two_step_sign_in(
    app: App, client: TestClient, clock: ManualClock, enrolled: str
) -> None:
    add_user(app, "root", Role.ADMIN)
    signed_in(client, "root")
    ada = app.store.users.get("ada")
    page = client.get(f"/admin/users/{ada.id}")
    assert "Reset two-step sign-in" in page.text
    done = client.post(
        f"/admin/users/{ada.id}", data={"csrf": csrf_of(client), "action": "totp-reset"}
    )
    assert done.status_code == 200 and not app.store.users.get("ada").totp_on


def test_when_required_an_admin_without_it_is_sent_to_set_it_up_first(
    write_config: Callable[..., Path], db_url: str, clock: ManualClock
) -> None:
    app = App(
        write_config(database=db_url, site={"base_url": BASE}, console={"require_admin_totp": True})
    )
    add_user(app, "ada", Role.ADMIN)
    add_user(app, "jo", Role.EDITOR)
    client = signed_in(TestClient(create_app(app), base_url=BASE), "ada")
    for path in ("/admin", "/admin/users", "/admin/compose"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/account", path
    account = client.get("/admin/account")
    assert account.status_code == 200 and "set it up before anything else" in account.text
    enrol(client, clock)
    assert client.get("/admin").status_code == 200
    off = client.post(
        "/admin/account",
        data={"csrf": csrf_of(client), "action": "off", "code": "000000"},
    )
    assert off.status_code == 400 and "Admins must keep it on" in off.text
    assert app.store.users.get("ada").totp_on
    # Editors are not asked.
    assert (
        signed_in(TestClient(create_app(app), base_url=BASE), "jo").get("/admin").status_code == 200
    )
    app.close()


def test_secrets_never_reach_the_user_list_the_log_or_the_audit(
    app: App,
    client: TestClient,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    run_cli: Callable[..., Result],
    write_config: Callable[..., Path],
    db_url: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    add_user(app, "ada", Role.ADMIN)
    signed_in(client, "ada")
    secret = enrol(client, clock)
    stored = app.store.users.get("ada").totp_secret
    assert stored is not None and secret not in stored  # encrypted at rest
    listing = (
        client.get("/admin/users").text
        + client.get(f"/admin/users/{app.store.users.get('ada').id}").text
    )
    listing += run_cli(
        "users", "list", "--json", config=write_config(database=db_url, site={"base_url": BASE})
    ).output
    audit = client.get("/admin/audit").text + repr(app.store.audit.recent())
    for text in (listing, audit, caplog.text):
        assert secret not in text and stored not in text
        assert PASSWORD not in text


def test_secrets_open_with_an_older_signing_key_still_listed_and_not_after_it_is_dropped(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = app.config.security.secret_key_env
    old, new = "o" * 40, "n" * 40
    monkeypatch.setenv(variable, old)
    stored = totp.encrypt(load_secret_keys(app.config.security), "ada", "JBSWY3DPEHPK3PXP")
    monkeypatch.setenv(variable, f"{new} {old}")
    assert totp.decrypt(load_secret_keys(app.config.security), "ada", stored) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(totp.SecretUnreadable, match="alerts users totp-reset bob"):
        totp.decrypt(load_secret_keys(app.config.security), "bob", stored)  # bound to its user
    monkeypatch.setenv(variable, new)
    with pytest.raises(totp.SecretUnreadable):
        totp.decrypt(load_secret_keys(app.config.security), "ada", stored)
