"""The operator console at ``/admin``: accounts and sign-in (:mod:`.auth`,
:mod:`.passwords`, :mod:`.csrf`), the gate every page passes (:mod:`.guard`), the
editor's pages (:mod:`.views`, :mod:`.compose`), everyone's own (:mod:`.account`: two-step
sign-in, password) and the admin's (:mod:`.people`, :mod:`.users`).
Templates are ``templates/web/admin/``; they extend the site's ``base.html``."""

from __future__ import annotations

from starlette.routing import BaseRoute

from alerts.web.admin import account, compose, holds, login, people, users, views
from alerts.web.admin.guard import PREFIX, PUBLIC, ConsoleHeaders

__all__ = ["PREFIX", "PUBLIC", "ConsoleHeaders", "routes"]


def routes() -> list[BaseRoute]:
    return [
        *login.routes(),
        *views.routes(),
        *compose.routes(),
        *people.routes(),
        *users.routes(),
        *account.routes(),
        *holds.routes(),
    ]
