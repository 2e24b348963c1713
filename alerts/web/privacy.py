"""The privacy notice: ``<templates>/web/privacy.html``, a template the operator edits.

The default says who is responsible, why and on what basis addresses are kept, what is
kept and for how long (the days come from ``retention:`` in config.yaml, so the notice
cannot drift from what ``alerts purge`` does), and which rights a resident has and how to
use them. Every page, form and email links to it.
"""

from __future__ import annotations

from email.utils import parseaddr
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from alerts.app import App
from alerts.config import EmailConfig
from alerts.errors import ConfigError
from alerts.templating import find_template, template_folders
from alerts.web.pages import environment, render, web_app

TEMPLATE = "privacy.html"


def routes(app: App) -> list[BaseRoute]:
    check_template(app.config.templates)
    return [Route("/privacy", privacy, name="privacy")]


def check_template(templates: Path | None) -> None:
    """The notice must exist (in the operator's ``templates`` folder or the package's)
    before the first resident asks for it."""
    folders = template_folders(templates, "web")
    if find_template(folders, TEMPLATE) is None:
        raise ConfigError(
            f"missing page template {TEMPLATE}",
            where=str(folders[0]),
            hint="copy templates/web/privacy.html from Area Alerts and edit it for your organisation",
        )
    environment(folders).get_template(TEMPLATE)


def contact_address(email: EmailConfig) -> str:
    """Where residents write about their data: the Reply-To address, else From."""
    return parseaddr(email.reply_to or email.from_address)[1]


def privacy(request: Request) -> Response:
    config = web_app(request).config
    return render(
        request,
        TEMPLATE,
        {
            "retention": config.retention,
            "contact": contact_address(config.email),
            "feed_slug": None,
        },
    )
