"""The page behind the undo link a coordinator is mailed when a one-click ended their
forwardable subscription (:mod:`alerts.subscribers.undo` says why and when): GET says
what it would do and asks, POST does it, so a mail scanner opening the link changes
nothing. It acts once, for the person it was made for, while nothing changed since."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from alerts.app import App
from alerts.errors import BadToken, NotFound
from alerts.subscribers.undo import UndoState, check_undo_templates, undo_state
from alerts.tokens import UNDO_MAX_AGE, link_signer
from alerts.web.pages import web_app
from alerts.web.subscriptions import (
    bad_link,
    foreign_origin,
    off_the_loop,
    page,
    personal,
    reading,
)

TITLES = {
    UndoState.CAN_UNDO.value: "Start your alerts again?",
    "restored": "Your alerts are back",
    UndoState.DONE.value: "Your alerts are on",
    UndoState.CHANGED.value: "This link no longer works",
    UndoState.SUPPRESSED.value: "This link no longer works",
}


def routes(app: App) -> list[BaseRoute]:
    check_undo_templates(
        app.config.mail
    )  # the first one-click must not be the one to find them missing
    return [Route("/undo", undo, methods=["GET", "POST"], name="undo")]


@off_the_loop
def undo(request: Request, form: dict[str, str]) -> Response:
    """GET asks, POST undoes; what the link can still do is
    :func:`alerts.subscribers.undo.undo_state`."""
    app = web_app(request)
    if reading(request):
        token = request.query_params.get("token")
    else:
        if refused := foreign_origin(request):
            return refused
        token = form.get("token")
    if not token:
        return bad_link(request, "This link is incomplete", "The address has no token in it.")
    try:
        signer = link_signer(app.config.site.base_url, app.config.security)
        claim = signer.read_undo(token, app.now())
        subscriber = app.store.subscribers.for_link(claim.link)
    except NotFound:
        return bad_link(
            request, "This link is not valid", "It belongs to a subscription that no longer exists."
        )
    except BadToken as exc:
        reason = (
            f"Links to start your alerts again work for {UNDO_MAX_AGE // 86400} days."
            if exc.expired
            else "It may have been cut short when it was copied."
        )
        title = "This link has expired" if exc.expired else "This link is not valid"
        return bad_link(request, title, reason)
    state = undo_state(app.store, subscriber, claim)
    outcome = state.value
    if state is UndoState.CAN_UNDO and not reading(request):
        if app.store.subscribers.undo_unsubscribe(
            subscriber.id, left_at=claim.left_at, now=app.now()
        ):
            outcome = "restored"
        subscriber = app.store.subscribers.get(subscriber.id)
        if outcome != "restored":
            outcome = undo_state(app.store, subscriber, claim).value
    context = {
        "token": token,
        "outcome": outcome,
        "title": TITLES[outcome],
        "left_at": claim.left_at,
    }
    return page(request, "undo.html", personal(app, subscriber, context))
