"""The editor's pages: the inbox (every advisory with whom it reaches and why, and
what holds it), one advisory with its retag, hold and release forms, and the outbox totals."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from alerts.app import App
from alerts.cli.advisories import explain_areas, names
from alerts.errors import NotFound, UnknownArea
from alerts.store.users import Session
from alerts.types import Advisory, Hold
from alerts.web.admin.forms import parse_areas
from alerts.web.admin.guard import PREFIX, console_render, console_route, form_of
from alerts.web.admin.holds import hold_notes
from alerts.web.pages import web_app

INBOX_SIZE = 100


def routes() -> list[Route]:
    return [
        console_route(PREFIX, inbox, name="admin_inbox"),
        console_route(PREFIX + "/advisories/{advisory_id:int}", advisory, name="admin_advisory"),
        console_route(
            PREFIX + "/advisories/{advisory_id:int}/retag",
            retag,
            methods=["POST"],
            name="admin_retag",
        ),
        console_route(PREFIX + "/outbox", outbox, name="admin_outbox"),
    ]


def warnings_of(app: App, item: Advisory) -> list[str]:
    """What an editor should look at before anyone is mailed (data, not prose: each
    comes from a field of the decision)."""
    decision = item.decision
    found: list[str] = []
    if item.outside_coverage:
        found.append("Outside coverage: stored, never mailed, in no feed.")
    if decision is not None:
        if decision.unknown:
            found.append(
                "Declares an area the gazetteer does not know: " + ", ".join(decision.unknown) + "."
            )
        if decision.no_place:
            found.append("Names no place: it goes to the whole force.")
    if item.area_override is not None:
        found.append("Retagged by hand: the area rule no longer decides.")
    return found


def summary(app: App, item: Advisory) -> dict[str, Any]:
    return {
        "item": item,
        "reach": names(app, item.areas) or "nobody (outside coverage)",
        "why": explain_areas(app, item),
        "warnings": warnings_of(app, item),
        "holds": hold_notes(app, item),
    }


async def inbox(request: Request, session: Session) -> Response:
    app = web_app(request)
    items = await asyncio.to_thread(
        app.store.advisories.find, limit=INBOX_SIZE, include_outside=True
    )
    rows = [summary(app, item) for item in items]
    # What waits for a person comes first, however old (review:, alerts.ingest.review).
    waiting = await asyncio.to_thread(app.store.holds.waiting, Hold.REVIEW)
    return console_render(
        request,
        session,
        "admin/inbox.html",
        {"rows": rows, "waiting": waiting, "sent": request.query_params.get("sent")},
    )


async def advisory(request: Request, session: Session) -> Response:
    app = web_app(request)
    try:
        item = await asyncio.to_thread(app.store.advisories.get, request.path_params["advisory_id"])
    except NotFound:
        return console_render(
            request,
            session,
            "admin/refused.html",
            {"title": "No such advisory", "hint": "Go back to the inbox."},
            status=404,
        )
    return console_render(
        request,
        session,
        "admin/advisory.html",
        {**summary(app, item), "areas_text": names(app, item.areas), "error": None},
    )


async def retag(request: Request, session: Session) -> Response:
    """The CLI's retag, from a form: the same rule (``store.advisories.retag``) and the
    same record, plus an audit entry with the areas before and after."""
    app = web_app(request)
    form = form_of(request)
    advisory_id = request.path_params["advisory_id"]
    try:
        item = await asyncio.to_thread(app.store.advisories.get, advisory_id)
    except NotFound:
        return console_render(
            request,
            session,
            "admin/refused.html",
            {"title": "No such advisory", "hint": "Go back to the inbox."},
            status=404,
        )
    choice = form.get("reach")
    try:
        if choice == "auto":
            slugs: list[str] | None = None
        elif choice == "outside":
            slugs = []
        else:
            slugs = parse_areas(app.gazetteer, str(form.get("areas", "")))
            if not slugs:
                raise UnknownArea(
                    "name at least one area, or choose 'nobody' or 'as the rule decides'"
                )
    except UnknownArea as exc:
        context = {
            **summary(app, item),
            "areas_text": str(form.get("areas", ""))[:500],
            "error": str(exc),
        }
        return console_render(request, session, "admin/advisory.html", context, status=400)
    now = app.now()
    await asyncio.to_thread(app.store.advisories.retag, item.id, slugs, now)
    after = await asyncio.to_thread(app.store.advisories.get, item.id)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "retag",
        now,
        target=f"advisory {item.id}",
        before={
            "areas": sorted(item.areas),
            "override": None if item.area_override is None else sorted(item.area_override),
        },
        after={
            "areas": sorted(after.areas),
            "override": None if after.area_override is None else sorted(after.area_override),
        },
    )
    return RedirectResponse(f"{PREFIX}/advisories/{item.id}?retagged=1", status_code=303)


async def outbox(request: Request, session: Session) -> Response:
    """The figures ``alerts status`` prints, from the same query."""
    app = web_app(request)
    status = await asyncio.to_thread(app.store.runs.outbox_status)
    counts = await asyncio.to_thread(app.store.subscribers.count)
    return console_render(
        request, session, "admin/outbox.html", {"status": status, "subscribers": counts}
    )
