"""Rendering pages: one Jinja2 environment per templates folder (autoescape on), the
helpers every page template uses, and the friendly error page.

Any route can use it::

    from alerts.web.pages import render
    return render(request, "subscribe.html", {"areas": ...})

Templates live in ``<templates>/web/`` and extend ``base.html``.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from alerts.app import App
from alerts.errors import AlertsError
from alerts.feeds.model import FORMATS, absolute_html, feed_url
from alerts.templating import template_environment
from alerts.text import plain_text, sanitise_html

FEED_LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


@functools.lru_cache(maxsize=4)
def environment(directory: Path) -> Environment:
    return template_environment(
        directory,
        filters={
            # safe_html(base): relative links resolve against the advisory's own page, not ours.
            "safe_html": lambda fragment, base=None: Markup(
                absolute_html(fragment, base) if base else sanitise_html(fragment or "")
            ),
            # Titles and summaries are plain text: markup from a source is dropped, not shown.
            "plain": plain_text,
        },
    )


def web_app(request: Request) -> App:
    app: App = request.app.state.app
    return app


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> Response:
    """Render ``<templates>/web/<name>`` with the site-wide context."""
    app = web_app(request)
    env = environment(app.config.templates / "web")
    site = app.config.site

    def local(moment: datetime, fmt: str = "%-d %B %Y, %H:%M") -> str:
        return app.local(moment).strftime(fmt)

    def feeds_for(slug: str) -> list[dict[str, str]]:
        return [
            {
                "url": feed_url(site.base_url, slug, fmt),
                "type": media_type,
                "label": FEED_LABELS[fmt],
            }
            for fmt, media_type in FORMATS.items()
        ]

    def url_for(route: str, **params: Any) -> str | None:
        """The path of a named route, or None when no such page is installed."""
        try:
            return str(request.url_for(route, **params).path)
        except Exception:  # starlette.routing.NoMatchFound, and bad params alike
            return None

    html = env.get_template(name).render(
        {
            "site": site,
            "request": request,
            "local": local,
            "feeds_for": feeds_for,
            "url_for": url_for,
            "feed_slug": "all",
            **(context or {}),
        }
    )
    return html_response(request, html, status)


def html_response(request: Request, html: str, status: int = 200) -> Response:
    """A page with an ETag (a hash of its text), answered 304 when the browser already
    holds it. Weak, as GZipMiddleware serves the same page in other bytes to clients
    that ask for gzip (RFC 9110 8.8.1)."""
    if status != 200:
        return HTMLResponse(html, status_code=status)
    etag = f'W/"{hashlib.blake2b(html.encode(), digest_size=16).hexdigest()}"'
    held = {
        tag.strip().removeprefix("W/")
        for tag in request.headers.get("if-none-match", "").split(",")
    }
    if etag.removeprefix("W/") in held or "*" in held:
        return Response(status_code=304, headers={"ETag": etag})
    return HTMLResponse(html, headers={"ETag": etag})


def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    hint: str | None = None,
    *,
    suggestions: list[tuple[str, str]] | None = None,
) -> Response:
    """A page saying what went wrong and what to do; ``suggestions`` are (path, label)
    links offered as "Did you mean ...?"."""
    context = {"title": title, "message": message, "hint": hint, "suggestions": suggestions or []}
    return render(request, "error.html", context, status=status)


def http_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: a page that says what to do next, never a traceback.
    A plain ``def``: Starlette runs it in the thread pool, as Jinja blocks."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_page(
            request,
            404,
            "Page not found",
            "There is no page at this address.",
            "Start from the list of areas.",
        )
    if status == 405:
        response = error_page(
            request,
            405,
            "Not allowed here",
            "This address does not take that kind of request.",
            "Open it in your browser or feed reader.",
        )
        # RFC 9110 15.5.6: a 405 names the methods that are allowed.
        response.headers.update(getattr(exc, "headers", None) or {})
        return response
    if isinstance(exc, AlertsError):
        return error_page(request, 500, "Something went wrong", exc.message, exc.hint)
    return error_page(
        request, status, "Something went wrong", "This page could not be shown.", "Try again later."
    )
