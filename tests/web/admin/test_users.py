"""Managing console users from the console: admins only, every action behind the CSRF
token and in the audit log (never a password), nobody removes or demotes themselves or
the last admin, and removing a user or setting their password ends their sign-ins."""

from __future__ import annotations

import re
from collections.abc import Callable

from click.testing import Result
from starlette.routing import Route
from starlette.testclient import TestClient

from alerts.app import App
from alerts.clock import ManualClock
from alerts.store.users import LastAdmin, Role
from alerts.web import create_app
from alerts.web.admin import PREFIX, PUBLIC
from alerts.web.admin.auth import ACCOUNT_FAILURES
from tests.support.console import BASE, PASSWORD, add_user, csrf_of, post_login, signed_in

NEW_PASSWORD = "a brand new passphrase"

#: Console paths only an admin may open (everything else is open to editors too).
ADMIN_ONLY = re.compile(r"^/admin/(users|audit|subscribers)(/|$)")


def new_client(app: App) -> TestClient:
    return TestClient(create_app(app), base_url=BASE)


def admin_client(app: App, name: str = "ada") -> TestClient:
    add_user(app, name, Role.ADMIN)
    return signed_in(new_client(app), name)


def act(client: TestClient, user_id: int, action: str, **fields: str) -> tuple[int, str]:
    answer = client.post(
        f"/admin/users/{user_id}",
        data={"csrf": csrf_of(client), "action": action, **fields},
        follow_redirects=True,
    )
    return answer.status_code, answer.text


# -- the gate, from the route table ---------------------------------------------------


def gated_routes(client: TestClient) -> list[tuple[str, Route]]:
    found = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and (
            route.path == PREFIX or route.path.startswith(PREFIX + "/")
        ):
            found.append((re.sub(r"\{[^}:]+(:int)?\}", "1", route.path), route))
    return found


def test_every_console_route_passes_the_gate_and_user_pages_ask_for_an_admin(
    app: App,
) -> None:
    """Walks the route table: every /admin route but the sign-in pages goes through the
    gate, and the gate asks for an admin exactly on the admin pages; then an editor is
    refused every method of each admin route, and a stranger every method of all."""
    client = new_client(app)
    routes = gated_routes(client)
    assert {"/admin/users", "/admin/users/new", "/admin/users/1", "/admin/account"} <= {
        path for path, _ in routes
    }
    for path, route in routes:
        if path in PUBLIC:
            continue
        role = getattr(route.endpoint, "console_role", None)
        assert role is not None, f"{path} does not go through console_route"
        expected = Role.ADMIN if ADMIN_ONLY.match(path) else Role.EDITOR
        assert role is expected, f"{path} asks for {role}, not {expected}"
    add_user(app, "jo", Role.EDITOR)
    add_user(app, "ada", Role.ADMIN)
    editor = signed_in(new_client(app), "jo")
    token = csrf_of(editor)
    for path, route in routes:
        if not ADMIN_ONLY.match(path):
            continue
        for method in sorted(set(route.methods or ()) - {"HEAD"}):
            data = (
                {"csrf": token, "action": "remove", "confirm": "yes"} if method == "POST" else None
            )
            answer = editor.request(method, path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (
                f"an editor got {answer.status_code} from {method} {path}"
            )
    stranger = new_client(app)
    for path, route in routes:
        if path in PUBLIC:
            continue
        for method in set(route.methods or ()) - {"HEAD"}:
            answer = stranger.request(method, path, follow_redirects=False)
            assert answer.status_code in (303, 403), f"{method} {path}: {answer.status_code}"
    assert app.store.users.find("ada") is not None


def test_an_editor_opens_their_own_account_page(app: App) -> None:
    add_user(app, "jo", Role.EDITOR)
    editor = signed_in(new_client(app), "jo")
    assert editor.get("/admin/account").status_code == 200
    assert editor.get("/admin/users/new").status_code == 403


def test_every_user_action_needs_the_csrf_token(app: App) -> None:
    admin = admin_client(app)
    add_user(app, "jo")
    jo = app.store.users.get("jo")
    for action in ("role", "password", "unlock", "totp-reset", "remove"):
        answer = admin.post(
            f"/admin/users/{jo.id}",
            data={"action": action, "role": "admin", "confirm": "yes"},
            follow_redirects=False,
        )
        assert answer.status_code == 403, action
    answer = admin.post(
        "/admin/users/new",
        data={"name": "sam", "role": "admin", "password": PASSWORD, "again": PASSWORD},
    )
    assert answer.status_code == 403
    assert app.store.users.find("sam") is None and app.store.users.get("jo").role is Role.EDITOR


# -- the list and adding --------------------------------------------------------------


def test_the_list_shows_role_two_step_locks_and_last_sign_in(app: App, clock: ManualClock) -> None:
    admin = admin_client(app)
    add_user(app, "jo")
    stranger = TestClient(create_app(app), base_url=BASE, client=("203.0.113.4", 5000))
    for _ in range(ACCOUNT_FAILURES.limit):
        post_login(stranger, "jo", "wrong password here")
    page = admin.get("/admin/users").text
    row = re.search(r"<tr>\s*<td><a[^>]*>jo</a></td>(.*?)</tr>", page, re.S)
    assert row is not None
    cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
    assert cells == ["editor", "off", "locked", "never"]
    ada = re.search(r"<tr>\s*<td><a[^>]*>ada</a></td>(.*?)</tr>", page, re.S)
    assert ada is not None and "never" not in ada.group(1) and "admin" in ada.group(1)


def test_an_admin_adds_a_user_who_then_signs_in(app: App) -> None:
    admin = admin_client(app)
    form = {"csrf": csrf_of(admin), "name": "sam", "role": "editor"}
    answer = admin.post("/admin/users/new", data={**form, "password": PASSWORD, "again": PASSWORD})
    assert answer.status_code == 200 and "Added sam" in answer.text
    assert app.store.users.get("sam").password_hash.startswith("$argon2id$")
    signed_in(new_client(app), "sam")
    entry = app.store.audit.recent()[1]
    assert (entry.actor, entry.action, entry.target, entry.after) == (
        "ada",
        "user-add",
        "user sam",
        {"role": "editor"},
    )


def test_adding_says_what_is_wrong_with_each_field(app: App) -> None:
    admin = admin_client(app)
    answer = admin.post(
        "/admin/users/new",
        data={
            "csrf": csrf_of(admin),
            "name": "two words",
            "role": "owner",
            "password": "short",
            "again": "shorter",
        },
    )
    assert answer.status_code == 400
    for words in ("without spaces", "Choose editor or admin", "differ"):
        assert words in answer.text
    taken = admin.post(
        "/admin/users/new",
        data={
            "csrf": csrf_of(admin),
            "name": "ada",
            "role": "editor",
            "password": PASSWORD,
            "again": PASSWORD,
        },
    )
    assert taken.status_code == 400 and "already a user called ada" in taken.text
    weak = admin.post(
        "/admin/users/new",
        data={
            "csrf": csrf_of(admin),
            "name": "sam",
            "role": "editor",
            "password": "short",
            "again": "short",
        },
    )
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    assert app.store.users.find("sam") is None


# -- one user -------------------------------------------------------------------------


def test_changing_a_role_applies_at_once_and_is_audited(app: App) -> None:
    admin = admin_client(app)
    add_user(app, "jo")
    jo_client = signed_in(new_client(app), "jo")
    assert jo_client.get("/admin/users").status_code == 403
    status, text = act(admin, app.store.users.get("jo").id, "role", role="admin")
    assert status == 200 and "jo is now an admin" in text
    assert jo_client.get("/admin/users").status_code == 200
    entry = app.store.audit.recent()[0]
    assert (entry.action, entry.before, entry.after) == (
        "user-role",
        {"role": "editor"},
        {"role": "admin"},
    )


def test_nobody_demotes_or_removes_themselves_and_the_page_says_why(app: App) -> None:
    admin = admin_client(app)
    add_user(app, "root", Role.ADMIN)  # not the last admin: only "yourself" stops it
    me = app.store.users.get("ada")
    page = admin.get(f"/admin/users/{me.id}").text
    assert "cannot change your own role" in page and "cannot remove yourself" in page
    status, text = act(admin, me.id, "role", role="editor")
    assert status == 400 and "cannot change your own role" in text
    status, text = act(admin, me.id, "remove", confirm="yes")
    assert status == 400 and "cannot remove yourself" in text
    assert app.store.users.get("ada").role is Role.ADMIN


def test_the_last_admin_is_never_removed_or_demoted(app: App) -> None:
    """In the console the last admin is always yourself (refused above); the store
    holds the rule too, inside the change's transaction, so that two admins demoting
    each other at once, or a script, still leave one."""
    add_user(app, "ada", Role.ADMIN)
    add_user(app, "bea", Role.ADMIN)
    ada = signed_in(new_client(app), "ada")
    assert act(ada, app.store.users.get("bea").id, "role", role="editor")[0] == 200
    for change in (
        lambda: app.store.users.set_role("ada", Role.EDITOR),
        lambda: app.store.users.remove("ada"),
    ):
        try:
            change()
        except LastAdmin as exc:
            assert "would leave no admin" in str(exc) and "make another user an admin" in str(exc)
        else:
            raise AssertionError("the last admin was demoted or removed")
    assert app.store.users.get("ada").role is Role.ADMIN
    app.store.users.remove("bea")  # an editor goes whatever the count


def test_alerts_users_remove_refuses_the_last_admin(run_cli: Callable[..., Result]) -> None:
    for name, role in (("ada", "admin"), ("jo", "editor")):
        run_cli("users", "add", name, "--role", role, "--password-stdin", input=PASSWORD + "\n")
    result = run_cli("users", "remove", "ada")
    assert result.exit_code != 0 and "would leave no admin" in result.output
    assert run_cli("users", "remove", "jo").exit_code == 0
    assert '"name": "ada"' in run_cli("users", "list", "--json").output


def test_setting_a_password_ends_that_users_sign_ins_at_once(app: App) -> None:
    admin = admin_client(app)
    add_user(app, "jo")
    jo_client = signed_in(new_client(app), "jo")
    status, text = act(
        admin, app.store.users.get("jo").id, "password", password=NEW_PASSWORD, again=NEW_PASSWORD
    )
    assert status == 200 and "their sign-ins have ended" in text
    assert jo_client.get("/admin", follow_redirects=False).status_code == 303
    assert post_login(new_client(app), "jo", PASSWORD)[0] == 401
    signed_in(new_client(app), "jo", NEW_PASSWORD)
    entry = next(e for e in app.store.audit.recent() if e.action == "user-passwd")
    assert entry.actor == "ada" and entry.after == {"sign_ins_ended": 1}
    assert NEW_PASSWORD not in repr(app.store.audit.recent())


def test_removing_a_user_ends_their_sign_ins_at_once(app: App) -> None:
    admin = admin_client(app)
    add_user(app, "jo")
    jo_client = signed_in(new_client(app), "jo")
    jo_id = app.store.users.get("jo").id
    status, text = act(admin, jo_id, "remove")
    assert status == 400 and "Tick the box" in text and app.store.users.find("jo")
    status, text = act(admin, jo_id, "remove", confirm="yes")
    assert status == 200 and "Removed jo" in text
    assert jo_client.get("/admin", follow_redirects=False).status_code == 303
    assert app.store.users.find("jo") is None
    entry = app.store.audit.recent()[0]
    assert (entry.actor, entry.action, entry.before) == (
        "ada",
        "user-remove",
        {"role": "editor", "two_step": False},
    )
    assert admin.get(f"/admin/users/{jo_id}").status_code == 404


def test_an_admin_lifts_the_locks_on_a_user(app: App) -> None:
    admin = admin_client(app)
    add_user(app, "jo")
    jo_client = new_client(app)
    for _ in range(ACCOUNT_FAILURES.limit):
        post_login(jo_client, "jo", "wrong password here")
    assert post_login(jo_client, "jo", PASSWORD)[0] == 401
    status, text = act(admin, app.store.users.get("jo").id, "unlock")
    assert status == 200 and "Lifted the sign-in locks on jo" in text
    assert post_login(jo_client, "jo", PASSWORD)[0] == 303
    assert app.store.audit.recent()[1].after == {"locks": 1}


def test_changing_your_own_password_keeps_this_browser_and_ends_the_others(app: App) -> None:
    add_user(app, "jo")
    here = signed_in(new_client(app), "jo")
    elsewhere = signed_in(new_client(app), "jo")
    answer = here.post(
        "/admin/account",
        data={
            "csrf": csrf_of(here),
            "action": "password",
            "current": PASSWORD,
            "new": NEW_PASSWORD,
            "again": NEW_PASSWORD,
        },
    )
    assert answer.status_code == 200 and "Your password is changed" in answer.text
    assert here.get("/admin").status_code == 200
    assert elsewhere.get("/admin", follow_redirects=False).status_code == 303
    wrong = here.post(
        "/admin/account",
        data={
            "csrf": csrf_of(here),
            "action": "password",
            "current": "not my password",
            "new": NEW_PASSWORD,
            "again": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 400 and "current password is not right" in wrong.text
