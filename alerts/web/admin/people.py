"""The admin's pages: console users, subscribers (found by address, masked in lists),
exporting and erasing a subscriber's data, and the audit log."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alerts.store.users import Role, Session
from alerts.web.admin.guard import PREFIX, console_render, console_route, form_of
from alerts.web.pages import web_app

ADMIN = Role.ADMIN
MAX_ADDRESS = 320


def routes() -> list[Route]:
    return [
        console_route(PREFIX + "/users", users_page, role=ADMIN, name="admin_users"),
        console_route(PREFIX + "/audit", audit_page, role=ADMIN, name="admin_audit"),
        console_route(
            PREFIX + "/subscribers",
            subscribers_page,
            role=ADMIN,
            methods=["GET", "POST"],
            name="admin_subscribers",
        ),
        console_route(
            PREFIX + "/subscribers/erase",
            erase_page,
            role=ADMIN,
            methods=["GET", "POST"],
            name="admin_erase",
        ),
    ]


def mask(email: str) -> str:
    """``jane.doe@example.org`` -> ``j…e@example.org``: enough to tell two apart in a list."""
    local, _, domain = email.partition("@")
    shown = local[0] + "…" + local[-1] if len(local) > 2 else local[:1] + "…"
    return f"{shown}@{domain}"


def _address(request: Request) -> str:
    value = form_of(request).get("email")
    return value.strip()[:MAX_ADDRESS] if isinstance(value, str) else ""


async def users_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    people = await asyncio.to_thread(app.store.users.list)
    return console_render(request, session, "admin/users.html", {"people": people})


async def audit_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    entries = await asyncio.to_thread(app.store.audit.recent, 200)
    return console_render(request, session, "admin/audit.html", {"entries": entries})


async def subscribers_page(request: Request, session: Session) -> Response:
    """GET: the counts by status. POST (a search): the subscriber with that address,
    and their data on request ("export")."""
    app = web_app(request)
    counts = await asyncio.to_thread(app.store.subscribers.count)
    context: dict[str, object] = {"counts": counts, "found": None, "export": None, "email": ""}
    if request.method == "POST":
        email = _address(request)
        found = await asyncio.to_thread(app.store.subscribers.find, email) if email else None
        context.update(
            email=email, found=found, searched=True, masked=mask(email) if "@" in email else ""
        )
        if found is not None and form_of(request).get("action") == "export":
            data = await asyncio.to_thread(
                app.store.retention.export_data, app.config.security, email
            )
            context["export"] = json.dumps(data, indent=2, ensure_ascii=False, default=str)
            await asyncio.to_thread(
                app.store.audit.record,
                session.user.name,
                "subscriber-export",
                app.now(),
                target=f"subscriber {found.id}",
            )
    return console_render(
        request, session, "admin/subscribers.html", {"searched": False, **context}
    )


async def erase_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    if request.method in ("GET", "HEAD"):
        return console_render(
            request, session, "admin/erase.html", {"done": None, "email": "", "error": None}
        )
    email = _address(request)
    if "@" not in email or form_of(request).get("confirm") != "yes":
        error = "Enter the address, and tick the box to confirm."
        return console_render(
            request,
            session,
            "admin/erase.html",
            {"done": None, "email": email, "error": error},
            status=400,
        )
    found = await asyncio.to_thread(app.store.subscribers.find, email)
    removed = await asyncio.to_thread(
        app.store.retention.erase, app.config.security, email, app.now()
    )
    # Only the subscriber's id (when there was one) and a masked form: the log keeps
    # nothing that would undo the erasure.
    target = f"subscriber {found.id}" if found is not None else f"address {mask(email)}"
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "subscriber-erase",
        app.now(),
        target=target,
        after={"removed": removed},
    )
    return console_render(
        request,
        session,
        "admin/erase.html",
        {"done": removed, "email": "", "error": None, "masked": mask(email)},
    )
