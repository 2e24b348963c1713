"""For the machines that watch the service: ``/metrics`` (Prometheus text, computed
from the database) and ``/healthz`` (for load balancers: the database answers and
``alerts serve``'s heartbeat is fresh). Neither says anything about subscribers; both
name folders and feed URLs, so keep them to the monitoring network at the proxy.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alerts.metrics import CONTENT_TYPE, render_metrics
from alerts.store.runs import HEARTBEAT_FRESH
from alerts.web.pages import web_app

NO_CACHE = {"Cache-Control": "no-store"}


def routes() -> list[BaseRoute]:
    return [
        Route("/metrics", metrics, name="metrics"),
        Route("/healthz", healthz, name="healthz"),
    ]


async def metrics(request: Request) -> Response:
    app = web_app(request)
    # Database reads: off the event loop, so a slow database does not stall the pages.
    try:
        body = await asyncio.to_thread(render_metrics, app.store, app.now)
    except SQLAlchemyError as exc:
        return Response(
            f"database unavailable: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}\n",
            status_code=503,
            media_type="text/plain",
            headers=NO_CACHE,
        )
    return Response(body, media_type=CONTENT_TYPE, headers=NO_CACHE)


async def healthz(request: Request) -> Response:
    app = web_app(request)

    def check() -> tuple[bool, dict[str, object]]:
        try:
            app.store.ping()
            beat = app.store.runs.last_beat()
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            return False, {"database": f"unavailable: {detail}", "scheduler": "unknown"}
        if beat is None:
            return False, {"database": "ok", "scheduler": "never ran: start 'alerts serve'"}
        age = (app.now() - beat[0]).total_seconds()
        fresh = age <= HEARTBEAT_FRESH.total_seconds()
        return fresh, {
            "database": "ok",
            "scheduler": "ok"
            if fresh
            else f"no heartbeat for {age:.0f} s: is 'alerts serve' running?",
            "heartbeat": beat[0].isoformat(),
            "heartbeat_age_seconds": round(age, 1),
            "scheduler_host": beat[1].get("host"),
            "scheduler_pid": beat[1].get("pid"),
        }

    healthy, body = await asyncio.to_thread(check)
    return JSONResponse(
        {"ok": healthy, **body}, status_code=200 if healthy else 503, headers=NO_CACHE
    )
