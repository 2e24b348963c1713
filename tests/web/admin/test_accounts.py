"""The console's accounts: ``alerts users``, signing in and out, the lockout, and the
gate in front of every /admin page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from argon2 import Type, extract_parameters
from click.testing import Result
from starlette.routing import Route
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.store.users import Role
from alerts.web import create_app
from alerts.web.admin import PREFIX, PUBLIC
from alerts.web.admin.auth import ACCOUNT_FAILURES, COOKIE
from alerts.web.admin.passwords import dummy_hash, hash_password, verify
from tests.support.console import BASE, PASSWORD, add_user, csrf_of, post_login, signed_in


def other_client(app: App, host: str) -> TestClient:
    return TestClient(create_app(app), base_url=BASE, client=(host, 50000))


# -- alerts users ---------------------------------------------------------------------


def test_alerts_users_add_reads_the_password_from_stdin_and_the_user_can_sign_in(
    run_cli: Callable[..., Result], config_path: Path
) -> None:
    added = run_cli(
        "users", "add", "jo", "--role", "editor", "--password-stdin", input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    assert "Added editor jo" in added.output
    listed = run_cli("users", "list", "--json")
    assert '"name": "jo"' in listed.output and '"role": "editor"' in listed.output
    app = App(config_path)
    user = app.store.users.get("jo")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    with TestClient(create_app(app), base_url="http://localhost:8000") as client:
        signed_in(client, "jo")
        assert client.get("/admin").status_code == 200
    app.close()


def test_a_short_password_is_refused_with_the_reason(run_cli: Callable[..., Result]) -> None:
    result = run_cli("users", "add", "jo", "--role", "admin", "--password-stdin", input="short\n")
    assert result.exit_code == 2
    assert "at least 12 characters" in result.output


def test_adding_the_same_name_twice_says_so(run_cli: Callable[..., Result]) -> None:
    run_cli("users", "add", "jo", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    again = run_cli(
        "users", "add", "jo", "--role", "editor", "--password-stdin", input=PASSWORD + "\n"
    )
    assert again.exit_code == 2 and "already a user called 'jo'" in again.output


def test_the_last_admin_is_not_removed_from_the_command_line(
    run_cli: Callable[..., Result],
) -> None:
    run_cli("users", "add", "jo", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    refused = run_cli("users", "remove", "jo")
    assert refused.exit_code == 2
    assert "would leave no admin" in refused.output
    assert "make another user an admin first" in refused.output
    assert "jo" in run_cli("users", "list").output


def test_removing_a_user_or_changing_their_password_ends_their_sign_ins(
    run_cli: Callable[..., Result], config_path: Path
) -> None:
    for name in ("jo", "sam"):
        run_cli("users", "add", name, "--role", "editor", "--password-stdin", input=PASSWORD + "\n")
    app = App(config_path)
    jo = signed_in(TestClient(create_app(app), base_url="http://localhost:8000"), "jo")
    sam = signed_in(TestClient(create_app(app), base_url="http://localhost:8000"), "sam")
    assert jo.get("/admin").status_code == sam.get("/admin").status_code == 200
    assert run_cli("users", "remove", "jo").exit_code == 0
    assert (
        run_cli(
            "users", "passwd", "sam", "--password-stdin", input="a whole new passphrase\n"
        ).exit_code
        == 0
    )
    assert jo.get("/admin", follow_redirects=False).status_code == 303
    assert sam.get("/admin", follow_redirects=False).status_code == 303
    assert post_login(sam, "sam", PASSWORD)[0] == 401
    assert post_login(sam, "sam", "a whole new passphrase")[0] == 303
    app.close()


# -- signing in -----------------------------------------------------------------------


def test_the_login_form_posted_back_opens_the_console_which_offers_sign_out(
    app: App, client: TestClient
) -> None:
    add_user(app, "jo")
    status, _, headers = post_login(client, "jo", PASSWORD, next_path="/admin/outbox")
    assert status == 303 and headers["location"] == "/admin/outbox"
    cookie = headers["set-cookie"]
    assert (
        f"{COOKIE}=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie
        and "Secure" in cookie
    )
    assert "Path=/admin" in cookie
    inbox = client.get("/admin")
    assert inbox.status_code == 200 and "Sign out jo" in inbox.text
    out = client.post("/admin/logout", data={"csrf": csrf_of(client)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_signing_in_gives_a_fresh_session_each_time(app: App, client: TestClient) -> None:
    add_user(app, "jo")
    client.cookies.set(
        COOKIE, "planted-by-someone-else", domain="alerts.example.org", path="/admin"
    )
    _, _, first = post_login(client, "jo", PASSWORD)
    _, _, second = post_login(TestClient(create_app(app), base_url=BASE), "jo", PASSWORD)
    token = re.search(rf"{COOKIE}=([^;]+)", first["set-cookie"])
    other = re.search(rf"{COOKIE}=([^;]+)", second["set-cookie"])
    assert token and other and token.group(1) != other.group(1) != "planted-by-someone-else"


def test_the_login_answers_the_same_whether_or_not_the_account_exists(
    app: App, client: TestClient
) -> None:
    add_user(app, "jo")
    known = post_login(client, "jo", "wrong password here")
    unknown = post_login(client, "nobody-by-this-name", "wrong password here")
    assert known[0] == unknown[0] == 401
    message = "That name and password do not match"
    assert message in known[1] and message in unknown[1]


def test_the_login_form_without_its_csrf_field_is_refused(app: App, client: TestClient) -> None:
    add_user(app, "jo")
    client.get("/admin/login")
    answer = client.post(
        "/admin/login", data={"username": "jo", "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 400 and f"{COOKIE}=" not in answer.headers.get("set-cookie", "")


def test_a_next_address_elsewhere_is_ignored(app: App, client: TestClient) -> None:
    add_user(app, "jo")
    status, _, headers = post_login(client, "jo", PASSWORD, next_path="//evil.example/admin")
    assert status == 303 and headers["location"] == "/admin"


def test_five_wrong_passwords_lock_the_account_so_the_right_one_is_then_refused(
    app: App, client: TestClient, clock: ManualClock
) -> None:
    add_user(app, "jo")
    for _ in range(ACCOUNT_FAILURES.limit):
        assert post_login(client, "jo", "not the password")[0] == 401
    status, text, headers = post_login(client, "jo", PASSWORD)
    assert (
        status == 401
        and "locked here for 15 minutes" in text
        and f"{COOKIE}=" not in headers.get("set-cookie", "")
    )
    clock.advance(timedelta(minutes=16))
    assert post_login(client, "jo", PASSWORD)[0] == 303


def test_a_lock_holds_only_for_the_client_that_failed_and_unknown_names_lock_alike(
    app: App,
) -> None:
    add_user(app, "jo")
    attacker = other_client(app, "203.0.113.9")
    for _ in range(ACCOUNT_FAILURES.limit):
        post_login(attacker, "jo", "guess")
        post_login(attacker, "ghost", "guess")
    assert "locked here" in post_login(attacker, "jo", PASSWORD)[1]
    assert (
        "locked here" in post_login(attacker, "ghost", PASSWORD)[1]
    )  # no hint that ghost does not exist
    # Nobody can lock an editor out from elsewhere: jo at the office still signs in.
    assert post_login(other_client(app, "198.51.100.7"), "jo", PASSWORD)[0] == 303


def test_alerts_users_unlock_lifts_the_lock(
    app: App,
    client: TestClient,
    run_cli: Callable[..., Result],
    write_config: Callable[..., Path],
    db_url: str,
) -> None:
    add_user(app, "jo")
    for _ in range(ACCOUNT_FAILURES.limit):
        post_login(client, "jo", "not the password")
    result = run_cli(
        "users", "unlock", "jo", config=write_config(database=db_url, site={"base_url": BASE})
    )
    assert result.exit_code == 0 and "Lifted 1 lock on jo" in result.output
    assert post_login(client, "jo", PASSWORD)[0] == 303


def test_a_client_failing_across_many_accounts_is_slowed_before_any_hashing(
    app: App, clock: ManualClock
) -> None:
    add_user(app, "jo")
    sprayer = other_client(app, "203.0.113.50")
    answers = []
    for attempt in range(30):
        answers.append(post_login(sprayer, f"name{attempt}", "Winter2026!")[0])
        clock.advance(timedelta(seconds=10))
    assert 429 in answers
    assert post_login(sprayer, "jo", PASSWORD)[0] == 429  # even the right password waits
    clock.advance(timedelta(minutes=2))
    assert post_login(sprayer, "jo", PASSWORD)[0] == 303


def test_every_sign_in_attempt_is_in_the_audit_log(app: App, client: TestClient) -> None:
    add_user(app, "jo")
    post_login(client, "jo", "wrong password here")
    post_login(client, "jo", PASSWORD)
    actions = [entry.action for entry in app.store.audit.recent()]
    assert actions[:2] == ["sign-in", "sign-in-refused"]


# -- the gate -------------------------------------------------------------------------


def console_paths(client: TestClient) -> list[tuple[str, set[str]]]:
    """Every /admin route in the app's route table, path parameters filled in."""
    found = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith(PREFIX):
            path = re.sub(r"\{[^}:]+(:int)?\}", "1", route.path)
            found.append((path, set(route.methods or ())))
    return found


def test_no_admin_page_answers_200_to_anyone_not_signed_in(app: App, client: TestClient) -> None:
    paths = console_paths(client)
    assert len(paths) >= 8
    for path, methods in paths:
        for method in methods - {"HEAD"}:
            answer = client.request(method, path, follow_redirects=False)
            if path in PUBLIC:
                continue
            assert answer.status_code in (303, 403), (
                f"{method} {path} answered {answer.status_code}"
            )
            if method == "GET":
                assert answer.headers["location"].startswith("/admin/login?next=")


def test_every_console_answer_forbids_framing_and_script(app: App, client: TestClient) -> None:
    for path in ("/admin/login", "/admin", "/admin/nowhere"):
        headers = client.get(path, follow_redirects=False).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert (
            "script-src" not in headers["content-security-policy"]
        )  # default-src 'none' covers it
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


def test_a_console_post_without_the_csrf_token_is_refused(app: App, client: TestClient) -> None:
    add_user(app, "jo")
    signed_in(client, "jo")
    answer = client.post("/admin/logout", data={}, follow_redirects=False)
    assert answer.status_code == 403
    assert client.get("/admin").status_code == 200  # still signed in


def test_an_editor_is_refused_the_admin_pages(app: App, client: TestClient) -> None:
    add_user(app, "jo", Role.EDITOR)
    signed_in(client, "jo")
    for path in ("/admin/subscribers/erase", "/admin/subscribers", "/admin/users", "/admin/audit"):
        assert client.get(path).status_code == 403, path
    erase = client.post(
        "/admin/subscribers/erase",
        data={"csrf": csrf_of(client), "email": "a@example.org", "confirm": "yes"},
    )
    assert erase.status_code == 403


def test_an_admin_opens_the_subscriber_erase_page(app: App, client: TestClient) -> None:
    add_user(app, "ada", Role.ADMIN)
    signed_in(client, "ada")
    assert client.get("/admin/subscribers/erase").status_code == 200


def test_an_unknown_name_is_checked_against_a_dummy_hash_of_the_same_cost() -> None:
    real = extract_parameters(hash_password(PASSWORD))
    assert extract_parameters(dummy_hash()) == real
    assert (real.type, real.time_cost, real.memory_cost, real.parallelism) == (
        Type.ID,
        2,
        19 * 1024,
        1,
    )
    assert verify(None, PASSWORD) == (False, False)
    assert verify(dummy_hash(), "\x00 no such account \x00") == (
        True,
        False,
    )  # it really is checked


def test_head_on_the_login_page_answers_as_get(client: TestClient) -> None:
    assert client.head("/admin/login").status_code == 200
