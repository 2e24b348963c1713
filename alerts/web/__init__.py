"""The web app (Starlette): the public archive and feeds, and the subscription pages.

Routes live with their concern: ``alerts.web.archive`` (archive pages, feeds) and
``alerts.web.subscriptions`` (subscribe, confirm, manage, unsubscribe). Stage errors
become a page with the next step here, never a traceback. Every request first passes
the guards in ``alerts.web.guards`` (a bounded body, the host of ``site.base_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from alerts.app import App
from alerts.feeds.model import FORMATS
from alerts.store.runs import HEARTBEAT_FRESH
from alerts.web import admin, archive, ops, pages, privacy, subscriptions, undo
from alerts.web.archive import GZIP_MIN
from alerts.web.form_work import FormWork
from alerts.web.guards import BodyLimit, CanonicalHost, redact_access_log
from alerts.web.sending import ConsoleSends


def create_app(
    app: App, *, sends_mail: bool = False, console_sends: ConsoleSends | None = None
) -> Starlette:
    """The ASGI app for one configuration. ``sends_mail``: this process sends the
    confirmations itself (``alerts web`` does, unless ``--no-send``); otherwise pages
    say mail is on its way only while ``alerts serve``'s heartbeat is fresh.
    ``console_sends``: told when the console queues alerts (this process's sender,
    :func:`alerts.web.sending.web_sender`, then sends them too).

    Its lifespan starts the worker that does the forms' work off the connection
    (:mod:`alerts.web.form_work`) and, when the server stops, lets it finish what is
    queued. A server that runs no lifespan (Starlette's TestClient outside a ``with``
    block) gets the work done after each answer on its own connection instead."""
    redact_access_log()
    form_work = FormWork()

    @contextlib.asynccontextmanager
    async def lifespan(_web: Starlette) -> AsyncIterator[None]:
        form_work.start()
        try:
            yield
        finally:
            await asyncio.to_thread(form_work.stop)

    web = Starlette(
        routes=[
            *ops.routes(),
            *archive.routes(app),
            *subscriptions.routes(app),
            *undo.routes(app),
            *privacy.routes(app),
            *admin.routes(),
        ],
        middleware=[
            Middleware(BodyLimit),
            # The console's pages are never framed, cached or given a script to run.
            Middleware(admin.ConsoleHeaders),
            Middleware(CanonicalHost, base_url=app.config.site.base_url),
            # Pages compress about 5:1. Feeds are gzipped by feed_file itself (one
            # stable ETag per encoding, from the bytes on disk), so they pass through.
            Middleware(
                GZipMiddleware,
                minimum_size=GZIP_MIN,
                compresslevel=6,
                exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, *FORMATS.values()),
            ),
        ],
        # A friendly page naming the next step, never a bare "Not Found" or a traceback.
        exception_handlers={404: pages.http_error, 405: pages.http_error, 500: pages.http_error},
        lifespan=lifespan,
    )
    web.state.app = app
    web.state.console_sends = console_sends or ConsoleSends(app.clock.monotonic)
    web.state.form_work = form_work
    web.state.mail_running = (lambda: True) if sends_mail else scheduler_running(app)
    return web


def scheduler_running(app: App) -> Callable[[], bool]:
    """True while ``alerts serve`` writes its heartbeat (it sends what is queued)."""

    def running() -> bool:
        last = app.store.runs.last_beat()
        return last is not None and app.now() - last[0] <= HEARTBEAT_FRESH

    return running
