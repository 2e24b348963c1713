"""Subscribe, confirm, manage and unsubscribe pages. (Filled in by the digests work.)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from alerts.app import App


def routes(app: App) -> list[BaseRoute]:
    return []
