"""Subscribe, confirm, manage and unsubscribe pages.

Links in mail carry signed tokens (:mod:`alerts.tokens`), never a guessable id. The
confirm and unsubscribe links open a page that asks first: a mail scanner that opens
every link cannot subscribe anyone, and a forwarded digest cannot silently unsubscribe
its sender; the RFC 8058 one-click POST (from the mail provider, from the
``List-Unsubscribe`` header) acts at once. Forms that change something need the signed
token in the form: that is the proof of ownership, and a cross-site form cannot produce
it; a foreign ``Origin`` is refused as well.

It runs past 500 lines because each page's handler sits next to the checks that guard it
(tokens, limits, origin); the form's own helpers are in :mod:`alerts.web.subscription_form`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.errors import BadToken, NotFound
from alerts.store.limits import CLIENT, MAILBOX, client_key
from alerts.store.subscribers import ACTIVE, OPTED_OUT, PENDING, UNSUBSCRIBED
from alerts.subscribers import (
    Preferences,
    Subscription,
)
from alerts.subscribers.mail import CONFIRM_MAX_AGE, CONFIRMATION, check_confirmation_templates
from alerts.subscribers.notices import check_notice_templates
from alerts.subscribers.requests import quietly, request_manage_link, sign_up, welcome
from alerts.subscribers.undo import send_undo
from alerts.text import and_list
from alerts.tokens import (
    CONFIRM,
    MANAGE,
    MANAGE_MAX_AGE,
    UNSUBSCRIBE,
    Confirmation,
    link_signer,
)
from alerts.types import Frequency, Subscriber
from alerts.web.form_work import FormWork
from alerts.web.pages import render, web_app
from alerts.web.subscription_form import (
    area_choices,
    checked_fields,
    prefilled_area,
    widening_key,
    widenings,
)

log = logging.getLogger(__name__)

MAX_FIELD = 1000
#: Retry-After when the forms' work queue is full.
BUSY_RETRY_SECONDS = 60
#: More boxes than the form has are not read.
MAX_TICKED = 500
# Pages reached by a personal link: never cached, and the token never leaks to another
# site through the Referer header.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def routes(app: App) -> list[BaseRoute]:
    check_confirmation_templates(
        app.config.mail
    )  # a sign-up must not be the first to find them missing
    check_notice_templates(app.config.mail)
    return [
        Route("/subscribe", subscribe, methods=["GET", "POST"], name="subscribe"),
        Route("/confirm", confirm, methods=["GET", "POST"], name="confirm"),
        Route("/manage", manage, methods=["GET", "POST"], name="manage"),
        Route("/unsubscribe", unsubscribe_page, methods=["GET", "POST"], name="unsubscribe"),
        # The List-Unsubscribe address: opened in a browser it is the unsubscribe page.
        Route("/unsubscribe/one-click", one_click, methods=["GET", "POST"], name="one_click"),
    ]


# -- pages ----------------------------------------------------------------------

#: A page's work once its form is read: it blocks (SQLAlchemy, Jinja, sending mail).
FormPage = Callable[[Request, dict[str, str]], Response]


def off_the_loop(handler: FormPage) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for ``handler``: the posted form is read on the event loop (Starlette
    parses forms asynchronously), then ``handler`` runs in the thread pool, so one slow
    database call or template never stalls every other request. A plain ``def``
    endpoint would run in the pool too, but could not read the form."""

    async def endpoint(request: Request) -> Response:
        form = await form_fields(request) if request.method == "POST" else {}
        return await run_in_threadpool(handler, request, form)

    endpoint.__name__ = endpoint.__qualname__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


@off_the_loop
def subscribe(request: Request, form: dict[str, str]) -> Response:
    app = web_app(request)
    if reading(request):
        prefill = prefilled_area(app.gazetteer, request.query_params.get("area"))
        form = {"frequency": "daily", "urgent": "yes", "area": prefill.ticked}
        return page(
            request,
            "subscribe.html",
            {"form": form, "errors": {}, "stands_for": prefill.stands_for},
        )
    if refused := foreign_origin(request):
        return refused
    values, errors = checked_fields(
        app.gazetteer, form, ("email", "areas", "frequency", "forwardable")
    )
    if errors:
        return page(request, "subscribe.html", {"form": form, "errors": errors}, status=400)
    if shown := shown_back(request, "subscribe.html", form, {}):
        return shown
    values["forwardable"] = bool(values["forwardable"])
    subscription = Subscription(**values, urgent=form.get("urgent") == "yes")
    if limited := too_many(request):
        return limited
    # The same answer whatever the address's state, sent before anything is looked up
    # (the work runs after it), so neither its words nor its timing tell who subscribes.
    context = {
        "email": subscription.email,
        "mail_running": request.app.state.mail_running(),
        "resend_minutes": int(MAILBOX.gap.total_seconds() // 60),
    }
    response = page(request, "check_inbox.html", context)
    return after_answer(
        request,
        response,
        "subscribe",
        sign_up,
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        subscription,
        app.now(),
    )


@off_the_loop
def confirm(request: Request, form: dict[str, str]) -> Response:
    """GET asks, POST confirms: mail scanners (Safe Links, corporate gateways) open every
    link in a message, so opening the link must not subscribe anybody. What is confirmed
    is what the email stated (its link carries it); then a welcome email says it again."""
    app = web_app(request)
    if reading(request):
        token = request.query_params.get("token")
    else:
        if refused := foreign_origin(request):
            return refused
        token = form.get("token")
    found = confirmation_from(request, token)
    if isinstance(found, Response):
        return found
    confirmation, subscriber = found
    waiting = subscriber.status is PENDING or signed_up_again(subscriber, confirmation)
    if waiting and replaced(app, subscriber, confirmation):
        return bad_link(
            request,
            "This confirmation link was replaced",
            "A newer confirmation email was sent for the choices made since. Use the link in that one.",
        )
    if waiting and reading(request):
        return page(request, "confirm.html", personal(app, subscriber, {"token": token}))
    stated = Preferences(
        areas=subscriber.areas,
        frequency=subscriber.frequency,
        urgent=subscriber.urgent,
        forwardable=subscriber.forwardable,
    )
    now = app.now()
    confirmed = waiting and app.store.subscribers.confirm(
        subscriber.id, now=now, preferences=stated, issued_at=confirmation.issued_at
    )
    subscriber = app.store.subscribers.get(subscriber.id)  # as it is now, whoever changed it
    if subscriber.status is not ACTIVE:
        return bad_link(
            request,
            "This confirmation link no longer works",
            "The address was unsubscribed since it was sent.",
        )
    outcome = "confirmed" if confirmed else "already"
    response = page(request, "confirmed.html", personal(app, subscriber, {"outcome": outcome}))
    if confirmed:
        # A confirmation needs its signed link, so its timing tells nothing: the welcome
        # can follow on this connection.
        response.background = BackgroundTask(
            quietly,
            welcome,
            app.config.mail,
            app.config.digests,
            app.store,
            app.gazetteer,
            subscriber,
            now,
        )
    return response


@off_the_loop
def manage(request: Request, form: dict[str, str]) -> Response:
    app = web_app(request)
    if not reading(request):
        if refused := foreign_origin(request):
            return refused
        token = form.get("token") or request.query_params.get("token")
    else:
        token = request.query_params.get("token")
    if not token:
        return manage_by_email(request, form)
    subscriber = subscriber_from(request, token, MANAGE, max_age=MANAGE_MAX_AGE)
    if isinstance(subscriber, Response):
        return subscriber
    if subscriber.status in OPTED_OUT:
        return page(request, "opted_out.html", personal(app, subscriber, {}))
    context = personal(app, subscriber, {"token": token, "errors": {}, "saved": False})
    if reading(request):
        context["form"] = current_form(app, subscriber)
        return page(request, "manage.html", context)
    context["form"] = form
    values, context["errors"] = checked_fields(
        app.gazetteer, form, ("areas", "frequency", "forwardable")
    )
    if context["errors"]:
        return page(request, "manage.html", context, status=400)
    if shown := shown_back(request, "manage.html", form, context):
        return shown
    subscriber = app.store.subscribers.update(
        subscriber.id, Preferences(**values, urgent=form.get("urgent") == "yes")
    )
    context.update(
        personal(app, subscriber, {"saved": True, "form": current_form(app, subscriber)})
    )
    return page(request, "manage.html", context)


def shown_back(
    request: Request, name: str, form: dict[str, str], context: dict[str, Any]
) -> Response | None:
    """The form again, saving nothing, when typed areas mean more than they seem to
    ("ME5" is all of Medway, "Kent" everything in Kent) and the resident has not yet
    seen that; None once the same entries come back with the page's hidden key (they
    chose to keep them) or when nothing widens."""
    found = widenings(web_app(request).gazetteer, form.get("areas", ""), form.get("area", ""))
    key = widening_key(found)
    if not found or form.get("widening") == key:
        return None
    gazetteer = web_app(request).gazetteer
    shown = [(w.typed, gazetteer.name_of(w.area), w.why.value) for w in found]
    return page(
        request,
        name,
        {**context, "form": form, "errors": {}, "widenings": shown, "widening_key": key},
    )


def after_answer(
    request: Request, response: Response, form: str, action: Callable[..., str], *args: object
) -> Response:
    """``response``, with ``action(*args)`` done after it by the forms' worker, off this
    connection (:mod:`alerts.web.form_work`), so that neither the answer nor the next
    request on a kept-alive connection waits for it. Without a worker (the server ran no
    lifespan) it runs after the answer on this connection, as a background task. A full
    queue (a flood) is answered 503: nothing was done, and the page says so; /metrics
    counts it by ``form`` (``alerts_form_busy_total``)."""
    work: FormWork = request.app.state.form_work
    job = functools.partial(quietly, action, *args)
    if not work.running:
        response.background = BackgroundTask(job)
        return response
    if work.submit(job):
        return response
    try:
        web_app(request).store.metrics.count_form_busy(form)
    except SQLAlchemyError as exc:
        # The resident's answer matters more than the count: the busy page goes all the same.
        log.warning("could not count a busy %s form post: %s", form, exc)
    busy = page(
        request,
        "bad_link.html",
        {
            "title": "We are very busy",
            "reason": "Nothing was sent or saved. Please try again in a minute.",
            "expired": None,
        },
        status=503,
    )
    busy.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
    return busy


def too_many(request: Request) -> Response | None:
    """The 429 page when this client address has set off too much mail lately (the
    count is in the database, so it holds across web processes); None otherwise. It
    says nothing about any address, and is checked the same way for all of them."""
    app = web_app(request)
    client = request.client.host if request.client else "unknown"
    if app.store.limits.take(client_key(app.config.security, client), CLIENT, app.now()):
        return None
    response = page(
        request,
        "bad_link.html",
        {
            "title": "Too many requests",
            "reason": "This connection has sent the form too often. Please try again in an hour.",
            "expired": None,
        },
        status=429,
    )
    response.headers["Retry-After"] = str(int(CLIENT.window.total_seconds()))
    return response


def manage_by_email(request: Request, form: dict[str, str]) -> Response:
    """ "Manage your subscription" without a link: asks for the address and mails a
    manage link to it. The same answer, at once, whatever the address (the look-up and
    the mail come after it); a coordinator, whose copies carry no personal link, uses
    this too."""
    app = web_app(request)
    if reading(request):
        return page(request, "manage_request.html", {"form": {}, "errors": {}})
    values, errors = checked_fields(app.gazetteer, form, ("email",))
    if errors:
        return page(request, "manage_request.html", {"form": form, "errors": errors}, status=400)
    if limited := too_many(request):
        return limited
    response = page(
        request,
        "check_inbox_manage.html",
        {"email": values["email"], "manage_days": MANAGE_MAX_AGE // 86400},
    )
    return after_answer(
        request,
        response,
        "manage",
        request_manage_link,
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        values["email"],
        app.now(),
    )


@off_the_loop
def unsubscribe_page(request: Request, form: dict[str, str]) -> Response:
    app = web_app(request)
    if reading(request):
        token = request.query_params.get("token")
        subscriber = subscriber_from(request, token, UNSUBSCRIBE)
        if isinstance(subscriber, Response):
            return subscriber
        return page(request, "unsubscribe.html", personal(app, subscriber, {"token": token}))
    if refused := foreign_origin(request):
        return refused
    subscriber = subscriber_from(request, form.get("token"), UNSUBSCRIBE)
    if isinstance(subscriber, Response):
        return subscriber
    changed = leave(app, subscriber)
    return page(request, "unsubscribed.html", personal(app, subscriber, {"changed": changed}))


async def one_click(request: Request) -> Response:
    """RFC 8058: the mail provider POSTs ``List-Unsubscribe=One-Click`` here, and that
    body is required (any other POST acts on nothing). Opened in a browser (GET, HEAD),
    it is the unsubscribe page with its button; answered 200 with no page to show."""
    if reading(request):
        return await unsubscribe_page(request)
    if not await one_click_body(request):
        return PlainTextResponse(
            "This address unsubscribes with the RFC 8058 body List-Unsubscribe=One-Click.\n",
            status_code=400,
            headers=PRIVATE,
        )
    return await run_in_threadpool(_unsubscribe_by_token, request)


def _unsubscribe_by_token(request: Request) -> Response:
    app = web_app(request)
    try:
        claim = link_signer(app.config.site.base_url, app.config.security).read(
            request.query_params.get("token") or "", UNSUBSCRIBE, app.now()
        )
        leave(app, app.store.subscribers.for_link(claim))
    except (BadToken, NotFound):
        return PlainTextResponse(
            "This unsubscribe link is not valid.\n", status_code=400, headers=PRIVATE
        )
    return PlainTextResponse("Unsubscribed.\n", headers=PRIVATE)


def leave(app: App, subscriber: Subscriber) -> bool:
    """Unsubscribe by a link (the one-click header, or the unsubscribe page's button);
    whether it changed anything. An active forwardable subscription may have been ended
    by a member's mail app holding a forwarded copy: its owner is mailed the undo link
    at once (:mod:`alerts.subscribers.undo`)."""
    now = app.now()
    changed = app.store.subscribers.unsubscribe(subscriber.id, now=now)
    if changed and subscriber.forwardable and subscriber.status is ACTIVE:
        send_undo(app.config.mail, app.store, subscriber, area_names(app, subscriber), left_at=now)
    return changed


# -- helpers --------------------------------------------------------------------


def reading(request: Request) -> bool:
    """GET and HEAD only read: they never change anything, whatever the link."""
    return request.method in ("GET", "HEAD")


async def one_click_body(request: Request) -> bool:
    """Whether the body holds ``List-Unsubscribe=One-Click`` (RFC 8058 3.2), sent as
    application/x-www-form-urlencoded or multipart/form-data; without a Content-Type
    the body is read as the former."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        values = [
            str(value).strip() for value in (await request.form()).getlist("List-Unsubscribe")
        ]
    else:
        values = parse_qs((await request.body()).decode("latin-1")).get("List-Unsubscribe", [])
    return "One-Click" in values


def page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    choices = area_choices(web_app(request).gazetteer)
    defaults: dict[str, Any] = {
        "feed_slug": None,
        "choices": choices,
        "widenings": [],
        "widening_key": "",
        "stands_for": (),
    }
    response = render(request, f"subscriptions/{name}", {**defaults, **context}, status=status)
    response.headers.update(PRIVATE)
    return response


def subscriber_from(
    request: Request, token: str | None, purpose: str, max_age: int | None = None
) -> Subscriber | Response:
    """The subscriber a token names, or the friendly 400 page saying what to do."""
    app = web_app(request)
    if not token:
        return bad_link(request, "This link is incomplete", "The address has no token in it.")
    try:
        claim = link_signer(app.config.site.base_url, app.config.security).read(
            token, purpose, app.now(), max_age=max_age
        )
        return app.store.subscribers.for_link(claim)
    except (BadToken, NotFound) as exc:
        return link_error(request, exc, purpose, max_age)


def confirmation_from(
    request: Request, token: str | None
) -> tuple[Confirmation, Subscriber] | Response:
    """What a confirmation link confirms, and its subscriber with the preferences the
    email stated; or the friendly 400 page."""
    app = web_app(request)
    if not token:
        return bad_link(request, "This link is incomplete", "The address has no token in it.")
    try:
        confirmation = link_signer(
            app.config.site.base_url, app.config.security
        ).verify_confirmation(token, app.now(), max_age=CONFIRM_MAX_AGE)
        return confirmation, as_stated(app.store.subscribers.for_link(confirmation), confirmation)
    except (BadToken, NotFound) as exc:
        return link_error(request, exc, CONFIRM, CONFIRM_MAX_AGE)


def link_error(
    request: Request, exc: BadToken | NotFound, purpose: str, max_age: int | None
) -> Response:
    if isinstance(exc, NotFound):
        return bad_link(
            request, "This link is not valid", "It belongs to a subscription that no longer exists."
        )
    if exc.expired:
        how_long = f"work for {(max_age or 0) // 86400} days"
        reason = (
            f"Confirmation links {how_long}."
            if purpose == CONFIRM
            else f"Links to change your alerts {how_long}."
        )
        return bad_link(request, "This link has expired", reason, expired=purpose)
    return bad_link(
        request, "This link is not valid", "It may have been cut short when it was copied."
    )


def replaced(app: App, subscriber: Subscriber, confirmation: Confirmation) -> bool:
    """Whether a newer confirmation (a corrected sign-up) was sent after this one: then
    only the newest states what is to be confirmed."""
    issued = confirmation.issued_at
    newer_than = issued + timedelta(seconds=1) if issued else None  # stamps are whole seconds
    return (
        newer_than is not None
        and app.store.digests.queued_since(subscriber.id, CONFIRMATION, newer_than) > 0
    )


def signed_up_again(subscriber: Subscriber, confirmation: Confirmation) -> bool:
    """An unsubscribed address whose confirmation link was made after it left: its owner
    asked to come back. (A link from before the unsubscribe does nothing.)"""
    changed, issued = subscriber.status_changed_at, confirmation.issued_at
    return (
        subscriber.status is UNSUBSCRIBED
        and changed is not None
        and issued is not None
        and changed < issued
    )


def as_stated(subscriber: Subscriber, confirmation: Confirmation) -> Subscriber:
    """The subscriber with the preferences a confirmation link carries (a link made
    before they travelled in it confirms the stored ones)."""
    if confirmation.areas is None or confirmation.frequency is None or confirmation.urgent is None:
        return subscriber
    return dataclasses.replace(
        subscriber,
        areas=confirmation.areas,
        frequency=confirmation.frequency,
        urgent=confirmation.urgent,
        forwardable=subscriber.forwardable
        if confirmation.forwardable is None
        else confirmation.forwardable,
    )


def bad_link(request: Request, title: str, reason: str, *, expired: str | None = None) -> Response:
    """The 400 page for a link that does not work; ``expired`` names the purpose of an
    expired one, so the page offers the way to a new link."""
    return page(
        request, "bad_link.html", {"title": title, "reason": reason, "expired": expired}, status=400
    )


def foreign_origin(request: Request) -> Response | None:
    """A form posted from another site is refused (when the browser says where from)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":  # absent, or hidden by privacy settings: the token decides
        return None
    ours = {_origin(web_app(request).config.site.base_url), _origin(str(request.base_url))}
    if _origin(origin) in ours:
        return None
    return page(
        request,
        "bad_link.html",
        {
            "title": "This form came from another site",
            "reason": "Nothing was changed.",
            "expired": None,
        },
        status=403,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def form_fields(request: Request) -> dict[str, str]:
    """Form fields as single, trimmed, bounded strings (an over-long field is cut, not an
    error). The ticked area boxes (``area``, one value each) become one comma-separated
    field, as a slug never holds a comma."""
    form = await request.form()
    fields = {
        key: str(value).strip()[:MAX_FIELD] for key, value in form.items() if isinstance(value, str)
    }
    ticked = [
        str(value).strip()[:100]
        for value in form.getlist("area")[:MAX_TICKED]
        if isinstance(value, str)
    ]
    fields["area"] = ",".join(value for value in ticked if value and "," not in value)
    return fields


def area_names(app: App, subscriber: Subscriber) -> list[str]:
    return [_area_name(app.gazetteer, slug) for slug in subscriber.areas]


def current_form(app: App, subscriber: Subscriber) -> dict[str, str]:
    """The form as the subscriber's preferences fill it: their areas ticked, and any
    that have no box (a village below a town) typed."""
    boxes = area_choices(app.gazetteer).slugs
    return {
        "area": ",".join(slug for slug in subscriber.areas if slug in boxes),
        "areas": ", ".join(
            _area_name(app.gazetteer, slug) for slug in subscriber.areas if slug not in boxes
        ),
        "frequency": subscriber.frequency.value,
        "urgent": "yes" if subscriber.urgent else "no",
        "edition": "forwardable" if subscriber.forwardable else "personal",
    }


def personal(app: App, subscriber: Subscriber, context: dict[str, Any]) -> dict[str, Any]:
    """What every page about one subscriber shows: a masked address, their areas, and
    fresh links to the other pages (the token they came with proves who they are)."""
    signer, now = link_signer(app.config.site.base_url, app.config.security), app.now()
    return {
        "masked_email": mask(subscriber.email),
        "area_names": area_names(app, subscriber),
        "areas_text": and_list(area_names(app, subscriber)),
        "subscriber": subscriber,
        "frequencies": [f.value for f in Frequency],
        "manage_token": signer.token(subscriber.id, MANAGE, now, subscriber.link_key),
        "unsubscribe_token": signer.token(subscriber.id, UNSUBSCRIBE, now, subscriber.link_key),
        **context,
    }


def mask(email: str) -> str:
    """``jo.bloggs@example.org`` -> ``j…@example.org``: enough to recognise, not to harvest."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}…@{domain}"


def _area_name(gazetteer: Gazetteer, slug: str) -> str:
    return gazetteer.node(slug).name if slug in gazetteer else slug
