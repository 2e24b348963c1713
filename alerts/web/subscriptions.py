"""Subscribe, confirm, manage and unsubscribe pages.

Links in mail carry signed tokens (:mod:`alerts.tokens`), never a guessable id. The
confirm and unsubscribe links open a page that asks first: a mail scanner that opens
every link cannot subscribe anyone, and a forwarded digest cannot silently unsubscribe
its sender; the RFC 8058 one-click POST (from the mail provider, from the
``List-Unsubscribe`` header) acts at once. Forms that change something need the signed
token in the form: that is the proof of ownership, and a cross-site form cannot produce
it; a foreign ``Origin`` is refused as well.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from alerts.app import App
from alerts.areas import Gazetteer
from alerts.errors import AlertsError, BadToken, NotFound, UnknownArea
from alerts.store.subscribers import (
    ACTIVE,
    OPTED_OUT,
    PENDING,
    confirm_subscriber,
    get_subscriber,
    resubscribe_pending,
    unsubscribe,
    update_subscriber,
)
from alerts.subscribers import (
    InvalidSubscriber,
    Preferences,
    Subscription,
    normalise_email,
    parse_frequency,
    resolve_areas,
)
from alerts.subscribers.mail import (
    CONFIRM_MAX_AGE,
    RESEND_AFTER,
    check_confirmation_templates,
    send_confirmation,
)
from alerts.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, link_signer
from alerts.types import Frequency, Subscriber
from alerts.web.pages import render, web_app

MAX_FIELD = 1000
#: "A and B and C": tried as areas up to this many words (each try is a gazetteer lookup).
MAX_AND_PARTS = 8
# Pages reached by a personal link: never cached, and the token never leaks to another
# site through the Referer header.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def routes(app: App) -> list[BaseRoute]:
    check_confirmation_templates(app.config)  # a sign-up must not be the first to find them missing
    return [
        Route("/subscribe", subscribe, methods=["GET", "POST"], name="subscribe"),
        Route("/confirm", confirm, methods=["GET", "POST"], name="confirm"),
        Route("/manage", manage, methods=["GET", "POST"], name="manage"),
        Route("/unsubscribe", unsubscribe_page, methods=["GET", "POST"], name="unsubscribe"),
        Route("/unsubscribe/one-click", one_click, methods=["POST"], name="one_click"),
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
    if request.method == "GET":
        form = {"frequency": "daily", "urgent": "yes", "areas": prefilled_area(app, request.query_params.get("area"))}
        return page(request, "subscribe.html", {"form": form, "errors": {}})
    if refused := foreign_origin(request):
        return refused
    values, errors = checked_fields(app, form, ("email", "areas", "frequency"))
    if errors:
        return page(request, "subscribe.html", {"form": form, "errors": errors}, status=400)
    subscription = Subscription(**values, urgent=form.get("urgent") == "yes")
    now = app.now()
    subscriber, send = resubscribe_pending(app.store, subscription, now=now)
    if send:
        send_confirmation(app.config, app.store, subscriber, app.gazetteer.names_of(subscriber.areas), now=now)
    # The same answer whatever the address's state, so the form tells nobody who subscribes.
    context = {
        "email": subscription.email,
        "mail_running": request.app.state.mail_running(),
        "resend_minutes": int(RESEND_AFTER.total_seconds() // 60),
    }
    return page(request, "check_inbox.html", context)


@off_the_loop
def confirm(request: Request, form: dict[str, str]) -> Response:
    """GET asks, POST confirms: mail scanners (Safe Links, corporate gateways) open every
    link in a message, so opening the link must not subscribe anybody."""
    app = web_app(request)
    if request.method == "GET":
        token = request.query_params.get("token")
    else:
        if refused := foreign_origin(request):
            return refused
        token = form.get("token")
    subscriber = subscriber_from(request, token, CONFIRM, max_age=CONFIRM_MAX_AGE)
    if isinstance(subscriber, Response):
        return subscriber
    if subscriber.status is PENDING and request.method == "GET":
        return page(request, "confirm.html", personal(app, subscriber, {"token": token}))
    confirmed = subscriber.status is PENDING and confirm_subscriber(app.store, subscriber.id, now=app.now())
    subscriber = get_subscriber(app.store, subscriber.id)  # as it is now, whoever changed it
    if subscriber.status is not ACTIVE:
        return bad_link(request, "This confirmation link no longer works", "The address was unsubscribed since it was sent.")
    outcome = "confirmed" if confirmed else "already"
    return page(request, "confirmed.html", personal(app, subscriber, {"outcome": outcome}))


@off_the_loop
def manage(request: Request, form: dict[str, str]) -> Response:
    app = web_app(request)
    if request.method == "POST":
        if refused := foreign_origin(request):
            return refused
        token = form.get("token") or request.query_params.get("token")
    else:
        token = request.query_params.get("token")
    subscriber = subscriber_from(request, token, MANAGE)
    if isinstance(subscriber, Response):
        return subscriber
    if subscriber.status in OPTED_OUT:
        return page(request, "opted_out.html", personal(app, subscriber, {}))
    context = personal(app, subscriber, {"token": token, "errors": {}, "saved": False})
    if request.method == "GET":
        context["form"] = current_form(app, subscriber)
        return page(request, "manage.html", context)
    context["form"] = form
    values, context["errors"] = checked_fields(app, form, ("areas", "frequency"))
    if context["errors"]:
        return page(request, "manage.html", context, status=400)
    subscriber = update_subscriber(app.store, subscriber.id, Preferences(**values, urgent=form.get("urgent") == "yes"))
    context.update(personal(app, subscriber, {"saved": True, "form": current_form(app, subscriber)}))
    return page(request, "manage.html", context)


@off_the_loop
def unsubscribe_page(request: Request, form: dict[str, str]) -> Response:
    app = web_app(request)
    if request.method == "GET":
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
    changed = unsubscribe(app.store, subscriber.id, now=app.now())
    return page(request, "unsubscribed.html", personal(app, subscriber, {"changed": changed}))


async def one_click(request: Request) -> Response:
    """RFC 8058: the mail provider POSTs ``List-Unsubscribe=One-Click`` here. Any POST
    with a valid unsubscribe token is honoured (a POST is never a prefetch), answered
    with 200 and no page to show."""
    await request.body()  # read (and ignore) whatever form encoding the provider used
    return await run_in_threadpool(_unsubscribe_by_token, request)


def _unsubscribe_by_token(request: Request) -> Response:
    app = web_app(request)
    try:
        subscriber_id = link_signer(app.config).verify(request.query_params.get("token") or "", UNSUBSCRIBE)
        unsubscribe(app.store, subscriber_id, now=app.now())
    except (BadToken, NotFound):
        return PlainTextResponse("This unsubscribe link is not valid.\n", status_code=400, headers=PRIVATE)
    return PlainTextResponse("Unsubscribed.\n", headers=PRIVATE)


# -- helpers --------------------------------------------------------------------


def page(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    response = render(request, f"subscriptions/{name}", {"feed_slug": None, **context}, status=status)
    response.headers.update(PRIVATE)
    return response


def subscriber_from(request: Request, token: str | None, purpose: str, max_age: int | None = None) -> Subscriber | Response:
    """The subscriber a token names, or the friendly 400 page saying what to do."""
    app = web_app(request)
    if not token:
        return bad_link(request, "This link is incomplete", "The address has no token in it.")
    try:
        return get_subscriber(app.store, link_signer(app.config).verify(token, purpose, max_age=max_age))
    except BadToken as exc:
        if exc.expired:
            return bad_link(request, "This link has expired", "Confirmation links work for a week.", expired=True)
        return bad_link(request, "This link is not valid", "It may have been cut short when it was copied.")
    except NotFound:
        return bad_link(request, "This link is not valid", "It belongs to a subscription that no longer exists.")


def bad_link(request: Request, title: str, reason: str, *, expired: bool = False) -> Response:
    return page(request, "bad_link.html", {"title": title, "reason": reason, "expired": expired}, status=400)


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
        {"title": "This form came from another site", "reason": "Nothing was changed.", "expired": False},
        status=403,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def form_fields(request: Request) -> dict[str, str]:
    """Form fields as single, trimmed, bounded strings (an over-long field is cut, not an error)."""
    form = await request.form()
    return {key: str(value).strip()[:MAX_FIELD] for key, value in form.items() if isinstance(value, str)}


def checked_fields(app: App, form: dict[str, str], names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's ``names`` fields checked: their values, and a sentence for each bad one
    (every bad field is named at once, not the first only)."""
    checks: dict[str, Callable[[], object]] = {
        "email": lambda: normalise_email(form.get("email", "")),
        "areas": lambda: resolve_areas(app.gazetteer, split_areas(form.get("areas", ""), app.gazetteer)),
        "frequency": lambda: parse_frequency(form.get("frequency", "")),
    }
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            values[name] = checks[name]()
        except (InvalidSubscriber, UnknownArea) as exc:
            errors[name] = message_of(exc, app.gazetteer)
    return values, errors


def split_areas(text: str, gazetteer: Gazetteer) -> list[str]:
    """The areas a resident typed: separated by commas, semicolons or lines, and also by
    "and" or "&" ("Chatham and Gillingham") where the words do not name one area
    ("Tonbridge and Malling"). Words naming no area are kept whole, so the error quotes them."""
    areas = []
    for chunk in re.split(r"[,;\n]", text):
        chunk = chunk.strip()
        if chunk:
            areas.extend(_split_and(gazetteer, chunk))
    return areas


def _split_and(gazetteer: Gazetteer, chunk: str) -> list[str]:
    pieces = re.split(r"(\s+and\s+|\s*&\s*)", chunk, flags=re.IGNORECASE)
    words, separators = pieces[0::2], pieces[1::2]
    if len(words) == 1 or len(words) > MAX_AND_PARTS:
        return [chunk]
    found: list[str] = []
    start = 0
    while start < len(words):
        # The longest run of words from here that names an area, else one word.
        for end in range(len(words), start, -1):
            candidate = words[start] + "".join(separators[i] + words[i + 1] for i in range(start, end - 1))
            if end == start + 1 or _names_an_area(gazetteer, candidate):
                break
        found.append(candidate.strip())
        start = end
    return found if any(_names_an_area(gazetteer, part) for part in found) else [chunk]


def _names_an_area(gazetteer: Gazetteer, text: str) -> bool:
    try:
        gazetteer.resolve(text)
    except UnknownArea:
        return False
    return True


def prefilled_area(app: App, asked: str | None) -> str:
    """The areas a link names (``?area=medway`` from an archive page, ``?area=chatham,
    gillingham`` from a forwarded digest), by name; any that name nothing are left out."""
    names = []
    for part in (asked or "")[:300].split(",")[:20]:
        try:
            names.append(app.gazetteer.node(app.gazetteer.resolve(part)).name)
        except UnknownArea:
            continue
    return ", ".join(dict.fromkeys(names))


def and_list(names: list[str]) -> str:
    """'Chatham', 'Chatham and Gillingham', 'Chatham, Gillingham and Dover'."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def current_form(app: App, subscriber: Subscriber) -> dict[str, str]:
    return {
        "areas": ", ".join(app.gazetteer.names_of(subscriber.areas)),
        "frequency": subscriber.frequency.value,
        "urgent": "yes" if subscriber.urgent else "no",
    }


def personal(app: App, subscriber: Subscriber, context: dict[str, Any]) -> dict[str, Any]:
    """What every page about one subscriber shows: a masked address, their areas, and
    fresh links to the other pages (the token they came with proves who they are)."""
    signer = link_signer(app.config)
    return {
        "masked_email": mask(subscriber.email),
        "area_names": app.gazetteer.names_of(subscriber.areas),
        "areas_text": and_list(app.gazetteer.names_of(subscriber.areas)),
        "subscriber": subscriber,
        "frequencies": [f.value for f in Frequency],
        "manage_token": signer.token(subscriber.id, MANAGE),
        "unsubscribe_token": signer.token(subscriber.id, UNSUBSCRIBE),
        **context,
    }


def mask(email: str) -> str:
    """``jo.bloggs@example.org`` -> ``j…@example.org``: enough to recognise, not to harvest."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}…@{domain}"


def message_of(exc: AlertsError, gazetteer: Gazetteer | None = None) -> str:
    """The error as a sentence for a form. Suggested areas are named as residents know
    them ('Medway'), not by the slugs the CLI prints ('medway')."""
    if isinstance(exc, UnknownArea):
        hint = (exc.hint or "").replace("run 'alerts areas' for the list", "").strip().rstrip("?")
        if gazetteer is not None:
            hint = re.sub(r"'([^']+)'", lambda m: repr(gazetteer.name_of(m.group(1))), hint)
            if not hint:
                where = gazetteer.root.name
                return f"{exc.message[0].upper()}{exc.message[1:]}. Use a town, district or postcode district in {where}."
        return f"{exc.message[0].upper()}{exc.message[1:]}." + (f" {hint[0].upper()}{hint[1:]}?" if hint else "")
    return exc.message[0].upper() + exc.message[1:] + ("" if exc.message.endswith(".") else ".")
