"""The one gate every console page goes through (:func:`console_route`), the headers
every console answer carries (:class:`ConsoleHeaders`), and the console's page render.

A page that is not signed in is never shown: a GET is sent to the sign-in page, any
other method refused (403). An editor asking for an admin page is refused (403). Every
POST must carry the session's CSRF token. Only :data:`PUBLIC` paths skip the gate
(the sign-in page itself), and a test walks the route table to hold that. With
``console.require_admin_totp``, an admin without two-step sign-in is sent to set it up
(:data:`ENROL`) before any other page.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.store.users import Role, Session
from alerts.web.admin import csrf
from alerts.web.admin.auth import current_session
from alerts.web.pages import render

PREFIX = "/admin"
PUBLIC = frozenset({"/admin/login", "/admin/login/code"})
#: Where an admin sets up two-step sign-in; with ``console.require_admin_totp`` the only
#: pages (with signing out) an admin without it may open.
ENROL = PREFIX + "/account"
ENROL_OPEN = frozenset({ENROL, PREFIX + "/logout"})

#: No script at all, no plugin, no frame, no foreign form; only the shared layout's
#: inline styles (the site's one stylesheet is inline in base.html).
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]

Endpoint = Callable[[Request, Session], Awaitable[Response]]


class ConsoleHeaders:
    """Every answer under /admin (404s and errors included) is never framed, runs no
    script, and is never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                message["headers"] = [
                    (name, value) for name, value in message.get("headers", []) if name not in names
                ] + HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def console_route(
    path: str,
    endpoint: Endpoint,
    *,
    role: Role = Role.EDITOR,
    methods: list[str] | None = None,
    name: str,
) -> Route:
    """A console page behind the gate: signed in, the ``role`` (admins may do all an
    editor may), and on POST the CSRF token. The endpoint is given the session; a POST
    finds its parsed form in ``request.state.form``."""

    @functools.wraps(endpoint)
    async def gated(request: Request) -> Response:
        session = await asyncio.to_thread(current_session, request)
        if session is None:
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(
                    f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303
                )
            return refuse(request, None, "You are not signed in", "Sign in, then try again.")
        if request.url.path not in ENROL_OPEN and must_enrol(request, session):
            if request.method in ("GET", "HEAD"):
                return RedirectResponse(ENROL, status_code=303)
            return refuse(request, session, "Set up two-step sign-in first", "Open Your account.")
        if role is Role.ADMIN and session.user.role is not Role.ADMIN:
            return refuse(
                request, session, "Only an admin may open this page", "Ask an admin if you need it."
            )
        if request.method == "POST":
            form = await request.form()
            if not csrf.same(session.csrf, form.get(csrf.FIELD)):
                return refuse(
                    request,
                    session,
                    "This form has expired",
                    "Go back, reload the page and try again.",
                )
            request.state.form = form
        return await endpoint(request, session)

    # For the test that walks the route table: which role this route asks for.
    gated.console_role = role  # type: ignore[attr-defined]
    return Route(path, gated, methods=methods or ["GET"], name=name)


def must_enrol(request: Request, session: Session) -> bool:
    """An admin without two-step sign-in, where the config requires it of admins."""
    required: bool = request.app.state.app.config.console.require_admin_totp
    return required and session.user.role is Role.ADMIN and not session.user.totp_on


def form_of(request: Request) -> FormData:
    form: FormData = request.state.form
    return form


def refuse(request: Request, session: Session | None, title: str, hint: str) -> Response:
    return console_render(
        request, session, "admin/refused.html", {"title": title, "hint": hint}, status=403
    )


def console_render(
    request: Request,
    session: Session | None,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> Response:
    """Render ``admin/<name>`` with who is signed in and their CSRF token."""
    return render(
        request,
        name,
        {
            "user": session.user if session else None,
            "is_admin": bool(session and session.user.role is Role.ADMIN),
            "csrf_token": session.csrf if session else "",
            "feed_slug": None,
            **(context or {}),
        },
        status=status,
    )
