"""``alerts web``: serve the archive, the feeds and the subscription pages."""

from __future__ import annotations

import logging

import click

from alerts.app import App
from alerts.cli import cli, with_app
from alerts.cli.checks import check_startup


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@with_app
def web(app: App, host: str, port: int) -> None:
    """Serve the web archive, the feeds and the subscription pages.

    Feeds are served from feeds.out as 'alerts feeds build' wrote them. Put a
    reverse proxy (TLS) in front of it and set site.base_url to its public address.
    """
    # Loaded here, not at the top: uvicorn and Starlette cost every other command's start-up.
    import uvicorn

    from alerts.web import create_app

    check_startup(app, links=True)  # a bad config fails here, before the server starts (the database too)
    root = click.get_current_context().find_root().params
    if not root.get("quiet") and not root.get("verbose"):
        logging.getLogger().setLevel(logging.INFO)  # a service says what it does
    # A log line, not an echo: with --log-format json every line on stderr is JSON.
    logging.getLogger("alerts.web").info(
        "serving %s on http://%s:%s/ (Ctrl+C to stop)", app.config.site.name, host, port
    )
    # log_config=None: uvicorn's lines (requests included) go through our handler, so
    # they carry a date and follow --log-format like every other line.
    uvicorn.run(create_app(app), host=host, port=port, log_config=None, proxy_headers=True)
