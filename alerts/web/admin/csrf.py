"""CSRF tokens for every console form.

Signed-in forms carry the session's own random token (kept in its row); the sign-in
form, which has no session yet, carries a random token that must equal the one in a
short-lived cookie (double submit). Both compared in constant time. SameSite=Strict
cookies are the first line; the tokens are the second, for browsers that ignore it.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

FIELD = "csrf"
LOGIN_COOKIE = "alerts_console_login"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same(expected: str | None, given: object) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(str(expected), given)


def login_token(request: Request) -> str:
    """The sign-in form's token: the one its cookie already holds, or a new one."""
    held = request.cookies.get(LOGIN_COOKIE, "")
    return held if 20 <= len(held) <= 100 else new_token()
