"""For the machines that watch the service: ``/metrics`` (Prometheus text, computed
from the database) and ``/healthz`` (for load balancers: the database answers and
``alerts serve``'s heartbeat is fresh). Neither says anything about subscribers, names a
source other than by its configured name, nor (unless ``monitoring.healthz_details``) the
scheduler's host and pid or the database's error; still, keep them to the monitoring
network at the proxy.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alerts.errors import AlertsError
from alerts.metrics import CONTENT_TYPE, render_metrics
from alerts.store.runs import HEARTBEAT_FRESH
from alerts.web.pages import web_app

NO_CACHE = {"Cache-Control": "no-store"}
log = logging.getLogger(__name__)


def routes() -> list[BaseRoute]:
    return [
        Route("/metrics", metrics, name="metrics"),
        Route("/healthz", healthz, name="healthz"),
    ]


async def metrics(request: Request) -> Response:
    app = web_app(request)
    # Database reads: off the event loop, so a slow database does not stall the pages.
    try:
        names = [source.label for source in app.config.sources]
        body = await asyncio.to_thread(render_metrics, app.store, app.now, names)
    except SQLAlchemyError as exc:
        # The error names the database's host and user: the log has it, the scraper need not.
        log.warning("/metrics: database unavailable: %s", _first_line(exc))
        return Response(
            "database unavailable\n",
            status_code=503,
            media_type="text/plain",
            headers=NO_CACHE,
        )
    return Response(body, media_type=CONTENT_TYPE, headers=NO_CACHE)


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


async def healthz(request: Request) -> Response:
    app = web_app(request)
    details = app.config.monitoring.healthz_details

    def check() -> tuple[bool, dict[str, object]]:
        try:
            app.store.ping()
            beat = app.store.runs.last_beat()
        except (SQLAlchemyError, AlertsError) as exc:
            log.warning("/healthz: database unavailable: %s", _first_line(exc))
            return False, {
                "database": f"unavailable: {_first_line(exc)}" if details else "unavailable",
                "scheduler": "unknown",
            }
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
            **(
                {"scheduler_host": beat[1].get("host"), "scheduler_pid": beat[1].get("pid")}
                if details
                else {}
            ),
        }

    healthy, body = await asyncio.to_thread(check)
    return JSONResponse(
        {"ok": healthy, **body}, status_code=200 if healthy else 503, headers=NO_CACHE
    )
