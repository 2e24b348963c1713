"""Helpers for the console tests: an app with a console user, and signing in through
the login form as a browser would (its own hidden fields posted back)."""

from __future__ import annotations

import re
from html import unescape

from starlette.testclient import TestClient

from alerts.app import App
from alerts.store.users import Role
from alerts.web.admin.passwords import hash_password

PASSWORD = "correct horse battery staple"
BASE = "https://alerts.example.org"


def add_user(app: App, name: str, role: Role = Role.EDITOR, password: str = PASSWORD) -> None:
    app.store.users.add(name, role, hash_password(password), app.now())


def hidden_fields(html: str) -> dict[str, str]:
    return {
        name: unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    }


def post_login(
    client: TestClient, name: str, password: str, *, next_path: str = ""
) -> tuple[int, str, dict[str, str]]:
    """Open the login page, post its form back with ``name`` and ``password``; returns
    the status, the body and the headers of the answer (redirects not followed)."""
    page = client.get("/admin/login" + (f"?next={next_path}" if next_path else ""))
    assert page.status_code == 200
    form = {**hidden_fields(page.text), "username": name, "password": password}
    answer = client.post("/admin/login", data=form, follow_redirects=False)
    return answer.status_code, answer.text, dict(answer.headers)


def signed_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    status = post_login(client, name, password)[0]
    assert status == 303, f"sign-in as {name} refused"
    return client


def csrf_of(client: TestClient, path: str = "/admin") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return hidden_fields(page.text)["csrf"]
