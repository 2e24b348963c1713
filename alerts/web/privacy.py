"""The privacy notice: ``<templates>/web/privacy.html``, a template the operator edits.

The default says who is responsible, why and on what basis addresses are kept, what is
kept and for how long (the days come from ``retention:`` in config.yaml, so the notice
cannot drift from what ``alerts purge`` does), and which rights a resident has and how to
use them. Every page, form and email links to it.
"""

from __future__ import annotations

from email.utils import parseaddr

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from alerts.app import App
from alerts.config import Config
from alerts.errors import ConfigError
from alerts.web.pages import environment, render, web_app

TEMPLATE = "privacy.html"


def routes(app: App) -> list[BaseRoute]:
    check_template(app.config)
    return [Route("/privacy", privacy, name="privacy")]


def check_template(config: Config) -> None:
    """The notice must exist before the first resident asks for it."""
    folder = config.templates / "web"
    if not (folder / TEMPLATE).is_file():
        raise ConfigError(
            f"missing page template {TEMPLATE}",
            where=str(folder),
            hint="copy templates/web/privacy.html from Area Alerts and edit it for your organisation",
        )
    environment(folder).get_template(TEMPLATE)


def contact_address(config: Config) -> str:
    """Where residents write about their data: the Reply-To address, else From."""
    return parseaddr(config.email.reply_to or config.email.from_address)[1]


def privacy(request: Request) -> Response:
    config = web_app(request).config
    return render(
        request,
        TEMPLATE,
        {"retention": config.retention, "contact": contact_address(config), "feed_slug": None},
    )
