"""Writing an advisory in the console: compose, preview (the sanitised rendering
residents get, the area decision with its words, and how many it reaches, by
frequency), then send.

Each advisory begins with a new draft number, which gives it its own address
(``/advisories/new/<draft>``), so a new advisory never replaces another; sending the
same draft twice stores it once. Sending reads the advisory through the advisory file
parser and stores it as ingest does, then queues the immediate (and, when urgent, the
urgent) alerts as a pipeline run does, which wakes the senders at once.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from alerts.app import App
from alerts.cli.advisories import names
from alerts.digest import queue_digests
from alerts.errors import AdvisoryError, NotFound
from alerts.ingest.batch import store_advisory
from alerts.store.users import Session
from alerts.tagging import explain
from alerts.types import Frequency
from alerts.web.admin.email_preview import render_email
from alerts.web.admin.forms import DRAFT, NEW_PATH, Compose, count_reach
from alerts.web.admin.guard import PREFIX, console_render, console_route, form_of
from alerts.web.pages import web_app


def routes() -> list[Route]:
    return [
        console_route(
            PREFIX + "/compose", compose_page, methods=["GET", "POST"], name="admin_compose"
        ),
        # Public: the address an advisory written in the console carries (in its email
        # and feeds) leads to its archive page.
        Route(NEW_PATH + "{draft}", published, name="console_advisory"),
    ]


def _already_sent(app: App, compose: Compose) -> int | None:
    try:
        return app.store.advisories.get(compose.url(app.config.site.base_url)).id
    except NotFound:
        return None


async def compose_page(request: Request, session: Session) -> Response:
    app = web_app(request)
    if request.method in ("GET", "HEAD"):
        return _form(request, session, Compose(draft=uuid.uuid4().hex))
    form = form_of(request)
    compose = Compose.from_form(form, app.gazetteer)
    action = form.get("action")
    if compose.errors or action == "change":
        return _form(request, session, compose, status=400 if compose.errors else 200)
    now = app.now()
    try:
        parsed = compose.parse(
            app.config.site, app.config.tz, app.gazetteer, now, session.user.name
        )
    except AdvisoryError:
        return _form(request, session, compose, status=400)
    item = parsed.advisory
    areas = item.decision.areas if item.decision else frozenset(compose.slugs)
    if action == "email":
        html = await asyncio.to_thread(
            render_email, app.config.mail, app.config.digests, app.gazetteer, item, areas, now
        )
        return HTMLResponse(html)
    if action != "send":
        reach = await asyncio.to_thread(
            count_reach, app.store, app.gazetteer, areas, compose.priority == "urgent"
        )
        sent = await asyncio.to_thread(_already_sent, app, compose)
        context = {
            "compose": compose,
            "item": item,
            "why": explain(item.decision, app.gazetteer) if item.decision else [],
            "reach": reach,
            "reach_names": names(app, areas) or "nobody (outside coverage)",
            "warnings": parsed.warnings,
            "already": sent,
        }
        return console_render(request, session, "admin/preview.html", context)

    def send() -> tuple[int, int]:
        result = store_advisory(item, app.store, app.gazetteer, now)
        try:
            report = queue_digests(
                app.config.mail,
                app.config.digests,
                app.store,
                app.gazetteer,
                Frequency.IMMEDIATE,
                now=now,
            )
        except IntegrityError:
            # 'alerts serve' queued the same messages at the same moment: the outbox's
            # one row per (subscriber, message) refused ours, so nobody gets it twice.
            return result.advisory_id, 0
        return result.advisory_id, report.messages

    advisory_id, queued = await asyncio.to_thread(send)
    await asyncio.to_thread(
        app.store.audit.record,
        session.user.name,
        "compose-send",
        now,
        target=f"advisory {advisory_id}",
        after={
            "title": compose.title,
            "areas": sorted(areas),
            "priority": compose.priority,
            "url": compose.url(app.config.site.base_url),
            "queued": queued,
        },
    )
    return RedirectResponse(f"{PREFIX}/advisories/{advisory_id}?queued={queued}", status_code=303)


def _form(request: Request, session: Session, compose: Compose, *, status: int = 200) -> Response:
    app = web_app(request)
    areas = [node for node in app.gazetteer.feed_areas()]
    return console_render(
        request,
        session,
        "admin/compose.html",
        {"compose": compose, "area_names": areas},
        status=status,
    )


async def published(request: Request) -> Response:
    app = web_app(request)
    draft = request.path_params["draft"]
    if not DRAFT.match(draft):
        return RedirectResponse("/", status_code=303)
    try:
        item = await asyncio.to_thread(
            app.store.advisories.get, f"{app.config.site.base_url}{NEW_PATH}{draft}"
        )
    except NotFound:
        return RedirectResponse("/", status_code=303)
    return RedirectResponse(f"/advisories/{item.id}", status_code=308)
