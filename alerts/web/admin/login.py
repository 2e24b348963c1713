"""``/admin/login`` and ``/admin/login/code`` (the console pages open to all: the
password, then the two-step code when its owner turned that on) and signing out."""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from alerts.store.users import Session
from alerts.web.admin import csrf
from alerts.web.admin.auth import (
    CODE_COOKIE,
    CODE_PATH,
    COOKIE_PATH,
    Outcome,
    awaiting_code,
    check_code,
    current_session,
    set_code_cookie,
    set_session_cookie,
    sign_in,
    sign_out,
)
from alerts.web.admin.guard import PREFIX, console_render, console_route
from alerts.web.pages import web_app

MESSAGES = {
    # The same words whether the name exists or not.
    Outcome.REFUSED: "That name and password do not match. Check them and try again.",
    Outcome.LOCKED: (
        "Too many wrong passwords for this name from here: it is locked here for 15 minutes. "
        "An admin can lift it at once with 'alerts users unlock NAME'."
    ),
    Outcome.SLOWED: "Too many attempts from here. Wait a minute, then try again.",
    Outcome.BUSY: "The console is busy. Wait a few seconds, then try again.",
    Outcome.CODE_REFUSED: (
        "That code is not right, or was used already. Enter the newest code your "
        "authenticator app shows."
    ),
}
EXPIRED = "Signing in took too long. Enter your name and password again."
CODE_PAGE = f"{PREFIX}/login/code"


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/login", login_page, methods=["GET", "POST"], name="admin_login"),
        Route(CODE_PAGE, code_page, methods=["GET", "POST"], name="admin_login_code"),
        console_route(f"{PREFIX}/logout", logout, methods=["POST"], name="admin_logout"),
    ]


def safe_next(value: object) -> str:
    """Only a console path of this site: never another host (an open redirect)."""
    if not isinstance(value, str) or not value.startswith(PREFIX) or value.startswith("//"):
        return PREFIX
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return PREFIX
    return value


async def login_page(request: Request) -> Response:
    app = web_app(request)
    if request.method in ("GET", "HEAD"):
        if await asyncio.to_thread(current_session, request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return _form(request, next_path=safe_next(request.query_params.get("next")))
    form = await request.form()
    next_path = safe_next(form.get("next"))
    if not csrf.same(request.cookies.get(csrf.LOGIN_COOKIE), form.get(csrf.FIELD)):
        return _form(
            request,
            next_path=next_path,
            error="This form had expired. Please sign in again.",
            status=400,
        )
    name, password = form.get("username"), form.get("password")
    if (
        not isinstance(name, str)
        or not isinstance(password, str)
        or not name.strip()
        or not password
    ):
        return _form(
            request, next_path=next_path, error="Enter your name and your password.", status=400
        )
    result = await sign_in(app, request, name, password)
    if result.outcome is Outcome.CODE_DUE and result.token is not None:
        response = RedirectResponse(
            f"{CODE_PAGE}?next={quote(next_path, safe='')}", status_code=303
        )
        set_code_cookie(app, response, result.token)
        return response
    if result.outcome is not Outcome.SIGNED_IN or result.token is None:
        status = 429 if result.outcome in (Outcome.SLOWED, Outcome.BUSY) else 401
        return _form(
            request,
            next_path=next_path,
            error=MESSAGES[result.outcome],
            name=name.strip()[:64],
            status=status,
        )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(app, response, result.token)
    response.delete_cookie(csrf.LOGIN_COOKIE, path=COOKIE_PATH)
    return response


async def code_page(request: Request) -> Response:
    """The second step of signing in: the code from the authenticator app."""
    app = web_app(request)
    pending = await asyncio.to_thread(awaiting_code, request)
    if request.method in ("GET", "HEAD"):
        next_path = safe_next(request.query_params.get("next"))
        if pending is None:
            return RedirectResponse(f"{PREFIX}/login?next={quote(next_path, safe='')}", 303)
        return _code_form(request, pending, next_path=next_path)
    form = await request.form()
    next_path = safe_next(form.get("next"))
    if pending is None:
        return _form(request, next_path=next_path, error=EXPIRED, status=400)
    if not csrf.same(pending.csrf, form.get(csrf.FIELD)):
        return _code_form(request, pending, next_path=next_path, error=EXPIRED, status=400)
    code = form.get("code")
    result = await asyncio.to_thread(
        check_code, app, request, code if isinstance(code, str) else ""
    )
    if result.outcome is Outcome.SIGNED_IN and result.token is not None:
        response = RedirectResponse(next_path, status_code=303)
        set_session_cookie(app, response, result.token)
        response.delete_cookie(CODE_COOKIE, path=CODE_PATH)
        response.delete_cookie(csrf.LOGIN_COOKIE, path=COOKIE_PATH)
        return response
    if result.outcome in (Outcome.LOCKED, Outcome.CODE_EXPIRED):
        error = MESSAGES[Outcome.LOCKED] if result.outcome is Outcome.LOCKED else EXPIRED
        return _form(request, next_path=next_path, error=error, status=401)
    status = 429 if result.outcome in (Outcome.SLOWED, Outcome.BUSY) else 401
    return _code_form(
        request, pending, next_path=next_path, error=MESSAGES[result.outcome], status=status
    )


def _code_form(
    request: Request,
    pending: Session,
    *,
    next_path: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return console_render(
        request,
        None,
        "admin/login_code.html",
        {"next": next_path, "error": error, "code_csrf": pending.csrf},
        status=status,
    )


def _form(
    request: Request, *, next_path: str, error: str | None = None, name: str = "", status: int = 200
) -> Response:
    app = web_app(request)
    token = csrf.login_token(request)
    response = console_render(
        request,
        None,
        "admin/login.html",
        {"next": next_path, "error": error, "name": name, "login_csrf": token},
        status=status,
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=app.config.site.base_url.startswith("https://"),
    )
    return response


async def logout(request: Request, session: Session) -> Response:
    app = web_app(request)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    await asyncio.to_thread(app.store.audit.record, session.user.name, "sign-out", app.now())
    await asyncio.to_thread(sign_out, request, response)
    return response
