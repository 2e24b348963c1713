"""``alerts web``: serve the archive, the feeds and the subscription pages."""

from __future__ import annotations

import logging
import threading

import click

from alerts.app import App
from alerts.cli import cli, with_app
from alerts.cli.checks import check_startup
from alerts.errors import ConfigError

log = logging.getLogger("alerts.web")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--send/--no-send",
    default=True,
    show_default=True,
    help="Send confirmation emails from this process, within seconds of a sign-up "
    "(--no-send: leave them to 'alerts serve').",
)
@with_app
def web(app: App, host: str, port: int, send: bool) -> None:
    """Serve the web archive, the feeds and the subscription pages.

    Feeds are served from feeds.out as 'alerts feeds build' wrote them. Put a
    reverse proxy (TLS) in front of it and set site.base_url to its public address.

    Confirmation emails leave within seconds of a sign-up: this process sends them
    itself (a sender thread woken when one is queued), so they go even when 'alerts
    serve' is not running; alerts and digests are always sent by 'alerts serve'.
    With --no-send, 'alerts serve' sends the confirmations too (it is woken the same way).
    """
    # Loaded here, not at the top: uvicorn and Starlette cost every other command's start-up.
    import uvicorn

    from alerts.delivery import outbox_drainer
    from alerts.web import create_app

    # A bad config fails here, before the server starts (the database and, when this
    # process sends, the relay settings too).
    try:
        check_startup(app, links=True, mail=send)
    except ConfigError as exc:
        if not (exc.where or "").startswith(("delivery", "email")):
            raise
        # This process may lack what sending needs (the relay's password) where the
        # scheduler's has it.
        also = "or run 'alerts web --no-send' and let 'alerts serve' send the confirmations"
        raise ConfigError(
            exc.message, where=exc.where, hint=f"{exc.hint}; {also}" if exc.hint else also
        ) from None
    root = click.get_current_context().find_root().params
    if not root.get("quiet") and not root.get("verbose"):
        logging.getLogger().setLevel(logging.INFO)  # a service says what it does
    # A log line, not an echo: with --log-format json every line on stderr is JSON.
    log.info("serving %s on http://%s:%s/ (Ctrl+C to stop)", app.config.site.name, host, port)
    stop = threading.Event()
    sender = (
        outbox_drainer(
            app.config.delivery,
            app.config.mail,
            app.store,
            stop,
            clock=app.clock,
            name="web-sender",
            transactional_only=True,
        )
        if send
        else None
    )
    if sender is not None:
        sender.start()
        log.info("sending confirmation emails from this process as they are queued")
    else:
        log.info("not sending: confirmation emails wait for 'alerts serve'")
    try:
        # log_config=None: uvicorn's lines (requests included) go through our handler, so
        # they carry a date and follow --log-format like every other line.
        # Forwarded headers only from the proxies config.yaml names (uvicorn would trust
        # 127.0.0.1 by default, so any local user could pose as any client).
        proxies = list(app.config.web.trusted_proxies)
        uvicorn.run(
            create_app(app, sends_mail=send),
            host=host,
            port=port,
            log_config=None,
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies or None,
        )
    finally:
        stop.set()  # the message in flight is finished; the rest stays queued
        if sender is not None:
            sender.join(60)
