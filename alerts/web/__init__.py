"""The web app (Starlette): the public archive and feeds, and the subscription pages.

Routes live with their concern: ``alerts.web.archive`` (archive pages, feeds) and
``alerts.web.subscriptions`` (subscribe, confirm, manage, unsubscribe). Stage errors
become a page with the next step here, never a traceback.
"""

from __future__ import annotations

from starlette.applications import Starlette

from alerts.app import App
from alerts.web import archive, pages, subscriptions


def create_app(app: App) -> Starlette:
    """The ASGI app for one configuration."""
    web = Starlette(
        routes=[*archive.routes(app), *subscriptions.routes(app)],
        # A friendly page naming the next step, never a bare "Not Found" or a traceback.
        exception_handlers={404: pages.http_error, 405: pages.http_error, 500: pages.http_error},
    )
    web.state.app = app
    return web
