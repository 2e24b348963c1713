"""``/admin/account``: your own account. Set up two-step sign-in (a secret shown once,
as text, as an ``otpauth://`` address and as a QR code; it takes effect only once a
code made from it is entered), or turn it off with a code; change your password.

Codes entered here are limited per user (:data:`CODE_ATTEMPTS`), and one accepted here
is used up as at sign-in. Secrets never reach the audit log or the server's log.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from alerts.app import App
from alerts.store.limits import Limit
from alerts.store.users import Role, Session, User
from alerts.tokens import load_secret_keys
from alerts.web.admin import passwords, totp
from alerts.web.admin.auth import ATTEMPTS, LIFETIME, set_session_cookie, token_hash
from alerts.web.admin.guard import ENROL, console_render, console_route, form_of
from alerts.web.pages import web_app

#: Codes and current passwords tried on this page, per user.
CODE_ATTEMPTS = Limit(gap=ATTEMPTS.gap, per_window=5, window=ATTEMPTS.window)

MESSAGES = {
    "on": "Two-step sign-in is on: from now on, signing in asks for a code.",
    "off": "Two-step sign-in is off.",
    "password": "Your password is changed; your other sign-ins have ended.",
}


def routes() -> list[Route]:
    return [console_route(ENROL, account_page, methods=["GET", "POST"], name="admin_account")]


def _required(app: App, user: User) -> bool:
    return app.config.console.require_admin_totp and user.role is Role.ADMIN


def _page(
    request: Request,
    session: Session,
    user: User,
    *,
    error: str | None = None,
    error_for: str = "",
    status: int = 200,
) -> Response:
    app = web_app(request)
    setup = None
    if user.totp_pending is not None:
        try:
            secret = totp.decrypt(
                load_secret_keys(app.config.security), user.name, user.totp_pending
            )
        except totp.SecretUnreadable:
            # Made under a signing key since dropped: a new setup replaces it.
            return _page(
                request,
                session,
                replace(user, totp_pending=None),
                error=error,
                error_for=error_for,
                status=status,
            )
        uri = totp.provisioning_uri(secret, user.name, app.config.site.name)
        # Groups of four, as authenticator apps show and people type them.
        spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        setup = {"secret": spaced, "uri": uri, "qr": totp.qr_svg(uri)}
    return console_render(
        request,
        session,
        "admin/account.html",
        {
            "me": user,
            "setup": setup,
            "required": _required(app, user),
            "error": error,
            "error_for": error_for,
            "done": MESSAGES.get(request.query_params.get("done", "")),
            "min_length": passwords.MIN_LENGTH,
        },
        status=status,
    )


async def account_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    user = await asyncio.to_thread(app.store.users.get, session.user.name)
    if request.method in ("GET", "HEAD"):
        return _page(request, session, user)
    form = form_of(request)
    action = form.get("action")
    if action == "password":
        return await _change_password(request, session, user)
    if action == "start" and not user.totp_on:

        def begin() -> User:
            # The key may be read from its file: off the event loop, with the writes.
            encrypted = totp.encrypt(
                load_secret_keys(app.config.security), user.name, totp.new_secret()
            )
            app.store.audit.record(user.name, "totp-setup", app.now(), target=f"user {user.name}")
            return app.store.users.totp_begin(user.name, encrypted)

        return _page(request, session, await asyncio.to_thread(begin))
    if action in ("confirm", "off"):
        code = form.get("code")
        return await asyncio.to_thread(
            _with_code, request, session, user, str(action), code if isinstance(code, str) else ""
        )
    return _page(request, session, user, error="Choose one of the buttons.", status=400)


def _with_code(request: Request, session: Session, user: User, action: str, code: str) -> Response:
    """Confirm a new secret, or turn two-step sign-in off, with a code (in a thread)."""
    app = web_app(request)
    store, now = app.store, app.now()
    if action == "off" and not user.totp_on:
        return _page(request, session, user, error="Two-step sign-in is already off.", status=400)
    if action == "off" and _required(app, user):
        return _page(request, session, user, error="Admins must keep it on here.", status=400)
    if action == "confirm" and user.totp_pending is None:
        return _page(request, session, user, error="Start the setup first.", status=400)
    if not store.limits.take(f"console-account-code:{user.id}", CODE_ATTEMPTS, now):
        return _page(
            request,
            session,
            user,
            error="Too many codes tried. Wait a minute, then try again.",
            error_for="code",
            status=429,
        )
    stored = user.totp_pending if action == "confirm" else user.totp_secret
    assert stored is not None  # checked above
    try:
        step = totp.matching_step(
            totp.decrypt(load_secret_keys(app.config.security), user.name, stored), code, now
        )
    except totp.SecretUnreadable as exc:
        return _page(request, session, user, error=str(exc), error_for="code", status=400)
    if step is None or (action == "off" and not store.users.use_totp_step(user, step)):
        return _page(
            request,
            session,
            user,
            error="That code is not right. Enter the newest code your authenticator app shows.",
            error_for="code",
            status=400,
        )
    if action == "confirm":
        store.users.totp_confirm(user.name, step)
        store.audit.record(
            user.name,
            "totp-on",
            now,
            target=f"user {user.name}",
            before={"two_step": False},
            after={"two_step": True},
        )
    else:
        store.users.totp_reset(user.name)
        store.audit.record(
            user.name,
            "totp-off",
            now,
            target=f"user {user.name}",
            before={"two_step": True},
            after={"two_step": False},
        )
    return RedirectResponse(f"{ENROL}?done={'on' if action == 'confirm' else 'off'}", 303)


async def _change_password(request: Request, session: Session, user: User) -> Response:
    """The current password, then the new one twice. Every other sign-in ends; this
    browser gets a fresh session."""
    app = web_app(request)
    form = form_of(request)
    current, new, again = (form.get(key) for key in ("current", "new", "again"))
    if not all(isinstance(value, str) and value for value in (current, new, again)):
        return _page(
            request, session, user, error="Fill in all three.", error_for="password", status=400
        )
    assert isinstance(current, str) and isinstance(new, str) and isinstance(again, str)
    problem = passwords.problem(new, again)
    if not await asyncio.to_thread(
        app.store.limits.take, f"console-account-code:{user.id}", CODE_ATTEMPTS, app.now()
    ):
        problem = "Too many attempts. Wait a minute, then try again."
    if problem is not None:
        return _page(request, session, user, error=problem, error_for="password", status=400)
    try:
        right, _ = await passwords.verify_in_pool(user.password_hash, current)
        if not right:
            return _page(
                request,
                session,
                user,
                error="Your current password is not right.",
                error_for="password",
                status=400,
            )
        hashed = await passwords.hash_in_pool(new)
    except passwords.Busy:
        return _page(
            request,
            session,
            user,
            error="The console is busy. Wait a few seconds, then try again.",
            error_for="password",
            status=429,
        )
    token = secrets.token_urlsafe(32)

    def change() -> None:
        store, now = app.store, app.now()
        changed = store.users.set_password(user.name, hashed, now)
        store.users.start_session(
            changed, token_hash(token), secrets.token_urlsafe(32), now, LIFETIME
        )
        store.audit.record(user.name, "user-passwd", now, target=f"user {user.name}")

    await asyncio.to_thread(change)
    response = RedirectResponse(f"{ENROL}?done=password", 303)
    set_session_cookie(app, response, token)
    return response
