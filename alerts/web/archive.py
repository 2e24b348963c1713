"""Public archive pages and feeds. (Filled in by the feeds work.)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from alerts.app import App


def routes(app: App) -> list[BaseRoute]:
    return []
